"""The OpenAI adapter through the gRPC API against the fake OpenAI server, over real HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from provider_helpers import (
    Deltas,
    fake_fixture,
    image_model,
    job_of,
    provider_adapter,
    server_starter,
    stored_assets,
    upload,
    warning_fields,
)

from limner.providers.base import Provider, WriterMessage, WriterRequest
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.openai import OpenAIFake
from limner.testing.streams import collect, kinds, unpack
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2
from limner.v1 import job_service_pb2 as jspb

GPT_PROFILE = {
    "max_reference_images": 4,
    "supports_edit": True,
    "supports_mask": True,
    "supports_previews": True,
    "max_images_per_request": 4,
}
DALLE3_PROFILE = {"max_images_per_request": 1}
DALLE2_PROFILE = {
    "max_reference_images": 2,
    "supports_edit": True,
    "supports_mask": True,
    "max_images_per_request": 4,
}


MODELS = [
    image_model("gpt-image", "oa", "gpt-image-1", GPT_PROFILE),
    image_model("dalle3", "oa", "dall-e-3", DALLE3_PROFILE),
    image_model("dalle2", "oa", "dall-e-2", DALLE2_PROFILE),
]

fake = fake_fixture(OpenAIFake)


@pytest.fixture
def serve(tmp_path):
    return server_starter(tmp_path / "data", "oa", kind="openai", api_key="sk-test", models=MODELS)


def generate(prompt: str = "a lighthouse", model: str = "gpt-image", **options: Any):
    return ipb.GenerateImageRequest(prompt=prompt, model=model, options=ipb.ImageOptions(**options))


def form_as_json(form: dict[str, list[Any]]) -> dict[str, Any]:
    """A recorded multipart form as the JSON value the spec's multipart schema describes:
    typed fields decoded, each file part a placeholder string, ``image[]`` as ``image``."""
    body: dict[str, Any] = {}
    for name, values in form.items():
        items = ["<file>" if isinstance(v, dict) else _typed(v) for v in values]
        if name.endswith("[]"):
            body[name[:-2]] = items
        else:
            body[name] = items[0]
    return body


def _typed(value: str) -> Any:
    if value in ("true", "false"):
        return value == "true"
    return int(value) if value.isdigit() else value


# -- generate ------------------------------------------------------------------------


async def test_gpt_image_streams_partial_images_as_previews(fake, serve, spec_check):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(
                generate(width=1024, height=1536, seed=5, negative_prompt="blur")
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        previews = [e for e in events if e.HasField("preview")]
        assert [p.preview.step for p in previews] == [1, 2]
        steps = [
            (e.progress.step, e.progress.total_steps) for e in events if e.progress.total_steps
        ]
        assert steps == [(1, 3), (2, 3), (3, 3)]
        assert ("PARAMETER_IGNORED", "options.negative_prompt") in warning_fields(events)
        job = await job_of(server, events)
        assert (job.usage.input_tokens, job.usage.output_tokens) == (50, 100)
        assert job.usage.total_tokens == 150 and job.usage.provider_calls >= 1

    sent = fake.requests[-1]
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == "Bearer sk-test"
    body = sent.json
    assert body == {
        "model": "gpt-image-1",
        "prompt": "a lighthouse",
        "n": 1,
        "size": "1024x1536",
        "stream": True,
        "partial_images": 2,
    }, "no response_format, seed or negative_prompt for GPT image models"
    spec_check("openai", "/images/generations", body)


async def test_gpt_image_several_images_without_streaming(fake, serve, spec_check):
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "completed"
        assert len(events[-1].completed.images) == 2
        assert not any(e.HasField("preview") for e in events)
        job = await job_of(server, events)
        assert job.usage.output_tokens == 200
    body = fake.requests[-1].json
    assert "stream" not in body and "partial_images" not in body and "response_format" not in body
    assert body["n"] == 2 and body["size"] == "1024x1024"
    spec_check("openai", "/images/generations", body)


async def test_dalle3_gets_b64_and_a_supported_size(fake, serve, spec_check):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(generate(model="dalle3", width=1280, height=720))
        )
        assert kinds(events)[-1] == "completed"
        assert ("SIZE_ADJUSTED", "options.width") in warning_fields(events)
        job = await job_of(server, events)
        assert job.usage.total_tokens == 0, "DALL·E reports no usage"
    body = fake.requests[-1].json
    assert body["response_format"] == "b64_json" and body["size"] == "1792x1024"
    assert "stream" not in body and "seed" not in body
    spec_check("openai", "/images/generations", body)


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/"])
async def test_base_url_with_or_without_v1(fake, serve, suffix):
    async with serve(fake, base_url=fake.base_url + suffix) as server:
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "completed"
    assert fake.requests[-1].path == "/v1/images/generations"


# -- edit ----------------------------------------------------------------------------


async def test_gpt_image_edit_sends_multipart_images_and_mask(fake, serve, spec_check):
    source_png, reference_png, mask_png = (
        fake_png(32, 32, 1),
        fake_png(32, 32, 2),
        fake_png(32, 32, 3),
    )
    async with serve(fake) as server:
        source = await upload(server, source_png)
        reference = await upload(server, reference_png)
        mask = await upload(server, mask_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="make it night",
                    model="gpt-image",
                    mask_asset=mask,
                    reference_assets=[reference],
                    options=ipb.ImageOptions(width=1024, height=1024),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert [e.preview.step for e in events if e.HasField("preview")] == [1, 2]

    sent = fake.requests[-1]
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("multipart/form-data")
    form = sent.form
    assert [f["data"] for f in form["image[]"]] == [source_png, reference_png]
    assert [f["content_type"] for f in form["image[]"]] == ["image/png", "image/png"]
    assert form["mask"][0]["data"] == mask_png
    fields = {k: v[0] for k, v in form.items() if k not in ("image[]", "mask")}
    assert fields == {
        "model": "gpt-image-1",
        "prompt": "make it night",
        "n": "1",
        "size": "1024x1024",
        "stream": "true",
        "partial_images": "2",
    }
    spec_check("openai", "/images/edits", form_as_json(form), content_type="multipart/form-data")


async def test_dalle2_edit_sends_one_image_and_warns_about_the_rest(fake, serve, spec_check):
    async with serve(fake) as server:
        source = await upload(server, fake_png(64, 64, 1))
        reference = await upload(server, fake_png(64, 64, 2))
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="add a hat",
                    model="dalle2",
                    reference_assets=[reference],
                    options=ipb.ImageOptions(width=512, height=512),
                )
            )
        )
        assert kinds(events)[-1] == "completed"
        assert ("PARAMETER_IGNORED", "reference_assets") in warning_fields(events)
    form = fake.requests[-1].form
    assert "image[]" not in form and len(form["image"]) == 1
    assert form["response_format"] == ["b64_json"] and "stream" not in form
    spec_check("openai", "/images/edits", form_as_json(form), content_type="multipart/form-data")


# -- faults --------------------------------------------------------------------------


async def test_rate_limit_retry_is_a_job_event_then_succeeds(fake, serve):
    fake.arm(Fault.RATE_LIMITED, retry_after_s=0.05)
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "completed"
        retries = [e.warning for e in events if e.HasField("warning")]
        assert [w.code for w in retries] == ["PROVIDER_RETRY"]
        assert "HTTP 429" in retries[0].message
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("fault", "code", "reason", "calls"),
    [
        (Fault.RATE_LIMITED, "RESOURCE_EXHAUSTED", "PROVIDER_RATE_LIMITED", 2),
        (Fault.SERVER_ERROR, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 2),
        (Fault.UNAVAILABLE, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 2),
        (Fault.CONNECTION_RESET, "UNAVAILABLE", "PROVIDER_UNAVAILABLE", 2),
        (Fault.MALFORMED_JSON, "UNAVAILABLE", "PROVIDER_BAD_RESPONSE", 1),
        (Fault.CONTENT_FILTERED, "FAILED_PRECONDITION", "CONTENT_FILTERED", 1),
        (Fault.BAD_REQUEST, "FAILED_PRECONDITION", "PROVIDER_REJECTED_REQUEST", 1),
        (Fault.UNAUTHORIZED, "FAILED_PRECONDITION", "PROVIDER_AUTH_FAILED", 1),
        (Fault.TEXT_INSTEAD_OF_IMAGE, "UNKNOWN", "NO_IMAGE_RETURNED", 3),
        (Fault.BROKEN_URL, None, "DOWNLOAD_FAILED", 1),
        (Fault.OVERSIZED_IMAGE, None, "DOWNLOAD_REFUSED", 1),
    ],
)
async def test_faults_fail_the_job_and_store_nothing(fake, serve, fault, code, reason, calls):
    import grpc

    fake.arm(fault, times=5, retry_after_s=0.05)
    async with serve(fake, timeout_s=5) as server:
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "failed", events[-1]
        status = events[-1].failed
        info = unpack(status)["ErrorInfo"]
        assert info.reason == reason
        if code is not None:
            assert status.code == getattr(grpc.StatusCode, code).value[0]
        assert "iVBOR" not in status.message
        assert await stored_assets(server) == [], "nothing stored on failure"
    assert len(fake.requests) == calls


async def test_content_filter_while_streaming(fake, serve):
    fake.arm(Fault.CONTENT_FILTERED)
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert unpack(events[-1].failed)["ErrorInfo"].reason == "CONTENT_FILTERED"
        assert await stored_assets(server) == []
    assert fake.requests[-1].json["stream"] is True and len(fake.requests) == 1


async def test_dalle3_refuses_several_images_before_the_call(fake, serve):
    import grpc

    async with serve(fake) as server:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await collect(server.images.GenerateImage(generate(model="dalle3", image_count=2)))
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fake.requests == []


# -- writer and discovery ---------------------------------------------------------------


def _provider(fake: OpenAIFake, client: httpx.AsyncClient) -> Provider:
    return provider_adapter(client, "openai", "oa", base_url=f"{fake.base_url}/v1", api_key="sk-w")


async def test_writer_uses_v1_chat_completions(fake, client, spec_check):
    provider = _provider(fake, client)
    assert provider.writer is not None
    request = WriterRequest(
        job_id="j",
        provider_model_id="gpt-4o-mini",
        messages=(WriterMessage(role="user", text="hi", images=()),),
        max_output_tokens=64,
    )
    deltas = Deltas()
    output = await provider.writer.write(request, deltas)
    assert output.text == fake.chat_reply and len(deltas.parts) > 1
    sent = fake.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.headers["authorization"] == "Bearer sk-w"
    assert sent.json["max_completion_tokens"] == 64 and "max_tokens" not in sent.json
    spec_check("openai", "/chat/completions", sent.json)


async def test_discovery_lists_image_models(fake, client):
    provider = _provider(fake, client)
    assert provider.lister is not None
    found = {m.provider_model_id: m for m in await provider.lister.list_models()}
    assert sorted(found) == ["dall-e-3", "gpt-image-1"]
    assert found["gpt-image-1"].input_modalities == {"text", "image"}
    assert found["dall-e-3"].input_modalities == {"text"}
    assert found["gpt-image-1"].output_modalities == {"image"}
    assert fake.requests[-1].path == "/v1/models"


async def test_cancel_job_interrupts_the_http_call(fake, serve):
    # Long enough that the cancel surely lands while the fake is still "rendering".
    fake.arm(Fault.LATENCY, delay_s=2.0)
    async with serve(fake) as server:
        call = server.images.GenerateImage(generate(image_count=2))
        events = []
        async for response in call:
            events.append(response.event)
            if fake.requests:
                break
        for _ in range(100):
            if fake.requests:
                break
            await asyncio.sleep(0.02)
        assert fake.requests, "the provider call is in flight"
        cancelled = (await server.jobs.CancelJob(jspb.CancelJobRequest(name=events[0].job))).job
        assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
        rest = [response.event async for response in call]
        assert kinds(rest)[-1] == "cancelled"
        assert await stored_assets(server) == []
    assert len(fake.requests) == 1, "a cancelled call is not retried"
