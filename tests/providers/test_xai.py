"""The xAI adapter through the gRPC API against the fake xAI server, over real HTTP.
(No xAI OpenAPI spec is vendored in tests/providers/specs, so bodies are checked field by
field.)"""

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
from limner.providers.xai import aspect_and_resolution
from limner.testing.fakes import Fault, fake_png
from limner.testing.fakes.xai import TICKS_PER_IMAGE, XaiFake
from limner.testing.streams import collect, kinds, unpack
from limner.v1 import image_service_pb2 as ipb

PROFILE = {
    "max_reference_images": 3,
    "supports_edit": True,
    "supports_aspect_ratio": True,
    "max_images_per_request": 4,
}
MODELS = [image_model("grok", "x", "grok-imagine-image", PROFILE)]

fake = fake_fixture(XaiFake)


@pytest.fixture
def serve(tmp_path):
    return server_starter(tmp_path / "data", "x", kind="xai", api_key="xai-test", models=MODELS)


def generate(prompt: str = "a red kite", **options: Any) -> ipb.GenerateImageRequest:
    return ipb.GenerateImageRequest(
        prompt=prompt, model="grok", options=ipb.ImageOptions(**options)
    )


async def test_generate_sends_ratio_and_resolution_and_records_cost(fake, serve):
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(width=1920, height=1080)))
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == [("SIZE_ADJUSTED", "options.width")], (
            "1920x1080 is not exact"
        )
        job = await job_of(server, events)
        assert job.usage.cost_usd == pytest.approx(TICKS_PER_IMAGE / 10**10)  # 2 cents
        assert job.usage.provider_calls == 1
    sent = fake.requests[-1]
    assert sent.path == "/v1/images/generations"
    assert sent.headers["authorization"] == "Bearer xai-test"
    assert sent.json == {
        "model": "grok-imagine-image",
        "prompt": "a red kite",
        "n": 1,
        "response_format": "b64_json",
        "aspect_ratio": "16:9",
        "resolution": "2k",
    }, "no size, quality, style or seed"


async def test_square_1k_needs_no_warning_and_seed_is_not_sent(fake, serve):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(generate(width=1024, height=1024, seed=3, image_count=2))
        )
        assert kinds(events)[-1] == "completed"
        assert len(events[-1].completed.images) == 2
        assert warning_fields(events) == [("PARAMETER_IGNORED", "options.seed")]
    body = fake.requests[-1].json
    assert (body["aspect_ratio"], body["resolution"], body["n"]) == ("1:1", "1k", 2)
    assert "seed" not in body and "size" not in body


async def test_caller_aspect_ratio_wins(fake, serve):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(generate(width=2048, height=1024, aspect_ratio="2:1"))
        )
        assert kinds(events)[-1] == "completed" and warning_fields(events) == []
    assert (fake.requests[-1].json["aspect_ratio"], fake.requests[-1].json["resolution"]) == (
        "2:1",
        "2k",
    )


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1024, 1024), ("1:1", "1k", True)),
        ((1024, 1536), ("2:3", "1.5k", True)),
        ((1200, 1000), ("4:3", "1k", False)),
        ((2048, 1024), ("2:1", "2k", True)),
        ((1920, 1080), ("16:9", "2k", False)),
        ((1000, 3000), ("9:20", "2k", False)),
    ],
)
def test_size_mapping(size, expected):
    assert aspect_and_resolution(*size) == expected


async def test_url_results_are_downloaded(fake, serve):
    fake.answer_with_urls = True
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]
    files = [r.path for r in fake.requests if r.path.startswith("/files/")]
    assert files == [], "downloads are not recorded as API requests"
    assert events[-1].completed.images[0].width == 64


async def test_b64_with_a_data_prefix_is_tolerated(fake, serve):
    fake.b64_data_prefix = True
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/"])
async def test_base_url_forms(fake, serve, suffix):
    async with serve(fake, base_url=fake.base_url + suffix) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed"
    assert fake.requests[-1].path == "/v1/images/generations"


async def test_edit_with_one_image_uses_image(fake, serve):
    source_png = fake_png(32, 32, 4)
    async with serve(fake) as server:
        source = await upload(server, source_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="paint it blue",
                    model="grok",
                    options=ipb.ImageOptions(width=1024, height=1024),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
    sent = fake.requests[-1]
    assert sent.path == "/v1/images/edits"
    assert sent.headers["content-type"].startswith("application/json")
    body = sent.json
    assert body["image"] == {"url": fake.data_url(source_png)} and "images" not in body
    assert body["prompt"] == "paint it blue" and body["response_format"] == "b64_json"


async def test_edit_with_references_uses_images_and_warns_about_the_mask(fake, serve):
    pngs = [fake_png(32, 32, s) for s in (5, 6, 7)]
    async with serve(fake) as server:
        source, reference, mask = [await upload(server, p) for p in pngs]
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="combine <IMAGE_0> and <IMAGE_1>",
                    model="grok",
                    mask_asset=mask,
                    reference_assets=[reference],
                    options=ipb.ImageOptions(width=1024, height=1024),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert ("PARAMETER_IGNORED", "mask_asset") in warning_fields(events)
    body = fake.requests[-1].json
    assert body["images"] == [{"url": fake.data_url(pngs[0])}, {"url": fake.data_url(pngs[1])}]
    assert "image" not in body and "mask" not in body


async def test_references_without_a_source_go_to_edits(fake, serve):
    async with serve(fake) as server:
        reference = await upload(server, fake_png(16, 16, 9))
        events = await collect(
            server.images.GenerateImage(
                ipb.GenerateImageRequest(
                    prompt="in this style", model="grok", reference_assets=[reference]
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
    assert fake.requests[-1].path == "/v1/images/edits"
    assert fake.requests[-1].json["image"]["url"].startswith("data:image/png;base64,")


@pytest.mark.parametrize(
    ("fault", "code", "reason", "calls"),
    [
        (Fault.RATE_LIMITED, grpc.StatusCode.RESOURCE_EXHAUSTED, "PROVIDER_RATE_LIMITED", 2),
        (Fault.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
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
        if calls > 1 and reason != "NO_IMAGE_RETURNED":
            assert [w for w, _ in warning_fields(events)] == ["PROVIDER_RETRY"]
        assert await stored_assets(server) == [], "nothing stored on failure"
    assert len([r for r in fake.requests if not r.path.startswith("/files/")]) == calls


async def test_discovery_and_writer(fake, client):
    provider = provider_adapter(client, "xai", "x", base_url=fake.base_url, api_key="xai-k")
    assert provider.lister is not None and provider.writer is not None
    found = {m.provider_model_id: m for m in await provider.lister.list_models()}
    assert fake.requests[-1].path == "/v1/image-generation-models"
    assert found["grok-imagine-image"].input_modalities == {"text", "image"}
    assert found["grok-2-image-1212"].input_modalities == {"text"}
    assert found["grok-2-image-1212"].output_modalities == {"image"}

    deltas = Deltas()
    output = await provider.writer.write(
        WriterRequest(
            job_id="j",
            provider_model_id="grok-4",
            messages=(WriterMessage(role="user", text="hello"),),
        ),
        deltas,
    )
    assert output.text == fake.chat_reply and "".join(deltas.parts) == output.text
    assert fake.requests[-1].path == "/v1/chat/completions"
    assert fake.requests[-1].headers["authorization"] == "Bearer xai-k"
