"""ComfyUI: a workflow in ComfyUI's API format, with Limner's request fields written into
its node inputs, queued with ``POST /prompt``; progress, the executing node and preview
frames from the ``/ws`` WebSocket; the images from ``/history/{prompt_id}`` and ``/view``.

Which workflow runs: a model's ``provider_model_id`` names one of the provider's
``workflows`` (the operator's own file plus its ``inputs`` mapping, ``WorkflowSettings``),
or else a checkpoint (``CheckpointLoaderSimple``'s ``ckpt_name``) for the workflows shipped
in ``comfyui_workflows/``: ``txt2img``, ``img2img`` (with a source image) and ``inpaint``
(with a source image and a mask, white = repainted). A mapping sends each request field to
one or more ``"node_id.input_name"``; a field the workflow does not map is reported as a
``PARAMETER_IGNORED`` job warning and not sent. Input images are uploaded to the server's
``input/limner/`` folder with ``POST /upload/image`` (named by content hash).

Cancelling a job (``CancelJob``, the job timeout, a shutdown) interrupts the prompt only
when ``/queue`` shows it running, and deletes it from the queue while it waits; another
client's prompt is never interrupted (``/interrupt`` also names the prompt, which servers
since mid-2025 check themselves).

ComfyUI has no authentication of its own; the ``api_key`` setting, when given, is sent as
``Authorization: Bearer`` (for a reverse proxy in front of it), on the WebSocket too.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import difflib
import functools
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import orjson

from limner.domain.images import GeneratedImage, ProviderImageRequest, SourceImage
from limner.domain.jobs import Usage
from limner.errors import (
    Aborted,
    LimnerError,
    ProviderRejected,
    ResourceExhausted,
    Unavailable,
)
from limner.providers import ProviderContext
from limner.providers.base import DiscoveredModel, ProgressSink, Provider
from limner.providers.http import (
    RETRYABLE_STATUS,
    ProviderHttp,
    RetryPolicy,
    error_for_status,
    parse_json_bytes,
    retry_after_seconds,
    scrub,
    transport_error,
)
from limner.providers.results import no_image
from limner.settings import WorkflowSettings
from limner.startup import InvalidSettingError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "http://127.0.0.1:8188"
# ComfyUI serves every route under /api as well.
KNOWN_SUFFIXES = ("/api",)
# Latents are 1/8 of the image size: sizes are rounded to multiples of 8.
SIZE_MULTIPLE = 8
UPLOAD_SUBFOLDER = "limner"
# With no WebSocket message for this long, /history (and /queue) are asked directly.
IDLE_CHECK_S = 5.0
# Once the WebSocket says the prompt ended, /history is asked this often until it has it.
HISTORY_SETTLE_S = 0.05
WS_HEARTBEAT_S = 30.0
WS_CONNECT_TIMEOUT_S = 10.0
WS_CLOSE_TIMEOUT_S = 2.0
MAX_WS_MESSAGE_BYTES = 64 * 1024 * 1024
# Binary WebSocket frames: a 4-byte big-endian event type, then the payload.
PREVIEW_IMAGE = 1  # 4-byte image format (1 JPEG, 2 PNG), then the image
PREVIEW_IMAGE_WITH_METADATA = 4  # 4-byte JSON length, the JSON, then the image

# Request fields a workflow can map, and the job-warning field named when it does not.
FIELDS: dict[str, str] = {
    "checkpoint": "model",
    "prompt": "prompt",
    "negative_prompt": "options.negative_prompt",
    "seed": "options.seed",
    "width": "options.width",
    "height": "options.height",
    "steps": "options.steps",
    "guidance_scale": "options.guidance_scale",
    "sampler": "options.sampler",
    "scheduler": "options.sampler",
    "image_count": "options.image_count",
    "strength": "strength",
    "source_image": "source_asset",
    "mask_image": "mask_asset",
    "reference_images": "reference_assets",
}
_WHAT = {
    "checkpoint": "a checkpoint",
    "prompt": "a prompt",
    "negative_prompt": "a negative prompt",
    "seed": "a seed",
    "width": "a size",
    "height": "a size",
    "steps": "a step count",
    "guidance_scale": "a guidance scale",
    "sampler": "a sampler",
    "scheduler": "a scheduler",
    "image_count": "a batch size",
    "strength": "a strength (denoise)",
    "source_image": "a source image",
    "mask_image": "a mask",
    "reference_images": "reference images",
}

# The shipped workflows' mappings (node ids as in comfyui_workflows/*.json).
_COMMON_INPUTS = {
    "checkpoint": "4.ckpt_name",
    "prompt": "6.text",
    "negative_prompt": "7.text",
    "seed": "3.seed",
    "steps": "3.steps",
    "guidance_scale": "3.cfg",
    "sampler": "3.sampler_name",
    "scheduler": "3.scheduler",
}
BUILTIN_INPUTS: dict[str, dict[str, str]] = {
    "txt2img": {
        **_COMMON_INPUTS,
        "width": "5.width",
        "height": "5.height",
        "image_count": "5.batch_size",
    },
    "img2img": {
        **_COMMON_INPUTS,
        "image_count": "12.amount",
        "strength": "3.denoise",
        "source_image": "10.image",
    },
    "inpaint": {
        **_COMMON_INPUTS,
        "image_count": "12.amount",
        "strength": "3.denoise",
        "source_image": "10.image",
        "mask_image": "13.image",
    },
}

# AUTOMATIC1111's sampler names (what Limner's other adapters take) -> ComfyUI's. Any other
# name is sent as given, so ComfyUI's own names ("dpmpp_2m") work too.
_A1111_SAMPLERS = {
    "euler": "euler",
    "euler a": "euler_ancestral",
    "heun": "heun",
    "lms": "lms",
    "dpm2": "dpm_2",
    "dpm2 a": "dpm_2_ancestral",
    "dpm++ 2s a": "dpmpp_2s_ancestral",
    "dpm++ 2m": "dpmpp_2m",
    "dpm++ sde": "dpmpp_sde",
    "dpm++ 2m sde": "dpmpp_2m_sde",
    "dpm++ 3m sde": "dpmpp_3m_sde",
    "dpm fast": "dpm_fast",
    "dpm adaptive": "dpm_adaptive",
    "ddim": "ddim",
    "unipc": "uni_pc",
    "lcm": "lcm",
}
# "DPM++ 2M Karras": a scheduler named after the sampler.
_SCHEDULERS = {"karras": "karras", "exponential": "exponential", "sgm uniform": "sgm_uniform"}
_OOM_TEXT = ("out of memory", "allocation on device", "outofmemoryerror")


# -- workflows ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One node input a request field is written to."""

    node: str
    input: str


