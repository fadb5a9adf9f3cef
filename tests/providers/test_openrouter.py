"""OpenRouter through the gRPC API against the fake OpenRouter server, over real HTTP:
chat-completion images (modalities from the model listing, the 404 fallback, aspect
ratios, references), every fault, the writer, model discovery and base URLs."""

from __future__ import annotations

import base64
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
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
    validate_response,
    warnings,
)

from limner.domain.images import ProviderImageRequest
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered
from limner.providers.base import Provider, WriterMessage, WriterRequest
from limner.testing import RunningServer
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.openrouter import OpenRouterFake
from limner.testing.streams import collect, kinds, unpack
from limner.v1 import image_service_pb2 as ipb

KEY = "sk-or-v1-secret-test-key"
NANO = "google/gemini-2.5-flash-image"
FLUX = "black-forest-labs/flux.2-pro"
PROFILE = {
    "max_reference_images": 4,
    "supports_edit": True,
    "supports_aspect_ratio": True,
    "max_images_per_request": 2,
}

fake = fake_fixture(OpenRouterFake)


def section(fake: OpenRouterFake, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "openrouter",
        "base_url": fake.base_url,
        "api_key": KEY,
        "max_retries": 2,
        "extra_headers": {"HTTP-Referer": "https://limner.example", "X-OpenRouter-Title": "T"},
        **extra,
    }


def model(model_id: str, provider_model_id: str, provider: str = "or") -> dict[str, Any]:
    return image_model(model_id, provider, provider_model_id, PROFILE)


@pytest.fixture
async def server(tmp_path: Path, fake: OpenRouterFake) -> AsyncIterator[RunningServer]:
    # ``make_server(providers=...)`` takes adapter overrides, so settings are built here.
    async with serving(
        tmp_path / "data",
        providers={"or": section(fake), "or0": section(fake, max_retries=0)},
        models=[
            model("nano", NANO),
            model("flux", FLUX),
            model("hidden", "acme/unlisted-image"),
            model("nano0", NANO, provider="or0"),
        ],
    ) as running:
        yield running


async def generate(server: RunningServer, model_id: str = "nano", **options: Any) -> list[Any]:
    request = ipb.GenerateImageRequest(
        prompt="a lighthouse at dawn", model=model_id, options=ipb.ImageOptions(**options)
    )
    return await collect(server.images.GenerateImage(request))


async def read_asset(server: RunningServer, name: str) -> bytes:
    request = ipb.ReadAssetContentRequest(name=name)
    return b"".join([c.data async for c in server.images.ReadAssetContent(request)])


def decode_data_url(url: str) -> bytes:
    header, _, data = url.partition(",")
    assert header == "data:image/png;base64"
    return base64.b64decode(data)


async def test_generate_asks_for_image_and_text_with_aspect_ratio(server, fake, spec_check):
    events = await generate(server, width=1344, height=768, seed=5)

    assert kinds(events)[-1] == "completed", events[-1]
    listing = [r for r in fake.requests if r.path == "/api/v1/models"]
    assert [r.query for r in listing] == [{"output_modalities": "image"}]
    [call] = fake.chat_requests
    assert call.path == "/api/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    assert call.headers["http-referer"] == "https://limner.example"
    assert call.headers["x-openrouter-title"] == "T"
    assert all(KEY not in r.path and KEY not in str(r.query) for r in fake.requests)
    body = call.json
    spec_check("openrouter", "/chat/completions", body)
    assert body["model"] == NANO
    assert body["modalities"] == ["image", "text"]
    assert body["image_config"] == {"aspect_ratio": "16:9"}
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a lighthouse at dawn"}]}
    ]
    assert body["seed"] == 5 and body["stream"] is False
    for absent in ("n", "size", "response_format", "negative_prompt"):
        assert absent not in body
    assert not warnings(events, "SIZE_ADJUSTED"), "1344x768 is exactly 16:9 at 1K"

    image = events[-1].completed.images[0]
    data = await read_asset(server, image.asset)
    assert Image.open(io.BytesIO(data)).size == (64, 64)
    usage = (await job_of(server, events)).usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (12, 1290, 1302)
    assert usage.cost_usd == pytest.approx(0.039) and usage.provider_calls == 1
    assert [e.usage.cost_usd for e in events if e.HasField("usage")] == [pytest.approx(0.039)]


