"""Gemini through the gRPC API against the fake Gemini server, over real HTTP:
generateContent images (inline data, aspect ratios, thought parts skipped), every fault
(finish and block reasons included), the streaming writer, discovery and base URLs."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.rpc import code_pb2
from PIL import Image
from provider_helpers import (
    Deltas,
    Sink,
    fake_fixture,
    image_model,
    job_of,
    provider_adapter,
    serving,
    stored_assets,
    upload,
    warnings,
)

from limner.domain.images import ProviderImageRequest, SourceImage
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered, ProviderAuthFailed
from limner.providers.base import Provider, WriterMessage, WriterRequest
from limner.testing import RunningServer
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.gemini import GeminiFake
from limner.testing.streams import collect, kinds, unpack
from limner.v1 import image_service_pb2 as ipb

KEY = "AIza-secret-test-key"
IMAGE_MODEL = "gemini-2.5-flash-image"
GENERATE = f"/v1beta/models/{IMAGE_MODEL}:generateContent"
PROFILE = {
    "max_reference_images": 3,
    "supports_edit": True,
    "supports_aspect_ratio": True,
    "supports_seed": True,
    "max_images_per_request": 2,
}

fake = fake_fixture(GeminiFake, api_key=KEY)


@pytest.fixture
async def server(tmp_path: Path, fake: GeminiFake) -> AsyncIterator[RunningServer]:
    async with serving(
        tmp_path / "data",
        providers={
            "gm": {"kind": "gemini", "base_url": fake.base_url, "api_key": KEY, "max_retries": 2},
            "bad": {"kind": "gemini", "base_url": fake.base_url, "api_key": "wrong"},
        },
        models=[
            image_model("nano", "gm", IMAGE_MODEL, PROFILE),
            {"id": "nano-bad-key", "provider": "bad", "provider_model_id": IMAGE_MODEL},
        ],
        assets={"max_image_bytes": 1024 * 1024},
    ) as running:
        yield running


async def generate(server: RunningServer, model_id: str = "nano", **options: Any) -> list[Any]:
    request = ipb.GenerateImageRequest(
        prompt="a lighthouse at dawn", model=model_id, options=ipb.ImageOptions(**options)
    )
    return await collect(server.images.GenerateImage(request))


def calls(fake: GeminiFake) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST"]


async def test_generate_sends_prompt_modalities_and_aspect_ratio(server, fake):
    events = await generate(server, width=768, height=1344, seed=7)

    assert kinds(events)[-1] == "completed", events[-1]
    [call] = calls(fake)
    assert call.path == GENERATE
    assert call.headers["x-goog-api-key"] == KEY
    assert "key" not in call.query and "authorization" not in call.headers
    assert call.json == {
        "contents": [{"role": "user", "parts": [{"text": "a lighthouse at dawn"}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "9:16"},
            "seed": 7,
        },
    }
    assert not warnings(events, "SIZE_ADJUSTED")
    image = events[-1].completed.images[0]
    assert (image.width, image.height, image.seed) == (64, 64, 7)
    usage = (await job_of(server, events)).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (11, 1302, 1313)
    assert usage.provider_calls == 1


async def test_edit_sends_source_and_references_as_inline_data(server, fake):
    source_png, reference_png = fake_png(250, 100, seed=1), fake_png(16, 16, seed=2)
    source, reference = await upload(server, source_png), await upload(server, reference_png)
    events = await collect(
        server.images.EditImage(
            ipb.EditImageRequest(
                source_asset=source,
                prompt="add snow",
                model="nano",
                strength=0.5,
                reference_assets=[reference],
            )
        )
    )

    assert kinds(events)[-1] == "completed", events[-1]
    parts = calls(fake)[0].json["contents"][0]["parts"]
    assert parts[0] == {"text": "add snow"}
    assert [p["inline_data"]["mime_type"] for p in parts[1:]] == ["image/png", "image/png"]
    assert base64.b64decode(parts[1]["inline_data"]["data"]) == source_png
    assert base64.b64decode(parts[2]["inline_data"]["data"]) == reference_png
    assert calls(fake)[0].json["generationConfig"]["imageConfig"] == {"aspectRatio": "21:9"}
    assert [w.field for w in warnings(events, "PARAMETER_IGNORED")] == ["strength"]
    [adjusted] = warnings(events, "SIZE_ADJUSTED")
    assert "250x100" in adjusted.message and "21:9" in adjusted.message


async def test_two_images_take_two_calls_with_consecutive_seeds(server, fake):
    events = await generate(server, image_count=2, seed=40)

    assert kinds(events)[-1] == "completed"
    assert [i.seed for i in events[-1].completed.images] == [40, 41]
    assert [c.json["generationConfig"]["seed"] for c in calls(fake)] == [40, 41]


FAULTS = [
    (Fault.RATE_LIMITED, 3, "RESOURCE_EXHAUSTED", "PROVIDER_RATE_LIMITED", 3),
    (Fault.SERVER_ERROR, 3, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 3),
    (Fault.UNAVAILABLE, 3, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 3),
    (Fault.CONNECTION_RESET, 3, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 3),
    (Fault.MALFORMED_JSON, 1, "UNAVAILABLE", "PROVIDER_BAD_RESPONSE", 1),
    (Fault.BAD_REQUEST, 1, "FAILED_PRECONDITION", "PROVIDER_REJECTED_REQUEST", 1),
    (Fault.UNAUTHORIZED, 1, "FAILED_PRECONDITION", "PROVIDER_AUTH_FAILED", 1),
    (Fault.CONTENT_FILTERED, 1, "FAILED_PRECONDITION", "CONTENT_FILTERED", 1),
    (Fault.TEXT_INSTEAD_OF_IMAGE, 3, "UNKNOWN", "NO_IMAGE_RETURNED", 3),
    (Fault.OVERSIZED_IMAGE, 1, "UNAVAILABLE", "PROVIDER_BAD_RESPONSE", 1),
]


@pytest.mark.parametrize(("fault", "times", "code", "reason", "count"), FAULTS)
async def test_fault_ends_in_documented_status(server, fake, fault, times, code, reason, count):
    fake.oversized_bytes = 2 * 1024 * 1024
    fake.arm(fault, times=times, retry_after_s=0.05)
    events = await generate(server)

    assert kinds(events)[-1] == "failed"
    status = events[-1].failed
    info = unpack(status)["ErrorInfo"]
    assert info.reason == reason, status.message
    assert code_pb2.Code.Name(status.code) == code
    assert len(calls(fake)) == count
    if fault in (Fault.RATE_LIMITED, Fault.SERVER_ERROR, Fault.CONNECTION_RESET):
        assert len(warnings(events, "PROVIDER_RETRY")) == 2
    if fault is Fault.BAD_REQUEST:
        assert "size is not supported" in status.message, "google.rpc.Status error.message"
    if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
        assert len(warnings(events, "NO_IMAGE_RETRY")) == 2
        assert "cat on a mat" in info.metadata["text"]
        assert "Planning" not in info.metadata["text"], "thought parts are skipped"
    assert KEY not in status.message
    assert await stored_assets(server) == []


@pytest.mark.parametrize(
    ("style", "detail"),
    [("finish_reason", "IMAGE_SAFETY"), ("prompt_feedback", "PROHIBITED_CONTENT")],
)
async def test_finish_and_block_reasons_are_content_filtered(server, fake, style, detail):
    fake.filter_style = style
    fake.arm(Fault.CONTENT_FILTERED)
    events = await generate(server)

    status = events[-1].failed
    assert unpack(status)["ErrorInfo"].reason == "CONTENT_FILTERED"
    assert detail in status.message
    assert len(calls(fake)) == 1, "content filtering is never retried"


async def test_no_image_finish_reason_is_retried_then_succeeds(server, fake):
    fake.no_image_reason = "NO_IMAGE"
    fake.arm(Fault.TEXT_INSTEAD_OF_IMAGE)
    events = await generate(server)

    assert kinds(events)[-1] == "completed"
    assert len(warnings(events, "NO_IMAGE_RETRY")) == 1


async def test_invalid_key_is_an_auth_failure(server, fake):
    events = await generate(server, "nano-bad-key")

    status = events[-1].failed
    assert unpack(status)["ErrorInfo"].reason == "PROVIDER_AUTH_FAILED"
    assert "API key not valid" in status.message and "wrong" not in status.message


async def test_broken_url_does_not_exist_for_gemini(fake):
    with pytest.raises(ValueError, match="inline"):
        fake.arm(Fault.BROKEN_URL)


# -- adapter-level tests (writer, discovery, base URLs) --------------------------------


def adapter(client: httpx.AsyncClient, base_url: str, key: str = KEY) -> Provider:
    return provider_adapter(client, "gemini", "gm", base_url=base_url, api_key=key, max_retries=1)


@pytest.mark.parametrize(
    "suffix", ["", "/", "/v1", "/v1/", "/v1beta", "/v1beta/", "/v1/v1beta", "/v1beta/v1"]
)
async def test_every_base_url_form_reaches_v1beta(fake, client, suffix):
    provider = adapter(client, fake.base_url + suffix)
    assert provider.images is not None
    request = ProviderImageRequest(
        job_id="j", provider_model_id=IMAGE_MODEL, prompt="a fox", width=1024, height=1024, seed=1
    )
    images = await provider.images.generate(request, Sink())

    assert images[0].data.startswith(b"\x89PNG")
    assert [r.path for r in fake.requests] == [GENERATE]


async def test_default_base_url_is_v1beta(client):
    provider = adapter(client, "")
    assert provider.images is not None
    assert provider.images.http.base_url == "https://generativelanguage.googleapis.com/v1beta"  # type: ignore[attr-defined]


def writer_request(model: str, *messages: WriterMessage) -> WriterRequest:
    return WriterRequest(
        job_id="j", provider_model_id=model, messages=messages, max_output_tokens=256
    )


async def test_writer_streams_text_deltas_with_inline_images(fake, client):
    provider = adapter(client, fake.base_url + "/v1beta")
    assert provider.writer is not None
    png = fake_png(8, 8)
    source = SourceImage(asset="assets/x", data=png, mime_type="image/png", width=8, height=8)
    deltas = Deltas()
    output = await provider.writer.write(
        writer_request(
            "gemini-2.5-flash",
            WriterMessage(role="system", text="You write image prompts."),
            WriterMessage(role="user", text="Describe this.", images=(source,)),
            WriterMessage(role="assistant", text="A small square."),
            WriterMessage(role="user", text="More detail."),
        ),
        deltas,
    )

    assert output.text == fake.chat_reply
    assert len(deltas.parts) > 3 and "Planning" not in "".join(deltas.parts)
    assert output.usage == Usage(
        input_tokens=11, output_tokens=12, total_tokens=23, provider_calls=1
    )
    [call] = fake.requests
    assert call.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert call.query == {"alt": "sse"}
    assert call.headers["x-goog-api-key"] == KEY
    body = call.json
    assert body["systemInstruction"] == {"parts": [{"text": "You write image prompts."}]}
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    first = body["contents"][0]["parts"]
    assert first[0] == {"text": "Describe this."}
    assert base64.b64decode(first[1]["inline_data"]["data"]) == png
    assert body["generationConfig"] == {"maxOutputTokens": 256}


async def test_writer_returns_images_an_image_model_sends(fake, client):
    provider = adapter(client, fake.base_url)
    assert provider.writer is not None
    output = await provider.writer.write(
        writer_request(IMAGE_MODEL, WriterMessage(role="user", text="Sketch a fox.")), Deltas()
    )

    assert output.text == "Here is your image."
    [image] = output.images
    assert Image.open(io.BytesIO(image.data)).format == "PNG"


async def test_writer_safety_stop_is_content_filtered(fake, client):
    provider = adapter(client, fake.base_url)
    assert provider.writer is not None
    fake.arm(Fault.CONTENT_FILTERED)
    with pytest.raises(ContentFiltered, match="SAFETY"):
        await provider.writer.write(
            writer_request("gemini-2.5-flash", WriterMessage(role="user", text="x")), Deltas()
        )


async def test_writer_bad_key_is_an_auth_failure(fake, client):
    provider = adapter(client, fake.base_url, key="wrong")
    assert provider.writer is not None
    with pytest.raises(ProviderAuthFailed):
        await provider.writer.write(
            writer_request("gemini-2.5-flash", WriterMessage(role="user", text="x")), Deltas()
        )


async def test_discovery_lists_generate_content_models_across_pages(fake, client):
    fake.max_page_size = 1
    provider = adapter(client, fake.base_url)
    assert provider.lister is not None
    found = {m.provider_model_id: m for m in await provider.lister.list_models()}

    assert set(found) == {"gemini-2.5-flash", IMAGE_MODEL}, "predict/embed models are left out"
    assert found[IMAGE_MODEL].output_modalities == {"image", "text"}
    assert found["gemini-2.5-flash"].output_modalities == {"text"}
    assert found["gemini-2.5-flash"].input_modalities == {"text", "image"}
    assert found[IMAGE_MODEL].display_name == "Nano Banana"
    queries = [r.query for r in fake.requests]
    assert queries[0] == {"pageSize": "1000"}
    assert queries[1] == {"pageSize": "1000", "pageToken": "1"}
    assert len(queries) == 4 and all(r.headers["x-goog-api-key"] == KEY for r in fake.requests)