@dataclass(frozen=True)
class Workflow:
    """A workflow in ComfyUI's API format (``{node_id: {class_type, inputs}}``) and where
    each request field goes in it."""

    name: str
    graph: dict[str, Any]
    inputs: dict[str, tuple[Target, ...]]
    checkpoint: str = ""
    builtin: bool = False

    @property
    def title(self) -> str:
        if self.builtin:
            return f"the built-in ComfyUI {self.name} workflow"
        return f'the ComfyUI workflow "{self.name}"'

    def maps(self, field: str) -> bool:
        return bool(self.inputs.get(field))


def load_workflow(
    name: str,
    text: str,
    inputs: Mapping[str, str | Sequence[str]],
    *,
    checkpoint: str = "",
    builtin: bool = False,
) -> Workflow:
    """Parses a workflow and checks its mapping; a ``ValueError`` says what is wrong."""
    try:
        graph = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"is not JSON ({error})") from None
    if isinstance(graph, dict) and "nodes" in graph and "links" in graph:
        raise ValueError(
            'is a workflow in the UI format; save it with "Export (API)" in ComfyUI instead'
        )
    if not (
        isinstance(graph, dict)
        and graph
        and all(
            isinstance(node, dict)
            and isinstance(node.get("class_type"), str)
            and isinstance(node.get("inputs"), dict)
            for node in graph.values()
        )
    ):
        raise ValueError(
            "is not a workflow in ComfyUI's API format ({node_id: {class_type, inputs}})"
        )
    mapped: dict[str, tuple[Target, ...]] = {}
    for field, value in inputs.items():
        if field not in FIELDS:
            close = difflib.get_close_matches(field, list(FIELDS), n=1)
            hint = f' (did you mean "{close[0]}"?)' if close else ""
            raise ValueError(
                f'inputs: "{field}" is not a request field{hint}; the fields are '
                + ", ".join(FIELDS)
            )
        texts = [value] if isinstance(value, str) else list(value)
        if not texts:
            raise ValueError(f"inputs.{field}: names no node input")
        targets = []
        for target in texts:
            node_id, dot, input_name = target.strip().rpartition(".")
            if not (dot and node_id and input_name):
                raise ValueError(f'inputs.{field}: "{target}" is not "node_id.input_name"')
            node = graph.get(node_id)
            if node is None:
                raise ValueError(f'inputs.{field}: the workflow has no node "{node_id}"')
            node_inputs = node["inputs"]
            label = _node_label(graph, node_id)
            if input_name not in node_inputs:
                raise ValueError(
                    f'inputs.{field}: {label} has no input "{input_name}"; its inputs are '
                    + ", ".join(node_inputs)
                )
            if _is_link(node_inputs[input_name]):
                raise ValueError(
                    f'inputs.{field}: input "{input_name}" of {label} is connected to another '
                    "node; map a widget input"
                )
            targets.append(Target(node_id, input_name))
        mapped[field] = tuple(targets)
    return Workflow(name, graph, mapped, checkpoint=checkpoint, builtin=builtin)


@functools.cache
def builtin_workflows() -> dict[str, Workflow]:
    """The workflows shipped in ``comfyui_workflows/``, by name."""
    folder = resources.files("limner.providers").joinpath("comfyui_workflows")
    return {
        name: load_workflow(
            name, folder.joinpath(f"{name}.json").read_text("utf-8"), inputs, builtin=True
        )
        for name, inputs in BUILTIN_INPUTS.items()
    }