async def test_image_only_model_gets_image_modality_and_listing_is_cached(server, fake):
    first = await generate(server, "flux")
    second = await generate(server, "flux")

    assert kinds(first)[-1] == kinds(second)[-1] == "completed"
    assert [r.json["modalities"] for r in fake.chat_requests] == [["image"], ["image"]]
    assert len([r for r in fake.requests if r.path == "/api/v1/models"]) == 1


async def test_unlisted_image_only_model_falls_back_to_image_modality_once(server, fake):
    fake.models.append({**fake.models[1], "id": "acme/unlisted-image"})
    fake.unlisted = {"acme/unlisted-image"}

    first = await generate(server, "hidden")
    second = await generate(server, "hidden")

    assert kinds(first)[-1] == kinds(second)[-1] == "completed"
    asked = [r.json["modalities"] for r in fake.chat_requests]
    assert asked == [["image", "text"], ["image"], ["image"]], "the 404 answer is remembered"
    assert not warnings(first, "PROVIDER_RETRY")


async def test_listing_failure_falls_back_to_image_and_text(server, fake):
    fake.listing_failures = 1
    events = await generate(server, "nano0")

    assert kinds(events)[-1] == "completed"
    assert fake.chat_requests[0].json["modalities"] == ["image", "text"]


async def test_edit_sends_source_then_references_as_data_url_parts(server, fake, spec_check):
    source_png, reference_png = fake_png(96, 64, seed=3), fake_png(32, 32, seed=4)
    source, reference = await upload(server, source_png), await upload(server, reference_png)
    events = await collect(
        server.images.EditImage(
            ipb.EditImageRequest(
                source_asset=source,
                prompt="make it night",
                model="nano",
                strength=0.4,
                reference_assets=[reference],
            )
        )
    )

    assert kinds(events)[-1] == "completed", events[-1]
    body = fake.chat_requests[0].json
    spec_check("openrouter", "/chat/completions", body)
    text, first, second = body["messages"][0]["content"]
    assert text == {"type": "text", "text": "make it night"}
    assert decode_data_url(first["image_url"]["url"]) == source_png
    assert decode_data_url(second["image_url"]["url"]) == reference_png
    assert body["image_config"] == {"aspect_ratio": "3:2", "strength": 0.4}
    [adjusted] = warnings(events, "SIZE_ADJUSTED")
    assert "96x64" in adjusted.message and "3:2" in adjusted.message


async def test_explicit_aspect_ratio_snaps_to_nearest_offered(server, fake):
    events = await generate(server, aspect_ratio="5:2")

    assert kinds(events)[-1] == "completed"
    assert fake.chat_requests[0].json["image_config"]["aspect_ratio"] == "21:9"
    [adjusted] = warnings(events, "SIZE_ADJUSTED")
    assert "5:2" in adjusted.message


async def test_hosted_url_results_are_downloaded(server, fake):
    fake.result_style = "url"
    events = await generate(server)

    assert kinds(events)[-1] == "completed"
    data = await read_asset(server, events[-1].completed.images[0].asset)
    assert Image.open(io.BytesIO(data)).format == "PNG"


async def test_two_images_take_two_calls_and_usage_adds_up(server, fake):
    events = await generate(server, image_count=2, seed=9)

    assert kinds(events)[-1] == "completed"
    assert len(events[-1].completed.images) == 2
    assert [r.json["seed"] for r in fake.chat_requests] == [9, 10]
    usage = (await job_of(server, events)).usage
    assert (usage.provider_calls, usage.total_tokens) == (2, 2604)
    steps = [(e.progress.step, e.progress.total_steps) for e in events if e.progress.total_steps]
    assert steps == [(1, 2), (2, 2)]


async def test_unsupported_parameters_are_warned_about(server, fake):
    events = await generate(server, negative_prompt="fog", steps=20)

    assert kinds(events)[-1] == "completed"
    fields = {w.field for w in warnings(events, "PARAMETER_IGNORED")}
    assert {"options.negative_prompt", "options.steps"} <= fields
    assert "fog" not in str(fake.chat_requests[0].json)


