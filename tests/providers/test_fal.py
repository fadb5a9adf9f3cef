"""The fal adapter through the gRPC API against the fake fal queue, over real HTTP. (fal
publishes no OpenAPI spec for its queue, and each model's input schema is its own, so the
bodies are checked field by field against the fake's per-endpoint table.)"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from provider_helpers import (
    fake_fixture,
    generated_assets,
    image_model,
    server_starter,
    solid_image,
    stored_assets,
    upload,
    warning_fields,
    warnings,
)

from limner.errors import ContentFiltered, ProviderRejected, Unavailable
from limner.providers.fal import app_id, request_error
from limner.testing.fakes import Fault
from limner.testing.fakes.fal import FalFake, FalFault
from limner.testing.streams import collect, kinds, logged, unpack
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2
from limner.v1 import job_service_pb2 as jspb

KEY = "fal-test-key"
FLUX = {"supports_seed": True, "supports_sampling_parameters": True, "max_images_per_request": 4}
MODELS = [
    image_model("flux", "fal", "fal-ai/flux/dev", FLUX),
    image_model(
        "flux-i2i",
        "fal",
        "fal-ai/flux/dev/image-to-image",
        {**FLUX, "supports_edit": True, "max_reference_images": 1},
    ),
    image_model(
        "kontext",
        "fal",
        "fal-ai/flux-pro/kontext",
        {"supports_seed": True, "supports_edit": True, "supports_aspect_ratio": True},
    ),
    image_model(
        "kontext-multi",
        "fal",
        "fal-ai/flux-pro/kontext/max/multi",
        {"supports_edit": True, "max_reference_images": 2},
    ),
    image_model(
        "inpaint",
        "fal",
        "fal-ai/flux-lora/inpainting",
        {"supports_seed": True, "supports_edit": True, "supports_mask": True},
    ),
    image_model(
        "sdxl",
        "fal",
        "fal-ai/fast-sdxl",
        {"supports_seed": True, "supports_negative_prompt": True, **FLUX},
    ),
    image_model("missing", "fal", "fal-ai/no-such-model", {}),
]

fake = fake_fixture(FalFake, api_key=KEY)


@pytest.fixture
def serve(tmp_path):
    return server_starter(tmp_path / "data", "fal", kind="fal", api_key=KEY, models=MODELS)


def generate(prompt: str = "a lighthouse at dusk", model: str = "flux", **options: Any):
    return ipb.GenerateImageRequest(prompt=prompt, model=model, options=ipb.ImageOptions(**options))


def posts(fake: FalFake) -> list[Any]:
    return [r for r in fake.requests if r.method == "POST"]


def fal_queue_progress(events: list[job_pb2.JobEvent]) -> list[job_pb2.JobProgress]:
    return [
        e.progress
        for e in events
        if e.HasField("progress")
        and e.progress.stage == job_pb2.JOB_STAGE_QUEUED
        and "fal's queue" in e.progress.message
    ]


async def test_generate_reports_fal_queue_positions_then_steps_and_completes(fake, serve):
    fake.queue_length, fake.tick_s = 3, 0.05
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(
                generate(width=1024, height=768, seed=7, steps=28, guidance_scale=3.5)
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        queued = fal_queue_progress(events)
        positions = [p.queue_position for p in queued]
        assert positions, "fal's queue positions reached the client"
        assert set(positions) <= {1, 2, 3} and positions == sorted(positions, reverse=True)
        assert all(e.transient for e in events if e.HasField("progress") and e.progress in queued)
        steps = [e.progress for e in logged(events) if e.progress.total_steps == 3]
        assert [s.step for s in steps] == [1, 2, 3], "runner log counters become steps"
        assert steps[0].message.startswith("fal: 1/3")
        [image] = events[-1].completed.images
        assert (image.width, image.height, image.seed) == (1024, 768, 7)
        assert warning_fields(events) == []
        assert len(await generated_assets(server)) == 1
    [submit] = posts(fake)
    assert submit.path == "/fal-ai/flux/dev"
    assert submit.headers["authorization"] == f"Key {KEY}"
    assert submit.json == {
        "prompt": "a lighthouse at dusk",
        "num_images": 1,
        "seed": 7,
        "num_inference_steps": 28,
        "guidance_scale": 3.5,
        "image_size": "landscape_4_3",
    }
    request_id = fake.submitted[0].id
    # Request paths name the app (fal-ai/flux), not the endpoint (fal-ai/flux/dev).
    status_calls = [r for r in fake.requests if r.method == "GET" and "/requests/" in r.path]
    assert [(r.path, r.query) for r in status_calls] == [
        (f"/fal-ai/flux/requests/{request_id}/status/stream", {"logs": "1"}),
        (f"/fal-ai/flux/requests/{request_id}", {}),
    ]
    assert all(r.headers["authorization"] == f"Key {KEY}" for r in status_calls)
    assert fake.ignored_fields == [] and fake.cancels == []


async def test_a_size_without_a_preset_is_sent_as_width_and_height(fake, serve):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(generate(width=1000, height=600, image_count=2))
        )
        assert kinds(events)[-1] == "completed", events[-1]
        images = events[-1].completed.images
        assert [(i.width, i.height) for i in images] == [(1000, 600)] * 2
        assert not any(i.HasField("seed") for i in images), "a batch shares one seed"
    body = posts(fake)[0].json
    assert body["image_size"] == {"width": 1000, "height": 600} and body["num_images"] == 2


async def test_image_to_image_sends_the_source_as_a_data_uri_with_strength(fake, serve):
    source_png = solid_image((200, 40, 40), (96, 64))
    async with serve(fake) as server:
        source = await upload(server, source_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source, prompt="make it night", model="flux-i2i", strength=0.7
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == []
        [image] = events[-1].completed.images
        assert (image.width, image.height) == (96, 64)
    body = posts(fake)[0].json
    assert posts(fake)[0].path == "/fal-ai/flux/dev/image-to-image"
    assert body["image_url"] == fake.data_url(source_png)
    assert body["strength"] == 0.7
    assert "image_size" not in body and "image_urls" not in body
    assert fake.ignored_fields == []


async def test_kontext_edit_sends_the_aspect_ratio(fake, serve):
    source_png = solid_image((10, 120, 40), (64, 64))
    async with serve(fake) as server:
        source = await upload(server, source_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="put a hat on it",
                    model="kontext",
                    options=ipb.ImageOptions(aspect_ratio="16:9", seed=11),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == []
    body = posts(fake)[0].json
    assert posts(fake)[0].path == "/fal-ai/flux-pro/kontext"
    assert body == {
        "prompt": "put a hat on it",
        "num_images": 1,
        "seed": 11,
        "aspect_ratio": "16:9",
        "image_url": fake.data_url(source_png),
    }
    assert fake.ignored_fields == []


async def test_several_input_images_go_as_image_urls_source_first(fake, serve):
    pngs = [solid_image((i * 60, 20, 90), (32, 32)) for i in range(3)]
    async with serve(fake) as server:
        source, *references = [await upload(server, p) for p in pngs]
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="combine them",
                    model="kontext-multi",
                    reference_assets=references,
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
    body = posts(fake)[0].json
    assert body["image_urls"] == [fake.data_url(p) for p in pngs]
    assert "image_url" not in body


async def test_inpainting_sends_the_mask(fake, serve):
    source_png, mask_png = (
        solid_image((90, 90, 90), (64, 64)),
        solid_image((255, 255, 255), (64, 64)),
    )
    async with serve(fake) as server:
        source, mask = await upload(server, source_png), await upload(server, mask_png)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    mask_asset=mask,
                    prompt="a window",
                    model="inpaint",
                    strength=0.85,
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
    body = posts(fake)[0].json
    assert body["image_url"] == fake.data_url(source_png)
    assert body["mask_url"] == fake.data_url(mask_png)
    assert body["strength"] == 0.85


async def test_negative_prompt_is_sent_and_the_sampler_is_warned_about(fake, serve):
    async with serve(fake) as server:
        events = await collect(
            server.images.GenerateImage(
                generate(model="sdxl", negative_prompt="fog", sampler="euler")
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == [("PARAMETER_IGNORED", "options.sampler")]
    body = posts(fake)[0].json
    assert body["negative_prompt"] == "fog" and "sampler" not in body


async def test_an_edit_at_another_size_warns_that_fal_keeps_the_source_size(fake, serve):
    async with serve(fake) as server:
        source = await upload(server, solid_image((1, 2, 3), (96, 64)))
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="wider",
                    model="flux-i2i",
                    options=ipb.ImageOptions(width=512, height=512),
                )
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == [("SIZE_ADJUSTED", "options.width")]
    assert "image_size" not in posts(fake)[0].json


async def test_data_uri_results_are_decoded(fake, serve):
    fake.answer_with_data_uris = True
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(width=512, height=512)))
        assert kinds(events)[-1] == "completed", events[-1]
        assert events[-1].completed.images[0].width == 512
    assert posts(fake)[0].json["image_size"] == "square"


@pytest.mark.parametrize("fault", [FalFault.STREAM_BROKEN, FalFault.STREAM_MALFORMED])
async def test_a_failing_status_stream_falls_back_to_polling(fake, serve, fault):
    fake.arm_fal(fault)
    fake.queue_length = 2
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]
        assert warning_fields(events) == [], "falling back is not a warning"
    request_id = fake.submitted[0].id
    polls = [r for r in fake.requests if r.path == f"/fal-ai/flux/requests/{request_id}/status"]
    assert polls and all(r.query == {"logs": "1"} for r in polls)


async def test_foreign_status_urls_are_not_followed(fake, serve, monkeypatch):
    """The key goes only to the configured origin: URLs fal returns elsewhere are replaced
    by the documented paths on the base URL."""
    urls = fake._urls

    def foreign(item):
        return {
            name: url.replace(fake.base_url, "http://192.0.2.1:9")
            for name, url in urls(item).items()
        }

    monkeypatch.setattr(fake, "_urls", foreign)
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "completed", events[-1]


async def test_cancel_while_queued_takes_the_request_off_fals_queue(fake, serve):
    fake.queue_length, fake.hold_queued = 2, True
    async with serve(fake) as server:
        call = server.images.GenerateImage(generate())
        events = []
        async for response in call:
            events.append(response.event)
            if fal_queue_progress(events):
                break
        cancelled = (await server.jobs.CancelJob(jspb.CancelJobRequest(name=events[0].job))).job
        assert cancelled.state == job_pb2.JOB_STATE_CANCELLED
        rest = [response.event async for response in call]
        assert kinds(rest)[-1] == "cancelled"
        assert warnings(events + rest, "PROVIDER_CANCEL_INCOMPLETE") == []
        assert await stored_assets(server) == []
    request_id = fake.submitted[0].id
    assert fake.cancels == [(request_id, "IN_QUEUE")]
    [put] = [r for r in fake.requests if r.method == "PUT"]
    assert put.path == f"/fal-ai/flux/requests/{request_id}/cancel"
    assert put.headers["authorization"] == f"Key {KEY}"
    assert not any(r.path == f"/fal-ai/flux/requests/{request_id}" for r in fake.requests)


@pytest.mark.parametrize(
    ("answer", "said"),
    [("CANCELLATION_REQUESTED", "already running"), ("ALREADY_COMPLETED", "already finished")],
)
async def test_cancel_while_running_warns_that_fal_may_still_finish_it(fake, serve, answer, said):
    fake.hold_running, fake.running_cancel = True, answer
    async with serve(fake) as server:
        call = server.images.GenerateImage(generate())
        events = []
        async for response in call:
            events.append(response.event)
            if response.event.progress.message.startswith("fal: "):
                break
        job = events[0].job
        cancelled = (await server.jobs.CancelJob(jspb.CancelJobRequest(name=job))).job
        assert cancelled.state == job_pb2.JOB_STATE_CANCELLED, "the client's job is cancelled"
        rest = [response.event async for response in call]
        assert kinds(rest)[-1] == "cancelled"
        [warning] = warnings(rest, "PROVIDER_CANCEL_INCOMPLETE")
        assert said in warning.message and fake.submitted[0].id in warning.message
        assert await stored_assets(server) == []
    fake.hold_running = False
    assert fake.cancels == [(fake.submitted[0].id, "IN_PROGRESS")]


async def test_nsfw_flagged_images_are_content_filtered_and_never_stored(fake, serve):
    fake.arm(Fault.CONTENT_FILTERED)
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "failed", events[-1]
        failed = events[-1].failed
        assert failed.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert unpack(failed)["ErrorInfo"].reason == "CONTENT_FILTERED"
        assert fake.submitted[0].id in failed.message
        assert await stored_assets(server) == []
    assert len(posts(fake)) == 1, "content filtering is not retried"


async def test_a_partly_flagged_batch_keeps_only_the_clean_images(fake, serve):
    fake.nsfw_flags = [True, False]
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(image_count=2)))
        assert kinds(events)[-1] == "completed", events[-1]
        assert len(events[-1].completed.images) == 1
        [warning] = warnings(events, "CONTENT_FILTERED")
        assert "1 of 2" in warning.message
        assert len(await generated_assets(server)) == 1


FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize(
    ("fault", "code", "reason", "submits"),
    [
        (Fault.RATE_LIMITED, grpc.StatusCode.RESOURCE_EXHAUSTED, "PROVIDER_RATE_LIMITED", 2),
        (Fault.SERVER_ERROR, UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.UNAVAILABLE, UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.CONNECTION_RESET, UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2),
        (Fault.MALFORMED_JSON, UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1),
        (Fault.BAD_REQUEST, FAILED_PRECONDITION, "PROVIDER_REJECTED_REQUEST", 1),
        (Fault.UNAUTHORIZED, FAILED_PRECONDITION, "PROVIDER_AUTH_FAILED", 1),
        (Fault.CONTENT_FILTERED, FAILED_PRECONDITION, "CONTENT_FILTERED", 1),
        (Fault.TEXT_INSTEAD_OF_IMAGE, grpc.StatusCode.UNKNOWN, "NO_IMAGE_RETURNED", 3),
        (Fault.BROKEN_URL, None, "DOWNLOAD_FAILED", 1),
        (Fault.OVERSIZED_IMAGE, None, "DOWNLOAD_REFUSED", 1),
        (FalFault.REQUEST_ERROR, UNAVAILABLE, "PROVIDER_UNAVAILABLE", 1),
        (FalFault.RESULT_REJECTED, FAILED_PRECONDITION, "PROVIDER_REJECTED_REQUEST", 1),
        (FalFault.CONTENT_POLICY, FAILED_PRECONDITION, "CONTENT_FILTERED", 1),
        (FalFault.MALFORMED_RESULT, UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1),
    ],
)
async def test_faults_fail_the_job_and_store_nothing(fake, serve, fault, code, reason, submits):
    if isinstance(fault, FalFault):
        fake.arm_fal(fault, times=5)
    else:
        fake.arm(fault, times=5, retry_after_s=0.05)
    async with serve(fake, timeout_s=5) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert kinds(events)[-1] == "failed", events[-1]
        status = events[-1].failed
        assert unpack(status)["ErrorInfo"].reason == reason, status.message
        if code is not None:
            assert status.code == code.value[0]
        if submits > 1 and reason != "NO_IMAGE_RETURNED":
            assert [w for w, _ in warning_fields(events)] == ["PROVIDER_RETRY"]
        assert await stored_assets(server) == [], "nothing stored on failure"
    assert len(posts(fake)) == submits
    assert not [r for r in fake.requests if r.method == "PUT"], "nothing left to cancel"


async def test_a_request_error_is_not_fetched_again(fake, serve):
    fake.arm_fal(FalFault.REQUEST_ERROR)
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        failed = events[-1].failed
        assert "runner_disconnected" in failed.message
        assert unpack(failed)["ErrorInfo"].metadata["requestId"] == fake.submitted[0].id
    request_id = fake.submitted[0].id
    assert not any(r.path == f"/fal-ai/flux/requests/{request_id}" for r in fake.requests)


async def test_an_unknown_endpoint_is_rejected_without_retries(fake, serve):
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate(model="missing")))
        failed = events[-1].failed
        assert unpack(failed)["ErrorInfo"].reason == "PROVIDER_REJECTED_REQUEST"
        assert "not found" in failed.message
    assert [r.path for r in posts(fake)] == ["/fal-ai/no-such-model"]


async def test_a_wrong_key_is_provider_auth_failed(fake, tmp_path):
    start = server_starter(tmp_path / "data", "fal", kind="fal", api_key="wrong", models=MODELS)
    async with start(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        failed = events[-1].failed
        assert unpack(failed)["ErrorInfo"].reason == "PROVIDER_AUTH_FAILED"
        assert "wrong" not in failed.message
    assert posts(fake)[0].headers["authorization"] == "Key wrong"


@pytest.mark.parametrize(
    ("endpoint", "app"),
    [
        ("fal-ai/flux/dev", "fal-ai/flux"),
        ("fal-ai/flux/dev/image-to-image", "fal-ai/flux"),
        ("fal-ai/fast-sdxl", "fal-ai/fast-sdxl"),
        ("workflows/me/my-flow/run", "workflows/me/my-flow"),
    ],
)
def test_app_id(endpoint, app):
    assert app_id(endpoint) == app


@pytest.mark.parametrize(
    ("error_type", "message", "expected"),
    [
        ("content_policy_violation", "flagged", ContentFiltered),
        ("", "NSFW content detected", ContentFiltered),
        ("runner_disconnected", "gone", Unavailable),
        ("request_timeout", "too slow", Unavailable),
        ("bad_request", "invalid timeout header", ProviderRejected),
        ("", "something else", ProviderRejected),
    ],
)
def test_request_error_mapping(error_type, message, expected):
    error = request_error("fal", "r1", message, error_type)
    assert type(error) is expected
    assert "r1" in error.message


async def test_queue_positions_are_not_logged(fake, serve):
    """Positions are state: a watcher resuming from the log does not replay them."""
    fake.queue_length, fake.tick_s = 3, 0.05
    async with serve(fake) as server:
        events = await collect(server.images.GenerateImage(generate()))
        assert fal_queue_progress(events)
        replay = await collect(server.jobs.WatchJob(jspb.WatchJobRequest(name=events[0].job)))
        assert fal_queue_progress(logged(replay)) == []