def configured_workflows(
    provider_id: str, workflows: Mapping[str, WorkflowSettings]
) -> dict[str, Workflow]:
    """The provider's own workflows, read now; a mistake stops the start, naming the key."""
    loaded = {}
    for name, settings in workflows.items():
        key = f"providers.{provider_id}.workflows.{name}"
        path = Path(settings.file).expanduser()
        try:
            text = path.read_text("utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise InvalidSettingError(f'{key}.file: cannot read "{path}" ({reason})') from None
        try:
            loaded[name] = load_workflow(
                name, text, settings.inputs, checkpoint=settings.checkpoint
            )
        except ValueError as error:
            raise InvalidSettingError(f'{key}: "{path}" {error}') from None
    return loaded


# -- the adapter -------------------------------------------------------------------------


def create(context: ProviderContext) -> Provider:
    key = context.api_key()
    http = context.http(
        default_base_url=DEFAULT_BASE_URL,
        known_suffixes=KNOWN_SUFFIXES,
        auth_headers={"Authorization": f"Bearer {key}"} if key else None,
    )
    workflows = configured_workflows(context.id, context.section.workflows)
    images = ComfyUIImages(
        http,
        workflows=workflows,
        poll_interval_s=context.section.progress_poll_s,
        max_image_bytes=context.settings.assets.max_image_bytes,
    )
    return Provider(
        id=context.id,
        kind="comfyui",
        images=images,
        lister=ComfyUIModels(http, workflows),
        closers=[images.aclose],
    )


def _side_http(http: ProviderHttp, timeout_s: float) -> ProviderHttp:
    """The same endpoint without retries and with a short timeout: for queue positions,
    interrupts and deletions, which are best effort and must never hold a job up."""
    return ProviderHttp(
        provider_id=http.provider_id,
        client=http.client,
        base_url=http.base_url,
        headers=http.headers,
        timeout_s=timeout_s,
        retry=RetryPolicy(max_retries=0),
        auth=http.auth,
    )


class ComfyUIImages:
    def __init__(
        self,
        http: ProviderHttp,
        *,
        workflows: Mapping[str, Workflow] | None = None,
        poll_interval_s: float = 0.25,
        max_image_bytes: int = 25 * 1024 * 1024,
    ) -> None:
        self.http = http
        self.side = _side_http(http, timeout_s=10.0)
        self.workflows = dict(workflows or {})
        self.poll_interval_s = max(poll_interval_s, 0.01)
        self.max_image_bytes = max_image_bytes
        self._session: aiohttp.ClientSession | None = None

    @property
    def provider_id(self) -> str:
        return self.http.provider_id

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def workflow_for(self, request: ProviderImageRequest) -> Workflow:
        """The provider's workflow of that name, else the built-in one for the request."""
        own = self.workflows.get(request.provider_model_id)
        if own is not None:
            return own
        builtin = builtin_workflows()
        if request.source is not None:
            return builtin["inpaint" if request.mask is not None else "img2img"]
        return builtin["txt2img"]

    async def generate(
        self, request: ProviderImageRequest, progress: ProgressSink
    ) -> list[GeneratedImage]:
        workflow = self.workflow_for(request)
        graph = await self._graph(workflow, request, progress)
        client_id = f"limner-{uuid.uuid4().hex}"
        follower = _Follower(self, workflow, progress, prompt_id=str(uuid.uuid4()))
        socket = await self._connect(client_id)
        queued = False
        try:
            follower.prompt_id = await self._queue(graph, follower.prompt_id, client_id, progress)
            queued = True
            await follower.report_position()
            entry = await follower.follow(socket)
        except BaseException as error:
            # The prompt keeps running when the client goes away: take it back, whatever
            # happens to this task meanwhile (a prompt queued under our id while the
            # answer was on its way included), then let the error through.
            if not follower.ended and (queued or isinstance(error, asyncio.CancelledError)):
                await asyncio.shield(self._withdraw(follower.prompt_id))
            raise
        finally:
            if socket is not None:
                await socket.close()
        images = [
            GeneratedImage(
                data=await self._view(item),
                seed=request.seed if workflow.maps("seed") else None,
            )
            for item in _result_images(entry)
        ]
        if not images:
            raise no_image(self.provider_id)
        await progress.usage(Usage(provider_calls=1))
        return images

    # -- the prompt ------------------------------------------------------------------------

    async def _graph(
        self, workflow: Workflow, request: ProviderImageRequest, progress: ProgressSink
    ) -> dict[str, Any]:
        """The workflow with the request's fields written in (input images uploaded); what
        it does not map is warned about."""
        graph = copy.deepcopy(workflow.graph)
        warned: set[str] = set()

        async def ignore(field: str, detail: str = "") -> None:
            if FIELDS[field] in warned:
                return
            warned.add(FIELDS[field])
            message = f"{workflow.title} has no input for {_WHAT[field]}; ignored"
            await progress.warn("PARAMETER_IGNORED", message + detail, FIELDS[field])

        async def put(field: str, value: Any) -> bool:
            if not workflow.maps(field):
                await ignore(field)
                return False
            for target in workflow.inputs[field]:
                graph[target.node]["inputs"][target.input] = value
            return True

        checkpoint = request.provider_model_id if workflow.builtin else workflow.checkpoint
        if checkpoint and workflow.maps("checkpoint"):
            await put("checkpoint", checkpoint)
        await put("prompt", request.prompt)
        if request.negative_prompt:
            await put("negative_prompt", request.negative_prompt)
        await put("seed", request.seed)
        await self._size(workflow, request, progress, put, ignore)
        if request.steps is not None:
            await put("steps", request.steps)
        if request.guidance_scale is not None:
            await put("guidance_scale", request.guidance_scale)
        if request.sampler:
            sampler, scheduler = comfy_sampler(request.sampler)
            if await put("sampler", sampler) and scheduler:
                if workflow.maps("scheduler"):
                    await put("scheduler", scheduler)
                else:
                    await ignore("scheduler", f' (the sampler\'s "{scheduler}" schedule)')
        if request.image_count > 1 or workflow.maps("image_count"):
            await put("image_count", request.image_count)
        if request.strength is not None:
            await put("strength", request.strength)
        if request.source is not None:
            if workflow.maps("source_image"):
                await put("source_image", await self._upload(request.source))
            else:
                await ignore("source_image")
        if request.mask is not None:
            if workflow.maps("mask_image"):
                await put("mask_image", await self._upload(request.mask))
            else:
                await ignore("mask_image")
        if request.references:
            targets = workflow.inputs.get("reference_images", ())
            for reference, target in zip(request.references, targets, strict=False):
                graph[target.node]["inputs"][target.input] = await self._upload(reference)
            if len(request.references) > len(targets):
                await ignore(
                    "reference_images",
                    f" ({len(request.references) - len(targets)} of "
                    f"{len(request.references)} not sent)"
                    if targets
                    else "",
                )
        return graph

    async def _size(
        self,
        workflow: Workflow,
        request: ProviderImageRequest,
        progress: ProgressSink,
        put: Callable[[str, Any], Awaitable[bool]],
        ignore: Callable[[str, str], Awaitable[None]],
    ) -> None:
        if workflow.maps("width") or workflow.maps("height"):
            width = max(64, round(request.width / SIZE_MULTIPLE) * SIZE_MULTIPLE)
            height = max(64, round(request.height / SIZE_MULTIPLE) * SIZE_MULTIPLE)
            if (width, height) != (request.width, request.height):
                await progress.warn(
                    "SIZE_ADJUSTED",
                    f"ComfyUI renders sizes in multiples of {SIZE_MULTIPLE}; using "
                    f"{width}x{height} instead of {request.width}x{request.height}",
                    "options.width",
                )
            await put("width", width)
            await put("height", height)
            return
        source = request.source
        if source is not None and (source.width, source.height) == (request.width, request.height):
            return  # the workflow renders at the source's size, which is what was asked
        await ignore(
            "width",
            f" (it renders at {'the source image' if source else 'its own'}'s size, not "
            f"{request.width}x{request.height})",
        )

    async def _upload(self, image: SourceImage) -> str:
        """Uploads an input image (named by its content, so a second upload of the same
        image overwrites it with itself) and returns the value for ``LoadImage``."""
        extension = {"image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}.get(
            image.mime_type, "png"
        )
        name = f"limner-{hashlib.sha256(image.data).hexdigest()[:24]}.{extension}"
        answer = await self.http.json(
            "POST",
            "/upload/image",
            files={"image": (name, image.data, image.mime_type)},
            data={"type": "input", "subfolder": UPLOAD_SUBFOLDER, "overwrite": "true"},
        )
        stored = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(stored, str) or not stored:
            raise _bad_response(self.provider_id, "answered an upload without the file's name")
        subfolder = answer.get("subfolder")
        return f"{subfolder}/{stored}" if isinstance(subfolder, str) and subfolder else stored

    async def _queue(
        self, graph: dict[str, Any], prompt_id: str, client_id: str, progress: ProgressSink
    ) -> str:
        """``POST /prompt``, with the shared retry policy; a 400 (ComfyUI's validation)
        becomes an error naming the nodes at fault. Returns the prompt id."""
        http = self.http
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id}
        attempt = 0
        while True:
            attempt += 1
            error: LimnerError
            hinted: float | None = None
            try:
                request = http.client.build_request(
                    "POST",
                    http.url("/prompt"),
                    json=body,
                    headers=http.headers,
                    timeout=http.timeout,
                )
                response = await http.client.send(request, auth=http.auth)
            except httpx.HTTPError as exc:
                error = transport_error(self.provider_id, exc)
            else:
                if response.is_success:
                    answer = parse_json_bytes(
                        self.provider_id, response.status_code, response.content
                    )
                    return await self._queued(answer, graph, progress)
                if response.status_code == 400:
                    raise prompt_rejected(self.provider_id, response, graph)
                error = error_for_status(self.provider_id, response)
                hinted = retry_after_seconds(response)
                if response.status_code not in RETRYABLE_STATUS:
                    raise error
            if attempt > http.retry.max_retries:
                raise error
            delay = http.retry.delay(attempt, hinted)
            await progress.retrying(
                f"{error.message}; retrying in {delay:.1f} s "
                f"(retry {attempt} of {http.retry.max_retries})"
            )
            await asyncio.sleep(delay)

    async def _queued(self, answer: Any, graph: dict[str, Any], progress: ProgressSink) -> str:
        prompt_id = answer.get("prompt_id") if isinstance(answer, dict) else None
        if not isinstance(prompt_id, str) or not prompt_id:
            raise _bad_response(self.provider_id, "queued the workflow without a prompt_id")
        # Outputs that failed validation are skipped while the others run.
        for problem in _node_problems(answer.get("node_errors"), graph):
            await progress.warn(
                "WORKFLOW_OUTPUT_SKIPPED", f"ComfyUI skips part of the workflow: {problem}"
            )
        return prompt_id

    async def _withdraw(self, prompt_id: str) -> None:
        """Takes a prompt back: deleted from the queue while it waits, interrupted only
        while ``/queue`` shows it running. Best effort."""
        try:
            running, pending = await self.queue_state()
        except (LimnerError, httpx.HTTPError) as error:
            log.warning("could not read the queue of providers/%s: %s", self.provider_id, error)
            running, pending = set(), {prompt_id}  # a deletion is harmless; an interrupt not
        try:
            if prompt_id in pending:
                await self.side.request("POST", "/queue", json={"delete": [prompt_id]})
                if prompt_id not in running:
                    running, _ = await self.queue_state()  # it may have started meanwhile
            if prompt_id in running:
                await self.side.request("POST", "/interrupt", json={"prompt_id": prompt_id})
        except (LimnerError, httpx.HTTPError) as error:
            log.warning(
                "could not withdraw a prompt from providers/%s: %s", self.provider_id, error
            )

    async def queue_state(self) -> tuple[set[str], set[str]]:
        """The ids of the running and the waiting prompts."""
        state = await self.side.json("GET", "/queue")
        running = _queue_items(state, "queue_running")
        pending = _queue_items(state, "queue_pending")
        return {item[1] for item in running}, {item[1] for item in pending}

    async def history_entry(self, prompt_id: str) -> dict[str, Any] | None:
        """The prompt's ``/history`` entry, once it has ended."""
        answer = await self.http.json("GET", f"/history/{prompt_id}")
        entry = answer.get(prompt_id) if isinstance(answer, dict) else None
        return entry if isinstance(entry, dict) else None

    async def _view(self, image: Mapping[str, Any]) -> bytes:
        """One result's bytes from ``/view``, refused past the asset size limit."""
        params = {
            "filename": str(image["filename"]),
            "subfolder": str(image.get("subfolder") or ""),
            "type": str(image.get("type") or "output"),
        }
        data = bytearray()
        try:
            async with self.http.stream("GET", "/view", params=params) as response:
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.max_image_bytes:
                        raise _bad_response(
                            self.provider_id,
                            f"returned a result image larger than {self.max_image_bytes} bytes",
                        )
        except httpx.HTTPError as error:
            raise transport_error(self.provider_id, error) from None
        except ProviderRejected as error:
            raise _bad_response(
                self.provider_id,
                f"could not hand over the result image {params['filename']!r} ({error.message})",
            ) from None
        return bytes(data)

    # -- the WebSocket -------------------------------------------------------------------

    async def _connect(self, client_id: str) -> aiohttp.ClientWebSocketResponse[bool] | None:
        """The ``/ws`` WebSocket for this prompt's client id, or None (then the prompt is
        followed by polling ``/history``, without steps or previews)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = re.sub(r"^http", "ws", self.http.url("/ws"))
        try:
            async with asyncio.timeout(WS_CONNECT_TIMEOUT_S):
                return await self._session.ws_connect(
                    url,
                    params={"clientId": client_id},
                    headers=self.http.headers,
                    heartbeat=WS_HEARTBEAT_S,
                    max_msg_size=MAX_WS_MESSAGE_BYTES,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT_S),
                )
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            log.info(
                "no WebSocket to providers/%s (%s); following the prompt by polling",
                self.provider_id,
                type(error).__name__,
            )
            return None


# A WebSocket message: its type and data.
_Frame = tuple[aiohttp.WSMsgType, Any]


class _Follower:
    """Follows one prompt: WebSocket messages become steps, node names and previews; the
    end comes from ``/history``, asked when the WebSocket says so, or has been quiet for
    ``IDLE_CHECK_S``, or is gone (then every ``poll_interval_s``)."""

    def __init__(
        self, images: ComfyUIImages, workflow: Workflow, progress: ProgressSink, prompt_id: str
    ) -> None:
        self.images = images
        self.workflow = workflow
        self.progress = progress
        self.prompt_id = prompt_id
        self.started = False
        self.ended = False
        self.step = 0
        self.total = 0
        self._sampling: tuple[str, float] = ("", 0.0)
        self._position = ""

    @property
    def provider_id(self) -> str:
        return self.images.provider_id

    def label(self, node_id: str, class_type: str = "") -> str:
        return _node_label(self.workflow.graph, node_id, class_type)

    async def follow(self, socket: aiohttp.ClientWebSocketResponse[bool] | None) -> dict[str, Any]:
        """The prompt's ``/history`` entry once it succeeded; raises what it ended with."""
        messages: asyncio.Queue[_Frame | None] = asyncio.Queue()
        reader = asyncio.create_task(_read(socket, messages)) if socket is not None else None
        listening = reader is not None
        asked = queue_checked = time.monotonic()
        try:
            while True:
                if listening and not self.ended:
                    wait_s = max(0.0, asked + IDLE_CHECK_S - time.monotonic())
                    try:
                        message = await asyncio.wait_for(messages.get(), wait_s)
                    except TimeoutError:
                        pass
                    else:
                        if message is None:
                            listening = False
                            log.info("the WebSocket to providers/%s closed", self.provider_id)
                        else:
                            await self.on_message(message)
                        if not self.ended and time.monotonic() - asked < IDLE_CHECK_S:
                            continue
                else:
                    await asyncio.sleep(
                        HISTORY_SETTLE_S if self.ended else self.images.poll_interval_s
                    )
                asked = time.monotonic()
                entry = await self.images.history_entry(self.prompt_id)
                if entry is not None:
                    return self.finish(entry)
                if asked - queue_checked >= IDLE_CHECK_S:
                    queue_checked = asked
                    await self._check_still_queued()
        finally:
            if reader is not None:
                reader.cancel()
                await asyncio.wait({reader})

    async def _check_still_queued(self) -> None:
        try:
            running, pending = await self.images.queue_state()
        except (LimnerError, httpx.HTTPError):
            return  # best effort: asked again later
        if self.prompt_id in running | pending:
            return
        # A prompt leaves the queue and enters the history at once: ask the history again.
        entry = await self.images.history_entry(self.prompt_id)
        if entry is None:
            self.ended = True
            raise Unavailable(
                f"providers/{self.provider_id}: the prompt left ComfyUI's queue without a "
                "result (deleted there, or ComfyUI restarted)",
                reason="PROVIDER_PROMPT_LOST",
                metadata={"provider": self.provider_id, "promptId": self.prompt_id},
                retry_after_s=1.0,
            )

    def finish(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The history entry of a prompt that succeeded; raises for one that did not."""
        self.ended = True
        status = entry.get("status")
        if isinstance(status, dict) and (
            status.get("status_str") == "error" or status.get("completed") is False
        ):
            messages = status.get("messages")
            for item in reversed(messages if isinstance(messages, list) else []):
                if isinstance(item, list) and len(item) == 2 and isinstance(item[1], dict):
                    if item[0] == "execution_error":
                        raise execution_failed(self.provider_id, item[1], self.workflow.graph)
                    if item[0] == "execution_interrupted":
                        raise interrupted(self.provider_id, item[1], self.workflow.graph)
            raise ProviderRejected(
                f"providers/{self.provider_id}: the workflow ended with an error",
                reason="PROVIDER_EXECUTION_FAILED",
                metadata={"provider": self.provider_id},
            )
        return entry

    async def on_message(self, message: _Frame) -> None:
        kind, data = message
        if kind is aiohttp.WSMsgType.TEXT and isinstance(data, str):
            await self.on_json(data)
        elif kind is aiohttp.WSMsgType.BINARY and isinstance(data, bytes):
            await self.on_binary(data)

    async def on_json(self, text: str) -> None:
        try:
            message = orjson.loads(text)
        except ValueError:
            return
        if not isinstance(message, dict) or not isinstance(message.get("data"), dict):
            return
        kind, data = message.get("type"), message["data"]
        if kind == "status":
            if not self.started:
                await self.report_position()
            return
        prompt_id = data.get("prompt_id")
        if prompt_id is not None and prompt_id != self.prompt_id:
            return  # another prompt's (broadcast) message
        match kind:
            case "execution_start":
                self.started = True
                await self.progress.step(0, 0, message="running on ComfyUI")
            case "executing":
                node = data.get("node")
                if node is None:
                    self.ended = self.started  # the end, on servers older than execution_success
                    return
                self.started = True
                await self.progress.step(
                    self.step, self.total, message=f"running {self.label(str(node))}"
                )
            case "progress":
                await self.on_progress(data)
            case "execution_success":
                self.ended = True
            case "execution_error":
                self.ended = True
                raise execution_failed(self.provider_id, data, self.workflow.graph)
            case "execution_interrupted":
                self.ended = True
                raise interrupted(self.provider_id, data, self.workflow.graph)

    async def on_progress(self, data: dict[str, Any]) -> None:
        value, total = data.get("value"), data.get("max")
        if not (isinstance(value, int) and isinstance(total, int) and total > 0):
            return
        if (value, total) == (self.step, self.total):
            return
        node = str(data.get("node") or "")
        now = time.monotonic()
        if self._sampling[0] != node or value < self.step or total != self.total:
            self._sampling = (node, now)  # a new node (or a new pass) started sampling
        self.step, self.total, self.started = value, total, True
        elapsed = now - self._sampling[1]
        eta = elapsed / value * (total - value) if value > 1 else None
        where = f"{self.label(node)}: " if node else ""
        await self.progress.step(value, total, eta_s=eta, message=f"{where}step {value} of {total}")

    async def on_binary(self, data: bytes) -> None:
        if len(data) < 8 or not self.progress.preview_wanted():
            return
        event = int.from_bytes(data[:4], "big")
        if event == PREVIEW_IMAGE:
            image = data[8:]
        elif event == PREVIEW_IMAGE_WITH_METADATA:
            length = int.from_bytes(data[4:8], "big")
            try:
                metadata = orjson.loads(data[8 : 8 + length])
            except ValueError:
                return
            if isinstance(metadata, dict) and metadata.get("prompt_id") not in (
                None,
                self.prompt_id,
            ):
                return
            image = data[8 + length :]
        else:
            return
        if image:
            await self.progress.preview(image, self.step)

    async def report_position(self) -> None:
        """Says how many prompts are ahead of ours in ComfyUI's queue (best effort)."""
        try:
            state = await self.images.side.json("GET", "/queue")
        except (LimnerError, httpx.HTTPError):
            return
        running = _queue_items(state, "queue_running")
        pending = _queue_items(state, "queue_pending")
        mine = [item[0] for item in pending if item[1] == self.prompt_id]
        if self.started or not mine:
            return
        ahead = len(running) + sum(1 for item in pending if _before(item[0], mine[0]))
        position = f"queued on ComfyUI behind {ahead} prompt(s)" if ahead else ""
        if position and position != self._position:
            self._position = position
            await self.progress.step(0, 0, message=position)


async def _read(
    socket: aiohttp.ClientWebSocketResponse[bool], into: asyncio.Queue[_Frame | None]
) -> None:
    """Hands the socket's messages over until it closes (then None)."""
    try:
        async for message in socket:
            await into.put((message.type, message.data))
    except (aiohttp.ClientError, OSError) as error:
        log.info("the WebSocket failed: %s", type(error).__name__)
    finally:
        into.put_nowait(None)


# -- listing -------------------------------------------------------------------------------


class ComfyUIModels:
    def __init__(self, http: ProviderHttp, workflows: Mapping[str, Workflow]) -> None:
        self.http = http
        self.workflows = workflows

    async def list_models(self) -> list[DiscoveredModel]:
        """The checkpoints ``CheckpointLoaderSimple`` offers (each runs the built-in
        workflows, so takes text and an image), then the provider's own workflows."""
        payload = await self.http.json("GET", "/object_info/CheckpointLoaderSimple")
        models = [
            DiscoveredModel(
                provider_model_id=name,
                display_name=re.sub(r"\.(safetensors|ckpt|pt|pth|bin|sft)$", "", name),
                input_modalities=frozenset({"text", "image"}),
                output_modalities=frozenset({"image"}),
            )
            for name in _combo_options(payload, "CheckpointLoaderSimple", "ckpt_name")
        ]
        for name, workflow in self.workflows.items():
            inputs = {"text"} | ({"image"} if workflow.maps("source_image") else set())
            models.append(
                DiscoveredModel(
                    provider_model_id=name,
                    display_name=f"{name} (ComfyUI workflow)",
                    input_modalities=frozenset(inputs),
                    output_modalities=frozenset({"image"}),
                )
            )
        return models


def _combo_options(payload: Any, node: str, input_name: str) -> list[str]:
    """A combo input's choices from ``/object_info``: ``[[choices...], {...}]``, or
    ``["COMBO", {"options": [choices...]}]`` in the newer node schema."""
    try:
        spec = payload[node]["input"]["required"][input_name]
    except (KeyError, TypeError):
        return []
    choices: Any = []
    if isinstance(spec, list) and spec:
        if isinstance(spec[0], list):
            choices = spec[0]
        elif spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            choices = spec[1].get("options") or []
    return [item for item in choices if isinstance(item, str) and item]


# -- errors --------------------------------------------------------------------------------


def prompt_rejected(
    provider_id: str, response: httpx.Response, graph: Mapping[str, Any]
) -> LimnerError:
    """ComfyUI's 400 for ``/prompt``: a missing node type (the current
    ``{"error": {"type": "missing_node_type", ...}}`` and the older ``invalid_prompt`` /
    plain-string shapes), failed input validation per node (``node_errors``), or a
    workflow-level problem (no outputs, ...)."""
    metadata = {"provider": provider_id, "providerStatus": str(response.status_code)}
    try:
        body = orjson.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ProviderRejected(
            f"providers/{provider_id} refused the workflow (HTTP {response.status_code}): "
            + scrub(response.text or response.reason_phrase),
            metadata=metadata,
        )
    error = body.get("error")
    kind = message = details = ""
    extra: dict[str, Any] = {}
    if isinstance(error, dict):
        kind = str(error.get("type") or "")
        message = str(error.get("message") or "")
        details = str(error.get("details") or "")
        extra = error["extra_info"] if isinstance(error.get("extra_info"), dict) else {}
    elif error is not None:
        message = str(error)
    if kind:
        metadata["comfyError"] = kind
    missing = _missing_node(kind, message, details, extra, graph)
    if missing is not None:
        node_id, class_type = missing
        metadata |= {"node": node_id, "classType": class_type}
        return ProviderRejected(
            f"providers/{provider_id} cannot run {_node_label(graph, node_id, class_type)}: "
            f"ComfyUI has no node type {class_type!r} (is the custom node installed?)",
            reason="PROVIDER_NODE_MISSING",
            metadata=metadata,
        )
    problems = _node_problems(body.get("node_errors"), graph)
    if problems:
        first = next(iter(body["node_errors"].items()))
        metadata["node"] = str(first[0])
        if isinstance(first[1], dict) and isinstance(first[1].get("class_type"), str):
            metadata["classType"] = first[1]["class_type"]
        return ProviderRejected(
            scrub(f"providers/{provider_id} refused the workflow: " + "; ".join(problems), 800),
            metadata=metadata,
        )
    text = message or kind or f"HTTP {response.status_code}"
    if details:
        text += f" ({details})"
    return ProviderRejected(
        scrub(f"providers/{provider_id} refused the workflow: {text}"), metadata=metadata
    )


def _missing_node(
    kind: str, message: str, details: str, extra: Mapping[str, Any], graph: Mapping[str, Any]
) -> tuple[str, str] | None:
    """``(node id, class_type)`` when the error is a node type ComfyUI does not have."""
    node_id = str(extra.get("node_id") or "")
    if not node_id:
        match = re.search(r"#([^'\"\s]+)", details)
        node_id = match.group(1) if match else ""
    if kind == "missing_node_type":
        class_type = str(extra.get("class_type") or "")
    else:
        match = re.search(r"node (.+?) does not exist", message)
        if match is None:
            return None
        class_type = match.group(1)
    node = graph.get(node_id)
    if not class_type and isinstance(node, dict):
        class_type = str(node.get("class_type") or "")
    if not node_id:
        node_id = next(
            (
                key
                for key, node in graph.items()
                if isinstance(node, dict) and node.get("class_type") == class_type
            ),
            "?",
        )
    return node_id, class_type or "?"


def _node_problems(node_errors: Any, graph: Mapping[str, Any]) -> list[str]:
    """``node 3 (KSampler): Value not in list: sampler_name: 'x' not in [...]`` per error."""
    problems = []
    for node_id, entry in node_errors.items() if isinstance(node_errors, dict) else ():
        if not isinstance(entry, dict):
            continue
        class_type = entry.get("class_type")
        label = _node_label(graph, str(node_id), class_type if isinstance(class_type, str) else "")
        errors = entry.get("errors")
        for item in errors if isinstance(errors, list) else []:
            if not isinstance(item, dict):
                continue
            text = str(item.get("message") or item.get("type") or "invalid")
            if item.get("details"):
                text += f": {item['details']}"
            problems.append(f"{label}: {text}")
    return problems


def execution_failed(
    provider_id: str, data: Mapping[str, Any], graph: Mapping[str, Any]
) -> LimnerError:
    """An ``execution_error``: out of memory, or the node's exception."""
    node_id = str(data.get("node_id") or "?")
    class_type = str(data.get("node_type") or "")
    label = _node_label(graph, node_id, class_type)
    exception_type = str(data.get("exception_type") or "")
    text = str(data.get("exception_message") or "").strip()
    first_line = text.splitlines()[0].strip() if text else exception_type or "unknown error"
    metadata = {
        "provider": provider_id,
        "node": node_id,
        "classType": class_type or str(graph.get(node_id, {}).get("class_type", "")),
        "exceptionType": exception_type,
    }
    if any(marker in f"{exception_type} {text}".lower() for marker in _OOM_TEXT):
        return ResourceExhausted(
            f"providers/{provider_id} ran out of memory in {label}: {scrub(first_line)} "
            "(a smaller size or batch may fit)",
            reason="PROVIDER_OUT_OF_MEMORY",
            metadata=metadata,
        )
    kind = f"{exception_type}: " if exception_type else ""
    return ProviderRejected(
        f"providers/{provider_id} failed in {label}: {kind}{scrub(first_line)}",
        reason="PROVIDER_EXECUTION_FAILED",
        metadata=metadata,
    )


def interrupted(provider_id: str, data: Mapping[str, Any], graph: Mapping[str, Any]) -> LimnerError:
    """An interrupt Limner did not send (someone stopped it in ComfyUI)."""
    node_id = str(data.get("node_id") or "?")
    label = _node_label(graph, node_id, str(data.get("node_type") or ""))
    return Aborted(
        f"providers/{provider_id}: the prompt was interrupted on ComfyUI (in {label}), not by "
        "Limner",
        reason="PROVIDER_INTERRUPTED",
        metadata={"provider": provider_id, "node": node_id},
    )


def _bad_response(provider_id: str, what: str) -> Unavailable:
    return Unavailable(
        f"providers/{provider_id} {what}",
        reason="PROVIDER_BAD_RESPONSE",
        metadata={"provider": provider_id},
    )


# -- small helpers -------------------------------------------------------------------------


def comfy_sampler(name: str) -> tuple[str, str]:
    """``(sampler_name, scheduler)`` for a sampler name: AUTOMATIC1111's names are
    translated ("DPM++ 2M Karras" -> ``dpmpp_2m`` + ``karras``), others sent as given."""
    text = " ".join(name.split())
    lower = text.lower()
    for suffix, scheduler in _SCHEDULERS.items():
        base = lower.removesuffix(f" {suffix}")
        if base != lower and base in _A1111_SAMPLERS:
            return _A1111_SAMPLERS[base], scheduler
    return _A1111_SAMPLERS.get(lower, text), ""


def _node_label(graph: Mapping[str, Any], node_id: str, class_type: str = "") -> str:
    node = graph.get(node_id)
    if not class_type and isinstance(node, dict):
        class_type = str(node.get("class_type") or "")
    return f"node {node_id} ({class_type})" if class_type else f"node {node_id}"


def _is_link(value: Any) -> bool:
    """``["4", 1]``: the input is another node's output."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
    )


def _queue_items(state: Any, key: str) -> list[tuple[Any, str]]:
    """``(number, prompt_id)`` of each ``[number, prompt_id, prompt, extra, outputs]``."""
    items = state.get(key) if isinstance(state, dict) else None
    return [
        (item[0], item[1])
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, list) and len(item) >= 2 and isinstance(item[1], str)
    ]


def _before(number: Any, mine: Any) -> bool:
    with contextlib.suppress(TypeError):
        return bool(number < mine)
    return False


def _result_images(entry: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The images the workflow saved (``type: output``), else those it only previewed."""
    outputs = entry.get("outputs")
    saved: list[Mapping[str, Any]] = []
    previewed: list[Mapping[str, Any]] = []
    for output in outputs.values() if isinstance(outputs, dict) else []:
        images = output.get("images") if isinstance(output, dict) else None
        for image in images if isinstance(images, list) else []:
            if isinstance(image, dict) and isinstance(image.get("filename"), str):
                (saved if image.get("type", "output") == "output" else previewed).append(image)
    return saved or previewed
