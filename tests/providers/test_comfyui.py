"""The ComfyUI adapter through the gRPC API, against the loopback ComfyUI fake (HTTP and
its WebSocket)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import code_pb2
from provider_helpers import (
    generated_assets,
    image_model,
    job_of,
    serving,
    solid_image,
    upload,
    warning_fields,
    warnings,
)

from limner.providers.comfyui import builtin_workflows, comfy_sampler
from limner.startup import InvalidSettingError
from limner.testing import RunningServer
from limner.testing.fakes import Fault
from limner.testing.fakes.comfyui import ComfyFault, ComfyUIFake
from limner.testing.streams import collect, kinds, status_details, unpack
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2, job_service_pb2, model_pb2, model_service_pb2

CHECKPOINT = "sd_xl_base_1.0.safetensors"
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
async def comfy(
    tmp_path: Path,
    *,
    fake_options: dict[str, Any] | None = None,
    section: dict[str, Any] | None = None,
    models: list[dict[str, Any]] | None = None,
    base_suffix: str = "",
) -> AsyncIterator[tuple[RunningServer, ComfyUIFake]]:
    """A Limner server whose model ``sd`` runs the built-in workflows on a ComfyUI fake."""
    async with ComfyUIFake(**(fake_options or {})) as fake:
        provider = {
            "kind": "comfyui",
            "base_url": fake.base_url + base_suffix,
            "max_retries": 1,
            **(section or {}),
        }
        models = models or [image_model("sd", "comfy", CHECKPOINT, PROFILE)]
        async with serving(tmp_path / "data", {"comfy": provider}, models) as server:
            assert isinstance(fake, ComfyUIFake)
            yield server, fake


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def graph_of(fake: ComfyUIFake, index: int = -1) -> dict[str, Any]:
    graph: dict[str, Any] = fake.prompts()[index].json["prompt"]
    return graph


def inputs(graph: dict[str, Any], node: str) -> dict[str, Any]:
    values: dict[str, Any] = graph[node]["inputs"]
    return values


def ours(fake: ComfyUIFake) -> list[str]:
    """The ids of the prompts Limner queued."""
    return [r.json["prompt_id"] for r in fake.prompts()]


def messages(events: list[job_pb2.JobEvent]) -> list[str]:
    return [e.progress.message for e in events if e.HasField("progress")]


def ignored(events: list[job_pb2.JobEvent]) -> list[str]:
    return sorted(field for code, field in warning_fields(events) if code == "PARAMETER_IGNORED")


def write_workflow(tmp_path: Path, graph: dict[str, Any], name: str = "mine.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(graph), "utf-8")
    return path


def own_graph() -> dict[str, Any]:
    """A user's workflow: the shipped txt2img with a second prompt encoder (an SDXL-style
    refiner prompt) and different node ids for the rest."""
    graph = json.loads(json.dumps(builtin_workflows()["txt2img"].graph))
    graph["16"] = {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["4", 1]}}
    graph["20"] = {"class_type": "LoadImage", "inputs": {"image": "style.png"}}
    inputs(graph, "3")["steps"] = 12
    inputs(graph, "3")["cfg"] = 3.5
    return graph


# -- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize("preview_metadata", [False, True])
async def test_txt2img_fills_the_builtin_workflow_and_streams_steps_and_previews(
    tmp_path, preview_metadata
):
    options = {"render_s": 0.8, "preview_metadata": preview_metadata}
    async with comfy(tmp_path, fake_options=options) as (server, fake):
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
                sampler="DPM++ 2M Karras",
                image_count=2,
            ),
        )
        events = await collect(server.images.GenerateImage(request))

        assert kinds(events)[-1] == "completed", events[-1]
        [queued] = fake.prompts()
        body = queued.json
        assert body["client_id"].startswith("limner-") and body["prompt_id"]
        graph = body["prompt"]
        assert set(graph) == set(builtin_workflows()["txt2img"].graph)
        assert inputs(graph, "4") == {"ckpt_name": CHECKPOINT}
        assert inputs(graph, "6")["text"] == "a lighthouse at dusk"
        assert inputs(graph, "7")["text"] == "blurry"
        assert inputs(graph, "5") == {"width": 512, "height": 384, "batch_size": 2}
        sampler = inputs(graph, "3")
        assert (sampler["seed"], sampler["steps"], sampler["cfg"]) == (42, 8, 5.5)
        assert (sampler["sampler_name"], sampler["scheduler"]) == ("dpmpp_2m", "karras")
        [socket] = fake.calls("GET", "/ws")
        assert socket.query == {"clientId": body["client_id"]}, "the socket is opened first"

        sampling = [
            e.progress
            for e in events
            if e.progress.total_steps == 8 and "step" in e.progress.message
        ]
        steps = [p.step for p in sampling]
        assert len(steps) >= 2 and steps == sorted(set(steps)), steps
        assert "node 3 (KSampler): step 1 of 8" in messages(events)
        assert any(p.HasField("eta") for p in sampling)
        assert "running node 8 (VAEDecode)" in messages(events)
        previews = [e.preview for e in events if e.HasField("preview")]
        assert previews and all(p.step >= 1 for p in previews)

        images = events[-1].completed.images
        assert [(i.width, i.height, i.seed) for i in images] == [(512, 384, 42), (512, 384, 42)]
        views = fake.calls("GET", "/view")
        assert [v.query["type"] for v in views] == ["output", "output"]
        assert all(v.query["subfolder"] == "limner" for v in views)
        assert warnings(events) == []
        job = await job_of(server, events)
        assert job.usage.provider_calls == 1
        assert sorted(await generated_assets(server)) == sorted(i.asset for i in images)


async def test_img2img_uploads_the_source_and_sends_strength_as_denoise(tmp_path):
    async with comfy(tmp_path) as (server, fake):
        source_bytes = solid_image((200, 30, 30))
        source = await upload(server, source_bytes)
        reference = await upload(server, solid_image((30, 200, 30)))

        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source,
                    prompt="make it night",
                    model="models/sd",
                    strength=0.35,
                    reference_assets=[reference],
                    options=ipb.ImageOptions(seed=9),
                )
            )
        )

        assert kinds(events)[-1] == "completed", events[-1]
        [sent] = fake.calls("POST", "/upload/image")
        [part] = sent.form["image"]
        assert part["data"] == source_bytes and part["filename"].startswith("limner-")
        assert (sent.form["type"], sent.form["subfolder"], sent.form["overwrite"]) == (
            ["input"],
            ["limner"],
            ["true"],
        )
        graph = graph_of(fake)
        assert set(graph) == set(builtin_workflows()["img2img"].graph)
        assert inputs(graph, "10")["image"] == f"limner/{part['filename']}"
        assert inputs(graph, "3")["denoise"] == 0.35
        assert inputs(graph, "3")["seed"] == 9
        assert inputs(graph, "12")["amount"] == 1
        # The workflow renders at the source's size; no reference input: warned, not sent.
        assert ignored(events) == ["reference_assets"]
        image = events[-1].completed.images[0]
        assert (image.width, image.height, image.seed) == (96, 64, 9)


async def test_inpaint_uploads_source_and_mask(tmp_path):
    async with comfy(tmp_path) as (server, fake):
        source_bytes = solid_image((200, 30, 30))
        mask_bytes = solid_image((255, 255, 255))
        source = await upload(server, source_bytes)
        mask = await upload(server, mask_bytes)

        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(
                    source_asset=source, prompt="a window", model="models/sd", mask_asset=mask
                )
            )
        )

        assert kinds(events)[-1] == "completed", events[-1]
        uploads = [r.form["image"][0]["data"] for r in fake.calls("POST", "/upload/image")]
        assert uploads == [source_bytes, mask_bytes]
        graph = graph_of(fake)
        assert graph["14"]["class_type"] == "SetLatentNoiseMask"
        names = [r.form["image"][0]["filename"] for r in fake.calls("POST", "/upload/image")]
        assert inputs(graph, "10")["image"] == f"limner/{names[0]}"
        assert inputs(graph, "13") == {"image": f"limner/{names[1]}", "channel": "red"}
        assert inputs(graph, "3")["denoise"] == 1.0, "the workflow's own default"
        assert warnings(events) == []


async def test_own_workflow_gets_the_mapped_fields_and_warns_about_the_rest(tmp_path):
    path = write_workflow(tmp_path, own_graph())
    workflow = {
        "file": str(path),
        "checkpoint": "SDXL/juggernautXL_v9.safetensors",
        "inputs": {
            "checkpoint": "4.ckpt_name",
            "prompt": ["6.text", "16.text"],
            "seed": "3.seed",
            "width": "5.width",
            "height": "5.height",
            "reference_images": ["20.image"],
        },
    }
    models = [image_model("mine", "comfy", "mine", PROFILE)]
    async with comfy(tmp_path, section={"workflows": {"mine": workflow}}, models=models) as (
        server,
        fake,
    ):
        first, second = solid_image((9, 9, 9)), solid_image((8, 8, 8))
        references = [await upload(server, first), await upload(server, second)]
        request = ipb.GenerateImageRequest(
            prompt="a fox",
            model="models/mine",
            reference_assets=references,
            options=ipb.ImageOptions(
                width=500,
                height=301,
                negative_prompt="blurry",
                steps=30,
                guidance_scale=7.0,
                sampler="euler",
                image_count=2,
            ),
        )
        events = await collect(server.images.GenerateImage(request))

        assert kinds(events)[-1] == "completed", events[-1]
        graph = graph_of(fake)
        assert inputs(graph, "4")["ckpt_name"] == "SDXL/juggernautXL_v9.safetensors"
        assert inputs(graph, "6")["text"] == inputs(graph, "16")["text"] == "a fox"
        assert (inputs(graph, "5")["width"], inputs(graph, "5")["height"]) == (496, 304)
        # Unmapped: the workflow's own values stay.
        assert inputs(graph, "7")["text"] == ""
        assert (inputs(graph, "3")["steps"], inputs(graph, "3")["cfg"]) == (12, 3.5)
        assert inputs(graph, "5")["batch_size"] == 1
        [sent] = fake.calls("POST", "/upload/image")
        assert sent.form["image"][0]["data"] == first
        assert inputs(graph, "20")["image"] == f"limner/{sent.form['image'][0]['filename']}"
        assert ignored(events) == [
            "options.guidance_scale",
            "options.image_count",
            "options.negative_prompt",
            "options.sampler",
            "options.steps",
            "reference_assets",
        ]
        [extra] = [w for w in warnings(events) if w.field == "reference_assets"]
        assert extra.message.endswith("; ignored (1 of 2 not sent)")
        [negative] = [w for w in warnings(events) if w.field == "options.negative_prompt"]
        assert negative.message == (
            'the ComfyUI workflow "mine" has no input for a negative prompt; ignored'
        )
        [size] = warnings(events, "SIZE_ADJUSTED")
        assert "496x304" in size.message
        assert len(events[-1].completed.images) == 1


async def test_sampler_names_translate_from_automatic1111():
    assert comfy_sampler("Euler a") == ("euler_ancestral", "")
    assert comfy_sampler("DPM++ 2M Karras") == ("dpmpp_2m", "karras")
    assert comfy_sampler("DPM++ SDE exponential") == ("dpmpp_sde", "exponential")
    assert comfy_sampler("dpmpp_2m_sde") == ("dpmpp_2m_sde", "")


async def test_prompt_queued_behind_another_client_waits_then_runs(tmp_path):
    async with comfy(tmp_path) as (server, fake):
        other = fake.hold()
        await until(lambda: fake.running is not None)
        stream = server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt="x", model="models/sd")
        )
        events: list[job_pb2.JobEvent] = []
        async for response in stream:
            events.append(response.event)
            if "queued on ComfyUI behind 1 prompt(s)" in response.event.progress.message:
                fake.release(other)
        assert kinds(events)[-1] == "completed", events[-1]
        assert "queued on ComfyUI behind 1 prompt(s)" in messages(events)
        assert fake.interrupted == [] and fake.deleted == []


async def test_server_that_picks_its_own_prompt_ids(tmp_path):
    async with comfy(tmp_path, fake_options={"accept_prompt_ids": False}) as (server, fake):
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )
        assert kinds(events)[-1] == "completed", events[-1]
        [entry] = fake.history
        assert entry != ours(fake)[0]
        assert fake.calls("GET", f"/history/{entry}")


async def test_lost_websocket_falls_back_to_polling_the_history(tmp_path):
    async with comfy(tmp_path, fake_options={"render_s": 0.3}) as (server, fake):
        fake.arm(ComfyFault.SOCKET_DROP)
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert len(events[-1].completed.images) == 1


async def test_api_key_is_a_bearer_token_on_http_and_the_websocket(tmp_path):
    section = {"api_key": "proxy-key", "extra_headers": {"X-Team": "art"}}
    async with comfy(tmp_path, section=section, base_suffix="/api/") as (server, fake):
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert fake.requests
        for request in fake.requests:
            assert request.headers["authorization"] == "Bearer proxy-key", request.path
            assert request.headers["x-team"] == "art"


async def test_two_jobs_at_once_follow_their_own_prompts(tmp_path):
    async with comfy(tmp_path, fake_options={"render_s": 0.4}) as (server, fake):
        requests = [
            ipb.GenerateImageRequest(
                prompt=f"picture {n}", model="models/sd", options=ipb.ImageOptions(steps=4 + n)
            )
            for n in range(2)
        ]
        results = await asyncio.gather(
            *(collect(server.images.GenerateImage(request)) for request in requests)
        )

        for n, events in enumerate(results):
            assert kinds(events)[-1] == "completed", events[-1]
            totals = {e.progress.total_steps for e in events if e.progress.total_steps}
            assert totals == {4 + n}, "each job hears only its own prompt's steps"
        queued = [any("queued on ComfyUI" in m for m in messages(e)) for e in results]
        assert sorted(queued) == [False, True]
        assert len({e[-1].completed.images[0].asset for e in results}) == 2
        assert len({r.json["client_id"] for r in fake.prompts()}) == 2


async def test_a_prompt_deleted_on_comfyui_fails_the_job(tmp_path, monkeypatch):
    monkeypatch.setattr("limner.providers.comfyui.IDLE_CHECK_S", 0.2)
    async with comfy(tmp_path) as (server, fake):
        other = fake.hold()
        await until(lambda: fake.running is not None)
        events: list[job_pb2.JobEvent] = []
        async for response in server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt="x", model="models/sd")
        ):
            events.append(response.event)
            if "queued on ComfyUI" in response.event.progress.message:
                async with httpx.AsyncClient() as client:  # someone clears ComfyUI's queue
                    await client.post(f"{fake.base_url}/queue", json={"clear": True})

        failed = events[-1].failed
        assert (failed.code, unpack(failed)["ErrorInfo"].reason) == (
            code_pb2.UNAVAILABLE,
            "PROVIDER_PROMPT_LOST",
        )
        assert fake.interrupted == []
        fake.release(other)


# -- cancelling --------------------------------------------------------------------------------


@pytest.mark.parametrize("targeted_interrupt", [True, False])
async def test_cancel_while_running_interrupts_only_our_prompt(tmp_path, targeted_interrupt):
    options = {"render_s": 30.0, "targeted_interrupt": targeted_interrupt}
    async with comfy(tmp_path, fake_options=options) as (server, fake):
        request = ipb.GenerateImageRequest(
            prompt="a slow castle", model="models/sd", options=ipb.ImageOptions(steps=300)
        )
        events: list[job_pb2.JobEvent] = []
        stream = server.images.GenerateImage(request)
        async for response in stream:
            events.append(response.event)
            if response.event.progress.step >= 2:
                break
        other = fake.hold()  # another client's prompt, waiting behind ours
        job = events[0].job
        cancelled = await server.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job))
        stream.cancel()

        assert cancelled.job.state == job_pb2.JOB_STATE_CANCELLED
        [mine] = ours(fake)
        await until(lambda: fake.calls("POST", "/interrupt") != [])
        assert [r.json for r in fake.calls("POST", "/interrupt")] == [{"prompt_id": mine}]
        assert fake.calls("POST", "/queue") == [], "a running prompt is not deleted"
        await until(lambda: fake.running is not None and fake.running.prompt_id == other)
        assert fake.interrupted == [mine], "the other client's prompt runs on"
        watched = await collect(server.jobs.WatchJob(job_service_pb2.WatchJobRequest(name=job)))
        assert kinds(watched)[-1] == "cancelled"
        assert fake.history[mine]["status"]["status_str"] == "error"
        assert await generated_assets(server) == []
        fake.release(other)


async def test_cancel_while_queued_deletes_it_and_interrupts_nothing(tmp_path):
    async with comfy(tmp_path) as (server, fake):
        other = fake.hold()
        await until(lambda: fake.running is not None)
        events: list[job_pb2.JobEvent] = []
        stream = server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt="x", model="models/sd")
        )
        async for response in stream:
            events.append(response.event)
            if "queued on ComfyUI" in response.event.progress.message:
                break
        job = events[0].job
        cancelled = await server.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=job))
        stream.cancel()

        assert cancelled.job.state == job_pb2.JOB_STATE_CANCELLED
        [mine] = ours(fake)
        await until(lambda: fake.deleted != [])
        assert [r.json for r in fake.calls("POST", "/queue")] == [{"delete": [mine]}]
        assert fake.calls("POST", "/interrupt") == []
        assert fake.deleted == [mine] and fake.pending == []
        assert fake.running is not None and fake.running.prompt_id == other
        assert fake.interrupted == []
        fake.release(other)
        await until(lambda: other in fake.history)
        assert mine not in fake.history, "the deleted prompt never ran"
        assert await generated_assets(server) == []


async def test_an_interrupt_from_someone_else_fails_the_job_as_aborted(tmp_path):
    async with comfy(tmp_path, fake_options={"render_s": 30.0}) as (server, fake):
        request = ipb.GenerateImageRequest(
            prompt="x", model="models/sd", options=ipb.ImageOptions(steps=300)
        )
        events: list[job_pb2.JobEvent] = []
        async for response in server.images.GenerateImage(request):
            events.append(response.event)
            if response.event.progress.step == 2:
                async with httpx.AsyncClient() as client:  # someone presses Cancel in ComfyUI
                    await client.post(f"{fake.base_url}/interrupt")

        failed = events[-1].failed
        assert (failed.code, unpack(failed)["ErrorInfo"].reason) == (
            code_pb2.ABORTED,
            "PROVIDER_INTERRUPTED",
        )
        assert "node 3 (KSampler)" in failed.message
        assert len(fake.calls("POST", "/interrupt")) == 1, "Limner sent none of its own"
        assert await generated_assets(server) == []


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "times", "code", "reason", "prompts", "says"),
    [
        (Fault.RATE_LIMITED, 2, code_pb2.RESOURCE_EXHAUSTED, "PROVIDER_RATE_LIMITED", 2, "429"),
        (Fault.SERVER_ERROR, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2, "500"),
        (Fault.UNAVAILABLE, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2, "503"),
        (Fault.CONNECTION_RESET, 2, code_pb2.UNAVAILABLE, "PROVIDER_UNAVAILABLE", 2, ""),
        (Fault.MALFORMED_JSON, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1, ""),
        (Fault.BAD_REQUEST, 1, code_pb2.FAILED_PRECONDITION, "PROVIDER_REJECTED_REQUEST", 1, ""),
        (Fault.UNAUTHORIZED, 1, code_pb2.FAILED_PRECONDITION, "PROVIDER_AUTH_FAILED", 1, ""),
        (Fault.TEXT_INSTEAD_OF_IMAGE, 3, code_pb2.UNKNOWN, "NO_IMAGE_RETURNED", 3, ""),
        (Fault.OVERSIZED_IMAGE, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1, "larger"),
        (
            ComfyFault.VALIDATION_ERROR,
            1,
            code_pb2.FAILED_PRECONDITION,
            "PROVIDER_REJECTED_REQUEST",
            1,
            "node 3 (KSampler): Value 10001 bigger than max of 10000",
        ),
        (
            ComfyFault.MISSING_NODE,
            1,
            code_pb2.FAILED_PRECONDITION,
            "PROVIDER_NODE_MISSING",
            1,
            "node 3 (KSampler): ComfyUI has no node type 'KSampler'",
        ),
        (
            ComfyFault.EXECUTION_ERROR,
            1,
            code_pb2.FAILED_PRECONDITION,
            "PROVIDER_EXECUTION_FAILED",
            1,
            "failed in node 3 (KSampler): RuntimeError: mat1 and mat2",
        ),
        (
            ComfyFault.OUT_OF_MEMORY,
            1,
            code_pb2.RESOURCE_EXHAUSTED,
            "PROVIDER_OUT_OF_MEMORY",
            1,
            "ran out of memory in node 3 (KSampler)",
        ),
        (ComfyFault.BROKEN_RESULT, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1, "404"),
        (ComfyFault.CORRUPT_RESULT, 1, code_pb2.UNAVAILABLE, "PROVIDER_BAD_RESPONSE", 1, ""),
    ],
)
async def test_faults_fail_the_job_with_the_documented_status(
    tmp_path, fault, times, code, reason, prompts, says
):
    async with comfy(tmp_path) as (server, fake):
        fake.arm(fault, times=times, retry_after_s=0.05)
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )

        assert kinds(events)[-1] == "failed", events[-1]
        failed = events[-1].failed
        assert (failed.code, unpack(failed)["ErrorInfo"].reason) == (code, reason), failed
        assert says in failed.message
        assert len(fake.prompts()) == prompts
        assert await generated_assets(server) == [], "nothing half-stored"
        assert fake.pending == [] and fake.running is None, "nothing left running"
        if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
            assert [w.code for w in warnings(events)].count("NO_IMAGE_RETRY") == 2


async def test_latency_is_waited_out(tmp_path):
    async with comfy(tmp_path) as (server, fake):
        fake.arm(Fault.LATENCY, delay_s=0.3)
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )
        assert kinds(events)[-1] == "completed", events[-1]


async def test_an_input_image_that_fails_to_load_names_the_load_image_node(tmp_path):
    async with comfy(tmp_path) as (server, fake):
        source = await upload(server, solid_image((1, 2, 3)))
        fake.arm(ComfyFault.IMAGE_LOAD_FAILED)
        events = await collect(
            server.images.EditImage(
                ipb.EditImageRequest(source_asset=source, prompt="x", model="models/sd")
            )
        )

        failed = events[-1].failed
        info = unpack(failed)["ErrorInfo"]
        assert (failed.code, info.reason) == (
            code_pb2.FAILED_PRECONDITION,
            "PROVIDER_EXECUTION_FAILED",
        )
        assert "node 10 (LoadImage): PIL.UnidentifiedImageError" in failed.message
        assert (info.metadata["node"], info.metadata["classType"]) == ("10", "LoadImage")
        assert await generated_assets(server) == []


@pytest.mark.parametrize("legacy_errors", ["", "invalid_prompt", "string"])
async def test_missing_node_types_in_every_error_shape_name_the_node(tmp_path, legacy_errors):
    async with comfy(tmp_path, fake_options={"legacy_errors": legacy_errors}) as (server, fake):
        fake.node_types.discard("KSampler")
        events = await collect(
            server.images.GenerateImage(ipb.GenerateImageRequest(prompt="x", model="models/sd"))
        )

        failed = events[-1].failed
        info = unpack(failed)["ErrorInfo"]
        assert (failed.code, info.reason) == (code_pb2.FAILED_PRECONDITION, "PROVIDER_NODE_MISSING")
        assert "cannot run node 3 (KSampler)" in failed.message
        assert "custom node installed" in failed.message
        assert (info.metadata["node"], info.metadata["classType"]) == ("3", "KSampler")
        assert len(fake.prompts()) == 1, "not retried"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"sampler": "Nope"}, "node 3 (KSampler): Value not in list: sampler_name: 'Nope'"),
        ({}, "node 4 (CheckpointLoaderSimple): Value not in list: ckpt_name: 'gone.safetensors'"),
    ],
)
async def test_validation_errors_name_the_node_and_input(tmp_path, options, says):
    checkpoint = "gone.safetensors" if not options else CHECKPOINT
    models = [image_model("sd", "comfy", checkpoint, PROFILE)]
    async with comfy(tmp_path, models=models) as (server, fake):
        request = ipb.GenerateImageRequest(
            prompt="x", model="models/sd", options=ipb.ImageOptions(**options)
        )
        events = await collect(server.images.GenerateImage(request))

        failed = events[-1].failed
        info = unpack(failed)["ErrorInfo"]
        assert info.reason == "PROVIDER_REJECTED_REQUEST"
        assert says in failed.message
        assert info.metadata["comfyError"] == "prompt_outputs_failed_validation"
        assert len(fake.prompts()) == 1, "not retried"
        assert await generated_assets(server) == []


# -- discovery and settings --------------------------------------------------------------------


@pytest.mark.parametrize("combo_v3", [False, True])
async def test_discover_models_lists_checkpoints_and_own_workflows(tmp_path, combo_v3):
    path = write_workflow(tmp_path, own_graph())
    workflow = {"file": str(path), "inputs": {"prompt": "6.text"}}
    async with comfy(
        tmp_path, fake_options={"combo_v3": combo_v3}, section={"workflows": {"mine": workflow}}
    ) as (server, fake):
        response = await server.models.DiscoverModels(
            model_service_pb2.DiscoverModelsRequest(provider="providers/comfy")
        )

        found = {m.provider_model_id: m for m in response.models}
        assert set(found) == {*fake.checkpoints, "mine"}
        model = found["SDXL/juggernautXL_v9.safetensors"]
        assert model.display_name == "SDXL/juggernautXL_v9"
        assert set(model.input_modalities) == {model_pb2.MODALITY_TEXT, model_pb2.MODALITY_IMAGE}
        assert list(model.output_modalities) == [model_pb2.MODALITY_IMAGE]
        assert list(found["mine"].input_modalities) == [model_pb2.MODALITY_TEXT]
        assert [r.path for r in fake.requests] == ["/object_info/CheckpointLoaderSimple"]

        # A discovered checkpoint renders through the built-in workflow.
        events = await collect(
            server.images.GenerateImage(
                ipb.GenerateImageRequest(prompt="x", model=f"models/{model.name.split('/')[-1]}")
            )
        )
        assert kinds(events)[-1] == "completed", events[-1]
        assert inputs(graph_of(fake), "4")["ckpt_name"] == "SDXL/juggernautXL_v9.safetensors"


async def test_discovery_failure_maps_the_error(tmp_path):
    async with comfy(tmp_path, section={"max_retries": 0}) as (server, fake):
        fake.arm(Fault.SERVER_ERROR)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await server.models.DiscoverModels(
                model_service_pb2.DiscoverModelsRequest(provider="providers/comfy")
            )
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert status_details(caught.value)["ErrorInfo"].reason == "PROVIDER_UNAVAILABLE"


@pytest.mark.parametrize(
    ("document", "mapping", "says"),
    [
        (None, {"prompt": "6.text"}, 'workflows.mine.file: cannot read "'),
        ({"nodes": [], "links": []}, {}, '"Export (API)"'),
        (own_graph(), {"prompt": "99.text"}, 'inputs.prompt: the workflow has no node "99"'),
        (own_graph(), {"prompt": "6.txt"}, 'node 6 (CLIPTextEncode) has no input "txt"'),
        (own_graph(), {"prompt": "6.clip"}, "is connected to another node"),
        (
            own_graph(),
            {"promt": "6.text"},
            '"promt" is not a request field (did you mean "prompt"?)',
        ),
    ],
)
async def test_a_bad_workflow_setting_stops_the_start(tmp_path, document, mapping, says):
    path = tmp_path / "missing.json"
    if document is not None:
        path = write_workflow(tmp_path, document)
    section = {"workflows": {"mine": {"file": str(path), "inputs": mapping}}}
    with pytest.raises(InvalidSettingError) as caught:
        async with comfy(tmp_path, section=section):
            pass
    assert str(caught.value).startswith("providers.comfy.workflows.mine")
    assert says in str(caught.value)