FAULTS = [
    # (fault, times, status code name, reason, chat calls)
    (Fault.RATE_LIMITED, 3, "RESOURCE_EXHAUSTED", "PROVIDER_RATE_LIMITED", 3),
    (Fault.SERVER_ERROR, 3, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 3),
    (Fault.UNAVAILABLE, 3, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 3),
    (Fault.CONNECTION_RESET, 3, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 3),
    (Fault.MALFORMED_JSON, 1, "UNAVAILABLE", "PROVIDER_BAD_RESPONSE", 1),
    (Fault.BAD_REQUEST, 1, "FAILED_PRECONDITION", "PROVIDER_REJECTED_REQUEST", 1),
    (Fault.UNAUTHORIZED, 1, "FAILED_PRECONDITION", "PROVIDER_AUTH_FAILED", 1),
    (Fault.CONTENT_FILTERED, 1, "FAILED_PRECONDITION", "CONTENT_FILTERED", 1),
    (Fault.TEXT_INSTEAD_OF_IMAGE, 3, "UNKNOWN", "NO_IMAGE_RETURNED", 3),
    (Fault.BROKEN_URL, 1, "UNAVAILABLE", "DOWNLOAD_FAILED", 1),
    (Fault.OVERSIZED_IMAGE, 1, "FAILED_PRECONDITION", "DOWNLOAD_REFUSED", 1),
]


@pytest.mark.parametrize(("fault", "times", "code", "reason", "calls"), FAULTS)
async def test_fault_ends_in_documented_status(server, fake, fault, times, code, reason, calls):
    from google.rpc import code_pb2

    fake.arm(fault, times=times, retry_after_s=0.05)
    events = await generate(server)

    assert kinds(events)[-1] == "failed"
    status = events[-1].failed
    info = unpack(status)["ErrorInfo"]
    assert info.reason == reason, status.message
    if code:
        assert code_pb2.Code.Name(status.code) == code
    assert len(fake.chat_requests) == calls
    if fault in (Fault.RATE_LIMITED, Fault.SERVER_ERROR, Fault.CONNECTION_RESET):
        assert len(warnings(events, "PROVIDER_RETRY")) == 2
    if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
        assert len(warnings(events, "NO_IMAGE_RETRY")) == 2
        assert "cat" in info.metadata["text"]
    assert KEY not in status.message
    assert await stored_assets(server) == [], "nothing is stored on failure"


async def test_moderation_403_is_content_filtered(server, fake):
    fake.filter_style = "moderation"
    fake.arm(Fault.CONTENT_FILTERED)
    events = await generate(server)

    assert kinds(events)[-1] == "failed"
    assert unpack(events[-1].failed)["ErrorInfo"].reason == "CONTENT_FILTERED"
    assert len(fake.chat_requests) == 1


async def test_one_rate_limit_is_retried_and_visible(server, fake):
    fake.arm(Fault.RATE_LIMITED, retry_after_s=0.05)
    events = await generate(server)

    assert kinds(events)[-1] == "completed"
    [retry] = warnings(events, "PROVIDER_RETRY")
    assert "429" in retry.message


# -- adapter-level tests (writer, discovery, base URLs) --------------------------------


def adapter(client: httpx.AsyncClient, base_url: str, **extra: Any) -> Provider:
    return provider_adapter(
        client, "openrouter", "or", base_url=base_url, api_key=KEY, max_retries=1, **extra
    )


def image_request(**kwargs: Any) -> ProviderImageRequest:
    values: dict[str, Any] = {
        "job_id": "j",
        "provider_model_id": NANO,
        "prompt": "a fox",
        "width": 1024,
        "height": 1024,
        "seed": 1,
        **kwargs,
    }
    return ProviderImageRequest(**values)


