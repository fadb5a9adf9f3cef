"""GenerateImage / EditImage end to end on the offline provider, through the real server."""

from __future__ import annotations

import asyncio
import hashlib
import io

from PIL import Image, ImageChops

from limner.domain.images import GeneratedImage
from limner.testing.providers import replacing_offline, solid_png
from limner.testing.streams import collect, kinds, logged
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2


async def read_asset(server, name: str) -> bytes:
    chunks = [
        c async for c in server.images.ReadAssetContent(ipb.ReadAssetContentRequest(name=name))
    ]
    assert chunks[0].asset.name == name
    assert [c.offset for c in chunks] == [
        sum(len(x.data) for x in chunks[:i]) for i in range(len(chunks))
    ]
    return b"".join(c.data for c in chunks)


async def test_generate_streams_queued_generating_storing_completed(server):
    request = ipb.GenerateImageRequest(
        prompt="a red fox in snow", options=ipb.ImageOptions(width=320, height=192, seed=11)
    )
    events = await collect(server.images.GenerateImage(request))

    assert kinds(events)[0] == "snapshot"
    assert kinds(events)[-1] == "completed"
    sequences = [e.sequence for e in logged(events)]
    assert sequences == list(range(1, len(sequences) + 1)), "logged events are numbered 1..n"
    stages = [e.progress.stage for e in events if e.HasField("progress")]
    assert stages[0] == job_pb2.JOB_STAGE_QUEUED
    order = [job_pb2.JOB_STAGE_QUEUED, job_pb2.JOB_STAGE_GENERATING, job_pb2.JOB_STAGE_STORING]
    assert [s for s in dict.fromkeys(stages) if s in order] == order
    steps = [(e.progress.step, e.progress.total_steps) for e in events if e.progress.total_steps]
    assert steps[-1] == (4, 4) and steps == sorted(steps)

    image = events[-1].completed.images[0]
    assert (image.width, image.height, image.mime_type, image.seed) == (320, 192, "image/png", 11)
    data = await read_asset(server, image.asset)
    assert image.asset == f"assets/{hashlib.sha256(data).hexdigest()}"
    assert Image.open(io.BytesIO(data)).size == (320, 192)

    job = (await server.jobs.GetJob(job_pb2_get(events[0].job))).job
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED
    assert job.result.images[0].asset == image.asset


def job_pb2_get(name: str):
    from limner.v1 import job_service_pb2

    return job_service_pb2.GetJobRequest(name=name)


async def test_offline_render_is_deterministic_for_prompt_seed_size(server):
    async def render(prompt: str, seed: int) -> str:
        request = ipb.GenerateImageRequest(
            prompt=prompt, options=ipb.ImageOptions(width=128, height=128, seed=seed)
        )
        events = await collect(server.images.GenerateImage(request))
        return events[-1].completed.images[0].asset

    first = await render("a castle", 5)
    assert await render("a castle", 5) == first
    assert await render("a castle", 6) != first
    assert await render("a palace", 5) != first


async def test_edit_transforms_the_source_and_keeps_its_size(server):
    generated = await collect(
        server.images.GenerateImage(
            ipb.GenerateImageRequest(
                prompt="a house", options=ipb.ImageOptions(width=200, height=120, seed=1)
            )
        )
    )
    source = generated[-1].completed.images[0].asset
    events = await collect(
        server.images.EditImage(ipb.EditImageRequest(source_asset=source, prompt="make it night"))
    )
    assert kinds(events)[-1] == "completed"
    edited = events[-1].completed.images[0]
    assert (edited.width, edited.height) == (200, 120)
    assert edited.asset != source
    before = Image.open(io.BytesIO(await read_asset(server, source))).convert("RGB")
    after = Image.open(io.BytesIO(await read_asset(server, edited.asset))).convert("RGB")
    unchanged = ImageChops.difference(before, after).convert("L").histogram()[0]
    changed = 200 * 120 - unchanged
    assert changed > 0.5 * 200 * 120, "the edit visibly changes most of the image"
    asset = (await server.images.GetAsset(ipb.GetAssetRequest(name=edited.asset))).asset
    assert asset.provenance.job == events[0].job
    assert list(asset.provenance.reference_assets) == [source]


class SilentImageGenerator:
    """Answers after ``delay_s`` without reporting any progress (like most hosted APIs)."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def generate(self, request, progress):
        await asyncio.sleep(self.delay_s)
        return [GeneratedImage(data=solid_png(), seed=request.seed)]


async def test_providers_without_progress_get_an_eta_learnt_from_past_runs(make_server):
    silent = SilentImageGenerator(0.4)
    async with make_server(
        providers=replacing_offline(silent),
        jobs={"heartbeat_interval_s": 1.0, "preview_interval_s": 0.0, "estimate_interval_s": 0.1},
    ) as server:
        request = ipb.GenerateImageRequest(prompt="a lighthouse")
        first = await collect(server.images.GenerateImage(request))
        rendering = [e.progress for e in first if e.progress.stage == job_pb2.JOB_STAGE_GENERATING]
        assert [p.message for p in rendering] == ["rendering"], "nothing learnt yet"

        second = await collect(server.images.GenerateImage(request))
        generating = [e for e in second if e.progress.stage == job_pb2.JOB_STAGE_GENERATING]
        announced, *ticks = generating
        assert not announced.transient
        assert 0.3 < announced.progress.eta.ToTimedelta().total_seconds() < 1.0
        assert announced.progress.message == "rendering, usually under a second"
        assert len(ticks) >= 2 and all(t.transient for t in ticks)
        left = [t.progress.eta.ToTimedelta().total_seconds() for t in ticks]
        assert left == sorted(left, reverse=True), "the ETA counts down"
        fractions = [t.progress.fraction for t in ticks]
        assert fractions == sorted(fractions) and max(fractions) <= 0.95
        assert second[-1].WhichOneof("event") == "completed"

    # A new server learns from the stored jobs.
    async with make_server(
        providers=replacing_offline(silent),
        jobs={"heartbeat_interval_s": 1.0, "preview_interval_s": 0.0, "estimate_interval_s": 0.1},
    ) as server:
        third = await collect(server.images.GenerateImage(request))
        messages = [
            e.progress.message
            for e in third
            if e.progress.stage == job_pb2.JOB_STAGE_GENERATING and not e.transient
        ]
        assert "rendering, usually under a second" in messages
