"""The AUTOMATIC1111 adapter through the gRPC API, against the loopback A1111 fake."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
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
from limner.testing.fakes.automatic1111 import Automatic1111Fake
from limner.testing.streams import collect, kinds, status_details, unpack
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, job_service_pb2, model_pb2, model_service_pb2

CHECKPOINT = "v1-5-pruned-emaonly.safetensors [6ce0161689]"
AUTH = ("artist", "s3cret")
PROFILE = {
    "max_reference_images": 2,
    "default_size": "512x512",
    "supports_seed": True,
    "supports_negative_prompt": True,
    "supports_edit": True,
    "supports_mask": True,
    "supports_previews": True,
    "supports_sampling_parameters": True,
    "max_images_per_request": 4,
}


@asynccontextmanager
async def a1111(
    tmp_path: Path,
    *,
    fake_options: dict[str, Any] | None = None,
    api_key: str | None = "artist:s3cret",
    base_suffix: str = "",
    checkpoint: str = CHECKPOINT,
    max_retries: int = 1,
) -> AsyncIterator[tuple[RunningServer, Automatic1111Fake]]:
    """A Limner server whose model ``sd`` runs on an A1111 fake that wants Basic auth."""
    options = {"auth": AUTH, **(fake_options or {})}
    async with Automatic1111Fake(**options) as fake:
        provider: dict[str, Any] = {
            "kind": "automatic1111",
            "base_url": fake.base_url + base_suffix,
            "max_retries": max_retries,
        }
        if api_key is not None:
            provider["api_key"] = api_key
        models = [image_model("sd", "a1111", checkpoint, PROFILE)]
        async with serving(tmp_path / "data", {"a1111": provider}, models) as server:
            yield server, fake  # type: ignore[misc]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def test_generate_posts_txt2img_and_streams_steps_and_previews(tmp_path):
    async with a1111(tmp_path, fake_options={"render_s": 0.8, "default_steps": 8}) as (
        server,
        fake,
    ):
        request = ipb.GenerateImageRequest(
            prompt="a lighthouse at dusk",
            model="models/sd",
            options=ipb.ImageOptions(
                width=512,
                height=384,
                seed=42,
                negative_prompt="blurry",
                steps=8,
                guidance_scale=5.5,
                sampler="Euler a",
                image_count=2,
            ),
        )
        events = await collect(server.images.GenerateImage(request))

        assert kinds(events)[-1] == "completed", events[-1]
        [render] = fake.renders()
        assert (render.method, render.path) == ("POST", "/sdapi/v1/txt2img")
        assert render.headers["authorization"] == basic(*AUTH)
        assert render.json == {
            "prompt": "a lighthouse at dusk",
            "negative_prompt": "blurry",
            "seed": 42,
            "width": 512,
            "height": 384,
            "batch_size": 2,
            "n_iter": 1,
            "steps": 8,
            "cfg_scale": 5.5,
            "sampler_name": "Euler a",
            "override_settings": {"sd_model_checkpoint": CHECKPOINT},
        }
        polls = [r for r in fake.requests if r.path == "/sdapi/v1/progress"]
        assert polls and all(r.headers["authorization"] == basic(*AUTH) for r in polls)

        steps = [
            (e.progress.step, e.progress.total_steps) for e in events if e.progress.total_steps
        ]
        sampling = [s for s in steps if s[1] == 8]
        assert len(sampling) >= 2, f"several real sampling steps are reported: {steps}"
        assert sampling == sorted(set(sampling)), "steps only move forward"
        assert any(e.progress.HasField("eta") for e in events if e.progress.total_steps == 8)
        previews = [e.preview for e in events if e.HasField("preview")]
        assert previews and all(p.step >= 1 for p in previews)

        images = events[-1].completed.images
        assert [(i.width, i.height, i.seed) for i in images] == [(512, 384, 42), (512, 384, 43)]
        job = await job_of(server, events)
        assert job.usage.provider_calls == 1
        assert sorted(await generated_assets(server)) == sorted(i.asset for i in images)


async def test_edit_posts_img2img_with_init_images_mask_and_strength(tmp_path):
    async with a1111(tmp_path, checkpoint="default") as (server, fake):
        source_bytes = solid_image((200, 30, 30))
        reference_bytes = solid_image((30, 200, 30))
        mask_bytes = solid_image((255, 255, 255))
        source = await upload(server, source_bytes)
        reference = await upload(server, reference_bytes)
        mask = await upload(server, mask_bytes)

        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="make it night",
                    model="models/sd",
                    mask_asset=mask,
                    strength=0.35,
                    reference_assets=[reference],
                    options=ipb.ImageOptions(seed=9),
                )
            )
        )

        assert kinds(events)[-1] == "completed", events[-1]
        [render] = fake.renders()
        assert render.path == "/sdapi/v1/img2img"
        body = render.json
        assert [base64.b64decode(i) for i in body["init_images"]] == [
            source_bytes,
            reference_bytes,
        ]
        assert base64.b64decode(body["mask"]) == mask_bytes
        assert body["denoising_strength"] == 0.35
        assert (body["width"], body["height"], body["seed"]) == (96, 64, 9)
        # The loaded checkpoint is used as is; unset options are left to A1111's defaults.
        for absent in ("override_settings", "negative_prompt", "steps", "cfg_scale"):
            assert absent not in body
        assert "sampler_name" not in body
        image = events[-1].completed.images[0]
        assert (image.width, image.height, image.seed) == (96, 64, 9)


async def test_size_off_the_8_pixel_grid_is_adjusted_with_a_warning(tmp_path):
    async with a1111(tmp_path) as (server, fake):
        request = ipb.GenerateImageRequest(
            prompt="a fox", model="models/sd", options=ipb.ImageOptions(width=500, height=301)
        )
        events = await collect(server.images.GenerateImage(request))

        assert kinds(events)[-1] == "completed"
        body = fake.renders()[0].json
        assert (body["width"], body["height"]) == (496, 304)
        [warning] = [w for w in warnings(events) if w.code == "SIZE_ADJUSTED"]
        assert "496x304" in warning.message and warning.field == "options.width"
        image = events[-1].completed.images[0]
        assert (image.width, image.height) == (496, 304)


async def test_cancel_job_interrupts_the_running_render(tmp_path):
    async with a1111(tmp_path, fake_options={"render_s": 30.0, "default_steps": 300}) as (
        server,
        fake,
    ):
        request = ipb.GenerateImageRequest(prompt="a slow castle", model="models/sd")
        events: list[job_pb2.JobEvent] = []
        stream = server.images.GenerateImage(request)
        async for response in stream:
            events.append(response.event)
            if response.event.progress.step >= 2:
                break
        job = events[0].job
        cancelled = await server.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job))
        stream.cancel()

        assert cancelled.job.state == job_pb2.JOB_STATE_CANCELLED
        interrupts = [r for r in fake.requests if r.path == "/sdapi/v1/interrupt"]
        assert [(r.method, r.headers["authorization"]) for r in interrupts] == [
            ("POST", basic(*AUTH))
        ]
        watched = await collect(server.jobs.WatchJob(job_service_pb2.WatchJobRequest(name=job)))
        assert kinds(watched)[-1] == "cancelled"
        # A1111 hands back the partial image after an interrupt; it is not stored.
        for _ in range(100):
            if not fake.rendering:
                break
            await asyncio.sleep(0.02)
        assert not fake.rendering, "the interrupted render stopped early"
        assert await generated_assets(server) == []


async def test_wrong_basic_auth_password_is_provider_auth_failed(tmp_path):
    async with a1111(tmp_path, api_key="artist:wrong") as (server, fake):
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )

        failed = events[-1].failed
        assert failed.code == code_pb2.FAILED_PRECONDITION
        assert unpack(failed)["ErrorInfo"].reason == "PROVIDER_AUTH_FAILED"
        assert "Incorrect username or password" in failed.message
        assert "wrong" not in failed.message and "s3cret" not in failed.message
        assert len(fake.renders()) == 1, "credential errors are not retried"


async def test_missing_credentials_get_401(tmp_path):
    async with a1111(tmp_path, api_key=None) as (server, fake):
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )

        assert unpack(events[-1].failed)["ErrorInfo"].reason == "PROVIDER_AUTH_FAILED"
        assert "authorization" not in fake.renders()[0].headers


async def test_rate_limit_is_retried_with_warning_events(tmp_path):
    async with a1111(tmp_path, max_retries=2) as (server, fake):
        fake.arm(Fault.RATE_LIMITED, times=2, retry_after_s=0.05)
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )

        assert kinds(events)[-1] == "completed"
        retries = [w for w in warnings(events) if w.code == "PROVIDER_RETRY"]
        assert len(retries) == 2 and "429" in retries[0].message
        assert len(fake.renders()) == 3


@pytest.mark.parametrize(
    ("fault", "times", "code", "reason", "renders"),
    [
        (Fault.RATE_LIMITED, 2, code_pb2.RESOURCE_EXHAUSTED, "PROVIDER_RATE_LIMITED", 2),
        (Fault.SERVER_ERROR, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.UNAVAILABLE, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.CONNECTION_RESET, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.MALFORMED_JSON, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1),
        (Fault.BAD_REQUEST, 1, code_pb2.FAILED_PRECONDITION, "PROVIDER_REJECTED_REQUEST", 1),
        (Fault.TEXT_INSTEAD_OF_IMAGE, 3, code_pb2.UNKNOWN, "NO_IMAGE_RETURNED", 3),
        (Fault.OVERSIZED_IMAGE, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1),
    ],
)
async def test_faults_fail_the_job_with_the_documented_status(
    tmp_path, fault, times, code, reason, renders
):
    async with a1111(tmp_path) as (server, fake):
        fake.arm(fault, times=times, retry_after_s=0.05)
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )

        assert kinds(events)[-1] == "failed"
        failed = events[-1].failed
        assert (failed.code, unpack(failed)["ErrorInfo"].reason) == (code, reason)
        assert len(fake.renders()) == renders
        assert await generated_assets(server) == []
        if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
            assert [w.code for w in warnings(events)].count("NO_IMAGE_RETRY") == 2
        if fault is Fault.BAD_REQUEST:
            assert "size is not supported" in failed.message


async def test_unknown_sampler_is_rejected_with_a1111s_message(tmp_path):
    async with a1111(tmp_path) as (server, fake):
        fake.default_steps = 3
        request = ipb.GenerateImageRequest(
            prompt="x", model="models/sd", options=ipb.ImageOptions(sampler="Nope")
        )
        events = await collect(server.images.GenerateImage(request))

        failed = events[-1].failed
        assert unpack(failed)["ErrorInfo"].reason == "PROVIDER_REJECTED_REQUEST"
        assert "Sampler not found" in failed.message


async def test_discover_models_imports_checkpoints(tmp_path):
    # A base URL given with the API suffix is normalised (no /sdapi/v1/sdapi/v1).
    async with a1111(tmp_path, base_suffix="/sdapi/v1/") as (server, fake):
        response = await server.models.DiscoverModels(
            model_service_pb2.DiscoverModelsRequest(provider="providers/a1111")
        )

        found = {m.provider_model_id: m for m in response.models}
        assert set(found) == {c["title"] for c in fake.checkpoints}
        model = found[CHECKPOINT]
        assert model.display_name == "v1-5-pruned-emaonly"
        assert set(model.input_modalities) == {model_pb2.MODALITY_TEXT, model_pb2.MODALITY_IMAGE}
        assert list(model.output_modalities) == [model_pb2.MODALITY_IMAGE]
        [listing] = [r for r in fake.requests if r.path == "/sdapi/v1/sd-models"]
        assert listing.headers["authorization"] == basic(*AUTH)

        # The imported checkpoint renders through the same adapter.
        events = await collect(
            server.images.GenerateImage(
                ipb.GenerateImageRequest(prompt="x", model=f"models/{model.name.split('/')[-1]}")
            )
        )
        assert kinds(events)[-1] == "completed"
        assert fake.renders()[-1].json["override_settings"] == {"sd_model_checkpoint": CHECKPOINT}


async def test_discovery_failure_maps_the_a1111_error(tmp_path):
    async with a1111(tmp_path, max_retries=0) as (server, fake):
        fake.arm(Fault.SERVER_ERROR)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.models.DiscoverModels(
                model_service_pb2.DiscoverModelsRequest(provider="providers/a1111")
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert status_details(caught.value)["ErrorInfo"].reason == "PROVIDER_UNAVAILABLE"


async def test_seeds_are_read_from_the_info_json_string(tmp_path):
    """Seeds come from ``info.all_seeds`` (scripts may change them), not from the request."""
    async with a1111(tmp_path) as (server, fake):
        fake.report_seeds = [1000, 1001]
        request = ipb.GenerateImageRequest(
            prompt="x", model="models/sd", options=ipb.ImageOptions(seed=5, image_count=2)
        )
        events = await collect(server.images.GenerateImage(request))

        assert fake.renders()[0].json["seed"] == 5
        assert [i.seed for i in events[-1].completed.images] == [1000, 1001]
