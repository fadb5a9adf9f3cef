"""The Stability AI v2beta adapter through the gRPC API, against the loopback Stability fake."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from PIL import Image
from provider_helpers import (
    generated_assets,
    image_model,
    job_of,
    serving,
    solid_image,
    upload,
    warnings,
)

from limner.testing import RunningServer
from limner.testing.fakes import Fault
from limner.testing.fakes.stability import StabilityFake
from limner.testing.streams import collect, kinds, status_details, unpack
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, model_service_pb2

KEY = "sk-test-stability"
PROFILE = {
    "max_reference_images": 1,
    "supports_seed": True,
    "supports_negative_prompt": True,
    "supports_edit": True,
    "supports_aspect_ratio": True,
    "supports_sampling_parameters": True,
    "max_images_per_request": 2,
}
MODELS = {"core": "core", "ultra": "ultra", "large": "sd3.5-large", "turbo": "sd3.5-large-turbo"}


@asynccontextmanager
async def stability(
    tmp_path: Path, *, api_key: str = KEY, base_suffix: str = "", max_retries: int = 1
) -> AsyncIterator[tuple[RunningServer, StabilityFake]]:
    """A Limner server with models core, ultra, large (sd3.5-large) and turbo on the fake."""
    async with StabilityFake(api_key=KEY) as fake:
        section = {
            "kind": "stability",
            "base_url": fake.base_url + base_suffix,
            "api_key": api_key,
            "max_retries": max_retries,
        }
        models = [
            image_model(m, "stab", provider_model, PROFILE) for m, provider_model in MODELS.items()
        ]
        async with serving(tmp_path / "data", {"stab": section}, models) as server:
            yield server, fake  # type: ignore[misc]


def warnings_by_field(events: list[job_pb2.JobEvent]) -> dict[str, job_pb2.JobWarning]:
    """Warnings by field (the adapter's own come after the capability check's)."""
    return {w.field: w for w in warnings(events)}


async def generate(server: RunningServer, model: str, **options: Any) -> list[job_pb2.JobEvent]:
    request = ipb.GenerateImageRequest(
        prompt="a lighthouse at dusk", model=f"models/{model}", options=ipb.ImageOptions(**options)
    )
    return await collect(server.images.GenerateImage(request))


async def test_core_generate_is_multipart_json_with_bearer_key(tmp_path):
    async with stability(tmp_path) as (server, fake):
        events = await generate(server, "core", aspect_ratio="16:9", seed=7, negative_prompt="fog")

        assert kinds(events)[-1] == "completed", events[-1]
        [request] = fake.requests
        assert (request.method, request.path) == ("POST", "/v2beta/stable-image/generate/core")
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.headers["accept"] == "application/json"
        assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
        fields = fake.fields()
        dummy = fields.pop("none")
        assert dummy["data"] == b"", "a text-only request still sends one (empty) file part"
        assert fields == {
            "prompt": "a lighthouse at dusk",
            "output_format": "png",
            "aspect_ratio": "16:9",
            "negative_prompt": "fog",
            "seed": "7",
        }
        image = events[-1].completed.images[0]
        assert (image.width, image.height, image.seed) == (88, 48, 7)
        assert not warnings_by_field(events)
        job = await job_of(server, events)
        assert job.usage.provider_calls == 1
        assert await generated_assets(server) == [image.asset]


async def test_sd3_model_goes_to_generate_sd3_with_model_field(tmp_path):
    async with stability(tmp_path, base_suffix="/v2beta/") as (server, fake):
        events = await generate(server, "large", width=1024, height=1024, guidance_scale=4.5)

        assert kinds(events)[-1] == "completed", events[-1]
        assert fake.requests[0].path == "/v2beta/stable-image/generate/sd3"
        fields = fake.fields()
        assert fields["model"] == "sd3.5-large"
        assert fields["aspect_ratio"] == "1:1"
        assert fields["cfg_scale"] == "4.5"
        assert "mode" not in fields and "image" not in fields
        assert not warnings_by_field(events), "a square size maps exactly to 1:1"


async def test_size_without_exact_ratio_is_adjusted_and_turbo_drops_negative_prompt(tmp_path):
    async with stability(tmp_path) as (server, fake):
        events = await generate(
            server, "turbo", width=1000, height=600, negative_prompt="fog", steps=30, seed=3
        )

        assert kinds(events)[-1] == "completed", events[-1]
        fields = fake.fields()
        assert (fields["model"], fields["aspect_ratio"]) == ("sd3.5-large-turbo", "16:9")
        assert "negative_prompt" not in fields and "steps" not in fields
        found = warnings_by_field(events)
        assert found["options.width"].code == "SIZE_ADJUSTED"
        assert "1000x600" in found["options.width"].message
        assert "16:9" in found["options.width"].message
        assert found["options.negative_prompt"].code == "PARAMETER_IGNORED"
        assert "turbo" in found["options.negative_prompt"].message
        assert found["options.steps"].code == "PARAMETER_IGNORED"


async def test_unsupported_aspect_ratio_snaps_to_the_nearest_with_a_warning(tmp_path):
    async with stability(tmp_path) as (server, fake):
        events = await generate(server, "ultra", aspect_ratio="4:3")

        assert kinds(events)[-1] == "completed"
        assert fake.fields()["aspect_ratio"] == "5:4"
        warning = warnings_by_field(events)["options.aspect_ratio"]
        assert warning.code == "SIZE_ADJUSTED" and "4:3" in warning.message


async def test_ultra_with_a_reference_sends_image_and_strength(tmp_path):
    async with stability(tmp_path) as (server, fake):
        reference_bytes = solid_image((20, 90, 200), fmt="JPEG")
        reference = await upload(server, reference_bytes)
        events = await collect(
            server.images.GenerateImage(
                ipb.GenerateImageRequest(
                    prompt="in this style", model="models/ultra", reference_assets=[reference]
                )
            )
        )

        assert kinds(events)[-1] == "completed", events[-1]
        assert fake.requests[0].path == "/v2beta/stable-image/generate/ultra"
        fields = fake.fields()
        assert fields["image"]["data"] == reference_bytes
        assert fields["image"]["content_type"] == "image/jpeg"
        assert fields["strength"] == "0.6"
        assert "aspect_ratio" not in fields and "mode" not in fields


async def test_edit_with_sd3_is_image_to_image(tmp_path):
    async with stability(tmp_path) as (server, fake):
        source_bytes = solid_image((200, 30, 30), size=(128, 96))
        source = await upload(server, source_bytes)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="make it night",
                    model="models/large",
                    strength=0.4,
                    options=ipb.ImageOptions(seed=11),
                )
            )
        )

        assert kinds(events)[-1] == "completed", events[-1]
        fields = fake.fields()
        assert fields["mode"] == "image-to-image"
        assert fields["image"]["data"] == source_bytes
        assert (fields["strength"], fields["seed"], fields["model"]) == ("0.4", "11", "sd3.5-large")
        assert "aspect_ratio" not in fields
        image = events[-1].completed.images[0]
        assert (image.width, image.height, image.seed) == (128, 96, 11)


async def test_several_images_are_several_calls_with_consecutive_seeds(tmp_path):
    async with stability(tmp_path) as (server, fake):
        events = await generate(server, "core", seed=5, image_count=2)

        assert kinds(events)[-1] == "completed", events[-1]
        assert [r.form["seed"] for r in fake.requests] == [["5"], ["6"]]
        assert [i.seed for i in events[-1].completed.images] == [5, 6]
        job = await job_of(server, events)
        assert job.usage.provider_calls == 2


async def test_gif_source_is_sent_as_png(tmp_path):
    async with stability(tmp_path) as (server, fake):
        source = await upload(server, solid_image((200, 30, 30), fmt="GIF"))
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(source_asset=source, prompt="x", model="models/large")
            )
        )

        assert kinds(events)[-1] == "completed", events[-1]
        sent = fake.fields()["image"]
        assert (sent["filename"], sent["content_type"]) == ("image.png", "image/png")
        assert Image.open(io.BytesIO(sent["data"])).format == "PNG"


async def test_edit_with_source_and_reference_sends_only_the_source_and_warns(tmp_path):
    async with stability(tmp_path) as (server, fake):
        source_bytes = solid_image((200, 30, 30))
        source = await upload(server, source_bytes)
        reference = await upload(server, solid_image((30, 200, 30)))
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="x",
                    model="models/ultra",
                    reference_assets=[reference],
                )
            )
        )

        assert kinds(events)[-1] == "completed"
        assert fake.fields()["image"]["data"] == source_bytes
        warning = warnings_by_field(events)["reference_assets"]
        assert warning.code == "PARAMETER_IGNORED" and "one input image" in warning.message


async def test_more_references_than_the_profile_allows_are_refused_before_any_call(tmp_path):
    async with stability(tmp_path) as (server, fake):
        references = [await upload(server, solid_image((i * 60, 10, 10))) for i in range(2)]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await collect(
                server.images.GenerateImage(
                    ipb.GenerateImageRequest(
                        prompt="x", model="models/ultra", reference_assets=references
                    )
                )
            )

        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        details = status_details(caught.value)
        assert details["ErrorInfo"].reason == "REFERENCE_LIMIT_EXCEEDED"
        assert details["ErrorInfo"].metadata["limit"] == "1"
        assert [v.field for v in details["BadRequest"].field_violations] == ["reference_assets"]
        assert fake.requests == []


async def test_finish_reason_content_filtered_fails_without_retry_or_storage(tmp_path):
    async with stability(tmp_path, max_retries=3) as (server, fake):
        fake.arm(Fault.CONTENT_FILTERED)
        events = await generate(server, "core")

        failed = events[-1].failed
        assert failed.code == code_pb2.FAILED_PRECONDITION
        assert unpack(failed)["ErrorInfo"].reason == "CONTENT_FILTERED"
        assert len(fake.requests) == 1
        assert not [e for e in events if e.HasField("warning")], "no retry of any kind"
        assert await generated_assets(server) == []


async def test_content_moderation_403_is_content_filtered(tmp_path):
    async with stability(tmp_path, max_retries=3) as (server, fake):
        fake.moderation_403 = True
        fake.arm(Fault.CONTENT_FILTERED)
        events = await generate(server, "core")

        failed = events[-1].failed
        assert (failed.code, unpack(failed)["ErrorInfo"].reason) == (
            code_pb2.FAILED_PRECONDITION,
            "CONTENT_FILTERED",
        )
        assert "content moderation" in failed.message
        assert len(fake.requests) == 1


async def test_rate_limit_is_retried_with_warning_events(tmp_path):
    async with stability(tmp_path, max_retries=2) as (server, fake):
        fake.arm(Fault.RATE_LIMITED, times=2, retry_after_s=0.05)
        events = await generate(server, "core")

        assert kinds(events)[-1] == "completed"
        retries = [e.warning for e in events if e.warning.code == "PROVIDER_RETRY"]
        assert len(retries) == 2 and "429" in retries[0].message
        assert len(fake.requests) == 3


async def test_wrong_key_is_provider_auth_failed(tmp_path):
    async with stability(tmp_path, api_key="sk-wrong") as (server, fake):
        events = await generate(server, "core")

        failed = events[-1].failed
        assert unpack(failed)["ErrorInfo"].reason == "PROVIDER_AUTH_FAILED"
        assert "sk-wrong" not in failed.message
        assert len(fake.requests) == 1


@pytest.mark.parametrize(
    ("fault", "times", "code", "reason", "calls"),
    [
        (Fault.RATE_LIMITED, 2, code_pb2.RESOURCE_EXHAUSTED, "PROVIDER_RATE_LIMITED", 2),
        (Fault.SERVER_ERROR, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.UNAVAILABLE, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.CONNECTION_RESET, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.MALFORMED_JSON, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1),
        (Fault.BAD_REQUEST, 1, code_pb2.FAILED_PRECONDITION, "PROVIDER_REJECTED_REQUEST", 1),
        (Fault.UNAUTHORIZED, 1, code_pb2.FAILED_PRECONDITION, "PROVIDER_AUTH_FAILED", 1),
        (Fault.TEXT_INSTEAD_OF_IMAGE, 3, code_pb2.UNKNOWN, "NO_IMAGE_RETURNED", 3),
    ],
)
async def test_faults_fail_the_job_with_the_documented_status(
    tmp_path, fault, times, code, reason, calls
):
    async with stability(tmp_path) as (server, fake):
        fake.arm(fault, times=times, retry_after_s=0.05)
        events = await generate(server, "core")

        assert kinds(events)[-1] == "failed"
        failed = events[-1].failed
        assert (failed.code, unpack(failed)["ErrorInfo"].reason) == (code, reason)
        assert len(fake.requests) == calls
        assert await generated_assets(server) == []
        if fault is Fault.BAD_REQUEST:
            assert "size is not supported" in failed.message  # from Stability's errors[]


async def test_stability_has_no_model_listing(tmp_path):
    async with stability(tmp_path) as (server, fake):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.models.DiscoverModels(
                model_service_pb2.DiscoverModelsRequest(provider="providers/stab")
            )

        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert status_details(caught.value)["ErrorInfo"].reason == "DISCOVERY_UNSUPPORTED"
        assert fake.requests == []