@pytest.mark.parametrize(
    "suffix", ["", "/", "/api", "/api/", "/v1", "/api/v1", "/api/v1/", "/api/v1/chat/completions"]
)
async def test_every_base_url_form_reaches_api_v1(fake, client, suffix):
    provider = adapter(client, fake.base_url + suffix)
    assert provider.images is not None
    images = await provider.images.generate(image_request(), Sink())

    assert len(images) == 1 and images[0].data.startswith(b"\x89PNG")
    assert {r.path for r in fake.requests} == {"/api/v1/models", "/api/v1/chat/completions"}


async def test_direct_adapter_reports_usage_and_filtering(fake, client):
    provider = adapter(client, fake.base_url)
    assert provider.images is not None
    sink = Sink()
    await provider.images.generate(image_request(), sink)
    assert sink.usages == [
        Usage(
            input_tokens=12, output_tokens=1290, total_tokens=1302, cost_usd=0.039, provider_calls=1
        )
    ]
    fake.arm(Fault.CONTENT_FILTERED)
    with pytest.raises(ContentFiltered, match="IMAGE_SAFETY"):
        await provider.images.generate(image_request(), sink)


async def test_writer_streams_deltas_with_images_as_parts(fake, client, spec_check):
    provider = adapter(client, fake.base_url)
    assert provider.writer is not None
    deltas = Deltas()
    png = fake_png(8, 8)
    from limner.domain.images import SourceImage

    source = SourceImage(asset="assets/x", data=png, mime_type="image/png", width=8, height=8)
    request = WriterRequest(
        job_id="j",
        provider_model_id="openai/gpt-4o-mini",
        messages=(
            WriterMessage(role="system", text="You write image prompts."),
            WriterMessage(role="user", text="Describe this.", images=(source,)),
        ),
        max_output_tokens=300,
        temperature=0.4,
    )
    output = await provider.writer.write(request, deltas)

    assert output.text == fake.chat_reply
    assert len(deltas.parts) > 3 and "".join(deltas.parts) == fake.chat_reply
    assert output.usage is not None and output.usage.cost_usd == pytest.approx(0.0001)
    [call] = fake.chat_requests
    assert call.path == "/api/v1/chat/completions"
    assert call.headers["authorization"] == f"Bearer {KEY}"
    body = call.json
    spec_check("openrouter", "/chat/completions", body)
    assert body["stream"] is True and body["max_completion_tokens"] == 300
    parts = body["messages"][1]["content"]
    assert parts[0] == {"type": "text", "text": "Describe this."}
    assert decode_data_url(parts[1]["image_url"]["url"]) == png


async def test_writer_returns_images_a_chat_model_streams(fake, client):
    fake.images_in_text_replies = 1
    provider = adapter(client, fake.base_url)
    assert provider.writer is not None
    request = WriterRequest(
        job_id="j",
        provider_model_id=NANO,
        messages=(WriterMessage(role="user", text="Describe and sketch a fox."),),
    )
    output = await provider.writer.write(request, Deltas())

    assert output.text == fake.chat_reply
    [image] = output.images
    assert Image.open(io.BytesIO(image.data)).format == "PNG"


async def test_discovery_imports_text_and_image_modalities_across_pages(fake, client):
    fake.page_size = 2
    provider = adapter(client, fake.base_url)
    assert provider.lister is not None
    found = {m.provider_model_id: m for m in await provider.lister.list_models()}

    listing = [r for r in fake.requests if r.path == "/api/v1/models"]
    assert listing[0].query == {"output_modalities": "all"}
    assert len(listing) == 3, "links.next is followed"
    assert set(found) == {NANO, FLUX, "openai/gpt-4o-mini", "openai/gpt-4o-audio"}
    assert found[NANO].input_modalities == {"text", "image"}
    assert found[NANO].output_modalities == {"image", "text"}
    assert found[FLUX].output_modalities == {"image"}
    assert found["openai/gpt-4o-mini"].output_modalities == {"text"}
    assert found["openai/gpt-4o-audio"].input_modalities == {"text"}
    assert found[NANO].display_name == "Google: Nano Banana"


async def test_fake_listing_matches_the_published_response_schema(fake, client):
    response = await client.get(f"{fake.base_url}/api/v1/models?output_modalities=all")
    validate_response("openrouter", "/models", response.json())
