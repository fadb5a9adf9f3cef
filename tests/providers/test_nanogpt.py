"""The NanoGPT adapter through the gRPC API against the fake NanoGPT server, over real HTTP;
bodies are checked against NanoGPT's OpenAPI spec."""

from __future__ import annotations

from typing import Any

import grpc
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

from limner.providers.base import WriterMessage, WriterRequest
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.nanogpt import COST_PER_IMAGE, NanoGptFake
from limner.testing.streams import collect, kinds, unpack
from limner.v1 import image_service_pb2 as ipb

PROFILE = {
    "max_reference_images": 3,
    "supports_seed": True,
    "supports_edit": True,
    "supports_mask": True,
    "supports_sampling_parameters": True,
    "max_images_per_request": 4,
}
PATH = "/v1/images/generations"
MODELS = [image_model("nano", "n", "flux-kontext", PROFILE)]

fake = fake_fixture(NanoGptFake)


@pytest.fixture
def serve(tmp_path):
    return server_starter(
        tmp_path / "data", "n", kind="nanogpt", api_key="nano-test", models=MODELS
    )


def generate(prompt: str = "a tea house", **options: Any) -> ipb.GenerateImageRequest:
    return ipb.GenerateImageRequest(
        prompt=prompt, model="nano", options=ipb.ImageOptions(**options)
    )


async def test_generate_sends_nanogpt_fields_and_records_cost(fake, serve, spec_check):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(
                generate(
                    width=768,
                    height=512,
                    seed=42,
                    steps=20,
                    guidance_scale=6.5,
                    image_count=2,
                    negative_prompt="fog",
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert [i.seed for i in events[-1].completed.images] == [42, 42]
        assert warning_fields(events) == [("PARAMETER_IGNORED", "options.negative_prompt")]
        job = await job_of(server, events)
        assert job.usage.cost_usd == pytest.approx(2 * COST_PER_IMAGE)
    sent = fake.requests[-1]
    assert sent.path == PATH and sent.headers["authorization"] == "Bearer nano-test"
    assert sent.json == {
        "model": "flux-kontext",
        "prompt": "a tea house",
        "n": 2,
        "size": "768x512",
        "response_format": "b64_json",
        "seed": 42,
        "guidance_scale": 6.5,
        "num_inference_steps": 20,
    }, "no negative prompt (NanoGPT has no such field), no image fields"
    spec_check("nanogpt", PATH, sent.json)


async def test_edit_sends_one_data_url_mask_and_strength(fake, serve, spec_check):
    source_png, mask_png = fake_png(32, 32, 1), fake_png(32, 32, 2)
    async with serve(fake) as server:
        source, mask = await upload(server, source_png), await upload(server, mask_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="autumn",
                    model="nano",
                    mask_asset=mask,
                    strength=0.4,
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
    body = fake.requests[-1].json
    assert fake.requests[-1].path == PATH
    assert body["imageDataUrl"] == fake.data_url(source_png) and "imageDataUrls" not in body
    assert body["maskDataUrl"] == fake.data_url(mask_png) and body["strength"] == 0.4
    assert body["size"] == "32x32", "an edit keeps the source's size"
    spec_check("nanogpt", PATH, body)


async def test_several_inputs_use_image_data_urls(fake, serve, spec_check):
    pngs = [fake_png(16, 16, s) for s in (3, 4, 5)]
    async with serve(fake) as server:
        source, *refs = [await upload(server, p) for p in pngs]
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source, prompt="merge", model="nano", reference_assets=refs
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
    body = fake.requests[-1].json
    assert body["imageDataUrls"] == [fake.data_url(p) for p in pngs]
    assert "imageDataUrl" not in body and "strength" not in body and "maskDataUrl" not in body
    spec_check("nanogpt", PATH, body)


async def test_url_results_are_downloaded(fake, serve):
    fake.wants_url = lambda fields: True  # type: ignore[method-assign]
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]


@pytest.mark.parametrize("suffix", ["", "/", "/api", "/v1", "/api/v1", "/api/v1/"])
async def test_base_url_forms(fake, serve, suffix):
    async with serve(fake, base_url=fake.base_url + suffix) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed"
    assert fake.requests[-1].path == PATH


@pytest.mark.parametrize(
    ("fault", "code", "reason", "calls"),
    [
        (Fault.RATE_LIMITED, grpc.StatusCode.RESOURCE_EXHAUSTED, "PROVIDER_RATE_LIMITED", 2),
        (Fault.SERVER_ERROR, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.CONNECTION_RESET, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.MALFORMED_JSON, grpc.StatusCode.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1),
        (Fault.CONTENT_FILTERED, grpc.StatusCode.FAILED_PRECONDITION, "CONTENT_FILTERED", 1),
        (Fault.BAD_REQUEST, grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_REJECTED_REQUEST", 1),
        (Fault.UNAUTHORIZED, grpc.StatusCode.FAILED_PRECONDITION, "PROVIDER_AUTH_FAILED", 1),
        (Fault.TEXT_INSTEAD_OF_IMAGE, grpc.StatusCode.UNKNOWN, "NO_IMAGE_RETURNED", 3),
        (Fault.BROKEN_URL, None, "DOWNLOAD_FAILED", 1),
        (Fault.OVERSIZED_IMAGE, None, "DOWNLOAD_REFUSED", 1),
    ],
)
async def test_faults_fail_the_job_and_store_nothing(fake, serve, fault, code, reason, calls):
    fake.arm(fault, times=5, retry_after_s=0.05)
    async with serve(fake, timeout_s=5) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "failed", events[-1]
        status = events[-1].failed
        assert unpack(status)["ErrorInfo"].reason == reason
        if code is not None:
            assert status.code == code.value[0]
        retries = [
            e for e in events if e.HasField("warning") and e.warning.code == "PROVIDER_RETRY"
        ]
        assert len(retries) == (1 if calls == 2 else 0)
        assert await stored_assets(server) == [], "nothing stored on failure"
    assert len([r for r in fake.requests if r.path == PATH]) == calls


async def test_writer_uses_api_v1_chat_completions(fake, client, spec_check):
    provider = provider_adapter(
        client, "nanogpt", "n", base_url=f"{fake.base_url}/api", api_key="k"
    )
    assert provider.writer is not None and provider.lister is None
    deltas = Deltas()
    output = await provider.writer.write(
        WriterRequest(
            job_id="j",
            provider_model_id="chatgpt-4o-latest",
            messages=(WriterMessage(role="user", text="hi"),),
        ),
        deltas,
    )
    assert output.text == fake.chat_reply and len(deltas.parts) > 1
    assert fake.requests[-1].path == "/api/v1/chat/completions"
    spec_check("nanogpt", "/v1/chat/completions", fake.requests[-1].json)
