"""A fake ComfyUI server: ``POST /prompt`` with ComfyUI's validation (node types,
checkpoint and sampler choices, uploaded images) and its 400 bodies; one worker running
prompts in order and reporting over ``/ws`` (``status``, ``execution_start``,
``executing``, ``progress``, binary preview frames, ``executed``, ``execution_success`` /
``execution_error`` / ``execution_interrupted``); ``/history/{prompt_id}``, ``/view``,
``/upload/image``, ``/queue`` (read, and ``delete``), ``/interrupt`` (for one
``prompt_id`` when given) and ``/object_info/{node}``.

Besides the shared ``Fault`` modes (answered by ``POST /prompt`` and ``/object_info``),
``arm`` takes a ``ComfyFault`` for what only ComfyUI does. ``hold()`` queues another
client's prompt that runs until ``release()``: Limner's prompt then waits behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import struct
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

from limner.testing.fakes.base import FakeProvider, Fault, RecordedRequest

CHECKPOINTS = [
    "v1-5-pruned-emaonly.safetensors",
    "sd_xl_base_1.0.safetensors",
    "SDXL/juggernautXL_v9.safetensors",
]
SAMPLERS = [
    "euler",
    "euler_ancestral",
    "heun",
    "dpm_2",
    "dpm_2_ancestral",
    "lms",
    "dpmpp_2s_ancestral",
    "dpmpp_sde",
    "dpmpp_2m",
    "dpmpp_2m_sde",
    "dpmpp_3m_sde",
    "ddim",
    "uni_pc",
    "lcm",
]
SCHEDULERS = ["normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform", "beta"]
SAMPLER_NODES = {"KSampler", "KSamplerAdvanced"}
OUTPUT_NODES = {"SaveImage", "PreviewImage"}
NODE_TYPES = {
    "CheckpointLoaderSimple",
    "CLIPTextEncode",
    "EmptyLatentImage",
    "LoadImage",
    "LoadImageMask",
    "VAEEncode",
    "VAEEncodeForInpaint",
    "SetLatentNoiseMask",
    "RepeatLatentBatch",
    "VAEDecode",
    "ImageScale",
    *SAMPLER_NODES,
    *OUTPUT_NODES,
}
# Binary WebSocket events.
PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
PNG = 2


class ComfyFault(StrEnum):
    """What only ComfyUI does; ``arm(ComfyFault.X)`` applies it to the next prompt."""

    VALIDATION_ERROR = "validation_error"  # 400: node_errors for the sampler's steps
    MISSING_NODE = "missing_node"  # 400: the sampler's node type is not installed
    EXECUTION_ERROR = "execution_error"  # execution_error raised in the sampler
    OUT_OF_MEMORY = "out_of_memory"  # execution_error: torch.OutOfMemoryError in the sampler
    IMAGE_LOAD_FAILED = "image_load_failed"  # execution_error: LoadImage cannot read its file
    BROKEN_RESULT = "broken_result"  # /view answers 404 for the result
    CORRUPT_RESULT = "corrupt_result"  # /view answers bytes that are no image
    SOCKET_DROP = "socket_drop"  # the client's WebSocket closes as the prompt starts


@dataclass
class QueueItem:
    number: int
    prompt_id: str
    graph: dict[str, Any]
    client_id: str
    outputs: list[str]
    fault: Fault | ComfyFault | None = None
    gate: asyncio.Event | None = None  # another client's prompt: runs until set

    def entry(self) -> list[Any]:
        return [
            self.number,
            self.prompt_id,
            self.graph,
            {"client_id": self.client_id},
            self.outputs,
        ]


@dataclass
class _Execution:
    item: QueueItem
    messages: list[list[Any]] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)


class _Interrupted(Exception):
    pass


class ComfyUIFake(FakeProvider):
    """``render_s``: how long a sampler takes (spread over its steps); ``preview_every``:
    a preview frame every so many steps (0: none); ``preview_metadata``: frames of type 4
    (with JSON metadata) instead of 1; ``legacy_errors``: answer a missing node type in an
    older shape ("invalid_prompt": ``{"error": {"type": "invalid_prompt", ...}}``,
    "string": ``{"error": "Cannot execute because node X does not exist."}``);
    ``combo_v3``: combo inputs in ``/object_info`` as ``["COMBO", {"options": [...]}]``;
    ``accept_prompt_ids``: use the client's ``prompt_id`` (servers since 2025);
    ``targeted_interrupt``: ``/interrupt`` with a ``prompt_id`` stops only that prompt
    (servers since mid-2025; older ones stop whatever runs); ``history_delay_s``: how long
    after ``execution_success`` the history entry appears (as in ComfyUI, it comes later)."""

    name = "comfyui"

    def __init__(
        self,
        *,
        render_s: float = 0.0,
        preview_every: int = 1,
        preview_metadata: bool = False,
        legacy_errors: str = "",
        combo_v3: bool = False,
        accept_prompt_ids: bool = True,
        targeted_interrupt: bool = True,
        history_delay_s: float = 0.02,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.render_s = render_s
        self.preview_every = preview_every
        self.preview_metadata = preview_metadata
        self.legacy_errors = legacy_errors
        self.combo_v3 = combo_v3
        self.accept_prompt_ids = accept_prompt_ids
        self.targeted_interrupt = targeted_interrupt
        self.history_delay_s = history_delay_s
        self.checkpoints = list(CHECKPOINTS)
        self.node_types = set(NODE_TYPES)
        self.inputs: dict[str, bytes] = {}  # "subfolder/name" -> bytes
        self.outputs: dict[tuple[str, str, str], bytes] = {}  # (type, subfolder, name)
        self.history: dict[str, dict[str, Any]] = {}
        self.pending: list[QueueItem] = []
        self.running: QueueItem | None = None
        self.interrupted: list[str] = []  # prompts an /interrupt stopped
        self.deleted: list[str] = []  # prompts a POST /queue deleted
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self._comfy_faults: deque[ComfyFault] = deque()
        self._numbers = itertools.count()
        self._wake = asyncio.Event()
        self._interrupt = False
        self._worker: asyncio.Task[None] | None = None

    # -- lifecycle and test controls -------------------------------------------------------

    async def start(self) -> ComfyUIFake:
        await super().start()
        self._worker = asyncio.create_task(self._work())
        return self

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.wait({self._worker})
        for socket in list(self.sockets.values()):
            await socket.close()
        await super().stop()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/prompt", self._prompt)
        app.router.add_get("/ws", self._websocket)
        app.router.add_post("/upload/image", self._upload)
        app.router.add_get("/history/{prompt_id}", self._history)
        app.router.add_get("/view", self._view)
        app.router.add_get("/queue", self._queue)
        app.router.add_post("/queue", self._queue_edit)
        app.router.add_post("/interrupt", self._interrupt_route)
        app.router.add_get("/object_info/{node}", self._object_info)

    def arm(
        self,
        fault: Fault | ComfyFault,
        *,
        times: int = 1,
        delay_s: float = 0.0,
        retry_after_s: float = 1.0,
    ) -> None:
        if isinstance(fault, ComfyFault):
            self._comfy_faults.extend([fault] * times)
        else:
            super().arm(fault, times=times, delay_s=delay_s, retry_after_s=retry_after_s)

    def hold(self, client_id: str = "someone-else") -> str:
        """Queues another client's prompt that runs until ``release``; returns its id."""
        graph = {
            "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": CHECKPOINTS[0]}},
            "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
        }
        item = QueueItem(
            next(self._numbers), str(uuid.uuid4()), graph, client_id, ["2"], gate=asyncio.Event()
        )
        self.pending.append(item)
        self._wake.set()
        return item.prompt_id

    def release(self, prompt_id: str) -> None:
        for item in [self.running, *self.pending]:
            if item is not None and item.prompt_id == prompt_id and item.gate is not None:
                item.gate.set()

    def prompts(self) -> list[RecordedRequest]:
        """The ``POST /prompt`` requests received, in order."""
        return [r for r in self.requests if (r.method, r.path) == ("POST", "/prompt")]

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {
                "error": {
                    "type": "invalid_prompt",
                    "message": message,
                    "details": "",
                    "extra_info": {},
                },
                "node_errors": {},
            },
            status=status,
            headers=headers,
        )

    # -- /prompt -------------------------------------------------------------------------

    async def _prompt(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        armed = self.next_fault()
        await self.delay(armed)
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        comfy = self._comfy_faults.popleft() if self._comfy_faults else None
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), dict):
            return _rejected(
                {
                    "type": "no_prompt",
                    "message": "No prompt provided",
                    "details": "No prompt provided",
                }
            )
        graph: dict[str, Any] = body["prompt"]
        prompt_id = str(body.get("prompt_id") or "") if self.accept_prompt_ids else ""
        prompt_id = prompt_id or str(uuid.uuid4())
        refused = self._validate(graph, comfy)
        if refused is not None:
            return refused
        outputs = [key for key, node in graph.items() if node["class_type"] in OUTPUT_NODES]
        item = QueueItem(
            next(self._numbers),
            prompt_id,
            graph,
            str(body.get("client_id") or ""),
            outputs,
            fault=comfy or (armed.fault if armed is not None else None),
        )
        self.pending.append(item)
        self._wake.set()
        await self._broadcast_status()
        return web.json_response({"prompt_id": prompt_id, "number": item.number, "node_errors": {}})

    def _validate(self, graph: dict[str, Any], fault: ComfyFault | None) -> web.Response | None:
        """ComfyUI's ``validate_prompt``: node types first, then each node's inputs."""
        sampler = next((key for key, node in graph.items() if _class(node) in SAMPLER_NODES), None)
        for key, node in graph.items():
            class_type = _class(node)
            if not class_type:
                return _rejected(
                    {
                        "type": "invalid_prompt",
                        "message": "Cannot execute because a node is missing the class_type "
                        "property.",
                        "details": f"Node ID '#{key}'",
                    }
                )
            missing = class_type not in self.node_types or (
                fault is ComfyFault.MISSING_NODE and key == sampler
            )
            if missing:
                return self._missing_node(key, node)
        if not any(_class(node) in OUTPUT_NODES for node in graph.values()):
            return _rejected({"type": "prompt_no_outputs", "message": "Prompt has no outputs"})
        node_errors: dict[str, Any] = {}
        for key, node in graph.items():
            errors = self._node_errors(node)
            if fault is ComfyFault.VALIDATION_ERROR and key == sampler:
                errors.append(
                    _node_error(
                        "value_bigger_than_max",
                        "Value 10001 bigger than max of 10000",
                        "steps",
                        "steps",
                        10001,
                    )
                )
            if errors:
                node_errors[key] = {
                    "errors": errors,
                    "dependent_outputs": [k for k, n in graph.items() if _class(n) in OUTPUT_NODES],
                    "class_type": node["class_type"],
                }
        if node_errors:
            return _rejected(
                {
                    "type": "prompt_outputs_failed_validation",
                    "message": "Prompt outputs failed validation",
                },
                node_errors,
            )
        return None

    def _missing_node(self, key: str, node: dict[str, Any]) -> web.Response:
        class_type = node["class_type"]
        title = (node.get("_meta") or {}).get("title") or class_type
        if self.legacy_errors == "string":
            return web.json_response(
                {
                    "error": f"Cannot execute because node {class_type} does not exist.",
                    "node_errors": [],
                },
                status=400,
            )
        if self.legacy_errors == "invalid_prompt":
            return web.json_response(
                {
                    "error": {
                        "type": "invalid_prompt",
                        "message": f"Cannot execute because node {class_type} does not exist.",
                        "details": f"Node ID '#{key}'",
                        "extra_info": {},
                    },
                    "node_errors": [],
                },
                status=400,
            )
        return _rejected(
            {
                "type": "missing_node_type",
                "message": f"Node '{title}' not found. The custom node may not be installed.",
                "details": f"Node ID '#{key}'",
                "extra_info": {"node_id": key, "class_type": class_type, "node_title": title},
            }
        )

    def _node_errors(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        inputs = node.get("inputs") or {}
        errors = []

        def choice(name: str, options: list[str]) -> None:
            value = inputs.get(name)
            if value not in options:
                errors.append(
                    _node_error(
                        "value_not_in_list",
                        "Value not in list",
                        f"{name}: '{value}' not in {options}",
                        name,
                        value,
                    )
                )

        match node["class_type"]:
            case "CheckpointLoaderSimple":
                choice("ckpt_name", self.checkpoints)
            case "KSampler":
                choice("sampler_name", SAMPLERS)
                choice("scheduler", SCHEDULERS)
                steps = inputs.get("steps")
                if not isinstance(steps, int) or steps < 1:
                    errors.append(
                        _node_error(
                            "value_smaller_than_min",
                            f"Value {steps} smaller than min of 1",
                            "steps",
                            "steps",
                            steps,
                        )
                    )
            case "LoadImage" | "LoadImageMask":
                value = inputs.get("image")
                if value not in self.inputs:
                    errors.append(
                        _node_error(
                            "custom_validation_failed",
                            "Custom validation failed for node",
                            f"image - Invalid image file: {value}",
                            "image",
                            value,
                        )
                    )
        return errors

    # -- the worker ------------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            while not self.pending:
                self._wake.clear()
                await self._wake.wait()
            self.pending.sort(key=lambda item: item.number)
            item = self.pending.pop(0)
            self.running = item
            self._interrupt = False
            try:
                await self._execute(item)
            finally:
                self.running = None
                await self._broadcast_status()

    async def _execute(self, item: QueueItem) -> None:
        run = _Execution(item)
        sid = item.client_id
        await self._event(
            run, "execution_start", {"prompt_id": item.prompt_id, "timestamp": _now()}
        )
        await self._event(
            run, "execution_cached", {"nodes": [], "prompt_id": item.prompt_id, "timestamp": _now()}
        )
        if item.fault is ComfyFault.SOCKET_DROP and sid in self.sockets:
            await self.sockets[sid].close()
        executed: list[str] = []
        current = ""
        try:
            if item.gate is not None:
                while not item.gate.is_set():
                    self._check_interrupt()
                    await asyncio.sleep(0.01)
            for key in _order(item.graph):
                current = key
                node = item.graph[key]
                await self._send(
                    sid,
                    "executing",
                    {"node": key, "display_node": key, "prompt_id": item.prompt_id},
                )
                self._check_interrupt()
                failure = self._failure(item, node)
                if failure is not None:
                    await self._error(run, key, node, executed, *failure)
                    return
                if node["class_type"] in SAMPLER_NODES:
                    await self._sample(item, key, node)
                elif node["class_type"] in OUTPUT_NODES:
                    await self._save(run, key, node)
                executed.append(key)
        except _Interrupted:
            data = {
                "prompt_id": item.prompt_id,
                "node_id": current,
                "node_type": item.graph.get(current, {}).get("class_type", ""),
                "executed": executed,
            }
            run.messages.append(["execution_interrupted", {**data, "timestamp": _now()}])
            await self._broadcast("execution_interrupted", data)
            self._write_history(run, "error")
            await self._send(sid, "executing", {"node": None, "prompt_id": item.prompt_id})
            return
        await self._event(
            run, "execution_success", {"prompt_id": item.prompt_id, "timestamp": _now()}
        )
        await asyncio.sleep(self.history_delay_s)
        self._write_history(run, "success")
        await self._send(sid, "executing", {"node": None, "prompt_id": item.prompt_id})

    def _check_interrupt(self) -> None:
        if self._interrupt:
            self._interrupt = False
            raise _Interrupted

    def _failure(self, item: QueueItem, node: dict[str, Any]) -> tuple[str, str] | None:
        class_type = node["class_type"]
        if item.fault is ComfyFault.IMAGE_LOAD_FAILED and class_type == "LoadImage":
            name = node["inputs"].get("image")
            return (
                "PIL.UnidentifiedImageError",
                f"cannot identify image file '/ComfyUI/input/{name}'",
            )
        if class_type not in SAMPLER_NODES:
            return None
        if item.fault is ComfyFault.EXECUTION_ERROR:
            return (
                "RuntimeError",
                "mat1 and mat2 shapes cannot be multiplied (154x2048 and 768x320)",
            )
        if item.fault is ComfyFault.OUT_OF_MEMORY:
            return (
                "torch.OutOfMemoryError",
                "Allocation on device \nThis error means you ran out of memory on your GPU.\n\n"
                "TIPS: If the workflow worked before you might have accidentally set the "
                "batch_size to a large number.",
            )
        return None

    async def _error(
        self,
        run: _Execution,
        key: str,
        node: dict[str, Any],
        executed: list[str],
        exception_type: str,
        message: str,
    ) -> None:
        item = run.item
        data = {
            "prompt_id": item.prompt_id,
            "node_id": key,
            "node_type": node["class_type"],
            "executed": executed,
            "exception_message": message,
            "exception_type": exception_type,
            "traceback": ['  File "/ComfyUI/execution.py", line 496, in execute\n'],
            "current_inputs": {},
            "current_outputs": [],
        }
        await self._event(run, "execution_error", {**data, "timestamp": _now()})
        self._write_history(run, "error")
        await self._send(item.client_id, "executing", {"node": None, "prompt_id": item.prompt_id})

    async def _sample(self, item: QueueItem, key: str, node: dict[str, Any]) -> None:
        steps = int(node["inputs"].get("steps") or 20)
        for step in range(1, steps + 1):
            self._check_interrupt()
            if self.render_s:
                await asyncio.sleep(self.render_s / steps)
            self._check_interrupt()
            await self._send(
                item.client_id,
                "progress",
                {"value": step, "max": steps, "prompt_id": item.prompt_id, "node": key},
            )
            if self.preview_every and step % self.preview_every == 0 and step < steps:
                await self._preview(item, key)

    async def _preview(self, item: QueueItem, key: str) -> None:
        image = self.next_image(64, 64)
        if self.preview_metadata:
            metadata = json.dumps(
                {"node_id": key, "prompt_id": item.prompt_id, "image_type": "image/png"}
            ).encode()
            frame = struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(metadata)) + metadata
        else:
            frame = struct.pack(">II", PREVIEW_IMAGE, PNG)
        socket = self.sockets.get(item.client_id)
        if socket is not None and not socket.closed:
            with contextlib.suppress(ConnectionError):
                await socket.send_bytes(frame + image)

    async def _save(self, run: _Execution, key: str, node: dict[str, Any]) -> None:
        item = run.item
        fault = item.fault
        count, width, height = self._shape(item.graph)
        if fault is Fault.TEXT_INSTEAD_OF_IMAGE:
            count = 0
        kind = "output" if node["class_type"] == "SaveImage" else "temp"
        prefix = str(node["inputs"].get("filename_prefix") or "ComfyUI")
        subfolder, _, stem = prefix.rpartition("/")
        images = []
        for _ in range(count):
            name = f"{stem}_{next(self._numbers):05}_.png"
            images.append({"filename": name, "subfolder": subfolder, "type": kind})
            if fault in (ComfyFault.BROKEN_RESULT, Fault.BROKEN_URL):
                continue
            if fault is ComfyFault.CORRUPT_RESULT:
                data = b"<html>not an image</html>"
            elif fault is Fault.OVERSIZED_IMAGE:
                data = self.oversized_image()
            else:
                data = self.next_image(width, height)
            self.outputs[(kind, subfolder, name)] = data
        run.outputs[key] = {"images": images}
        await self._send(
            item.client_id,
            "executed",
            {
                "node": key,
                "display_node": key,
                "output": {"images": images},
                "prompt_id": item.prompt_id,
            },
        )

    def _shape(self, graph: dict[str, Any]) -> tuple[int, int, int]:
        """How many images a workflow makes, and their size."""
        count, size, source = 1, (512, 512), None
        for node in graph.values():
            inputs = node.get("inputs") or {}
            match node.get("class_type"):
                case "EmptyLatentImage":
                    size = (int(inputs["width"]), int(inputs["height"]))
                    count = int(inputs.get("batch_size") or 1)
                case "RepeatLatentBatch":
                    count = int(inputs.get("amount") or 1)
                case "LoadImage" if source is None:
                    data = self.inputs.get(str(inputs.get("image")))
                    if data is not None:
                        with Image.open(io.BytesIO(data)) as image:
                            source = image.size
        if source is not None and not any(_class(n) == "EmptyLatentImage" for n in graph.values()):
            size = source
        return count, size[0] // 8 * 8, size[1] // 8 * 8

    def _write_history(self, run: _Execution, status: str) -> None:
        item = run.item
        self.history[item.prompt_id] = {
            "prompt": item.entry(),
            "outputs": run.outputs if status == "success" else {},
            "status": {
                "status_str": status,
                "completed": status == "success",
                "messages": run.messages,
            },
            "meta": {key: {"node_id": key, "display_node": key} for key in run.outputs},
        }

    # -- messages ------------------------------------------------------------------------

    async def _event(self, run: _Execution, kind: str, data: dict[str, Any]) -> None:
        """A message that also goes into the history's status messages."""
        run.messages.append([kind, data])
        await self._send(run.item.client_id, kind, data)

    async def _send(self, sid: str, kind: str, data: dict[str, Any]) -> None:
        socket = self.sockets.get(sid)
        if socket is None or socket.closed:
            return
        with contextlib.suppress(ConnectionError):
            await socket.send_json({"type": kind, "data": data})

    async def _broadcast(self, kind: str, data: dict[str, Any]) -> None:
        for sid in list(self.sockets):
            await self._send(sid, kind, data)

    async def _broadcast_status(self) -> None:
        await self._broadcast("status", {"status": self._queue_info()})

    def _queue_info(self) -> dict[str, Any]:
        remaining = len(self.pending) + (1 if self.running is not None else 0)
        return {"exec_info": {"queue_remaining": remaining}}

    # -- the other routes --------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = socket
        try:
            await socket.send_json(
                {"type": "status", "data": {"status": self._queue_info(), "sid": sid}}
            )
            async for message in socket:
                if message.type is WSMsgType.ERROR:
                    break
        finally:
            if self.sockets.get(sid) is socket:
                del self.sockets[sid]
        return socket

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        files = [v for v in recorded.form.get("image", []) if isinstance(v, dict)]
        if not files or not files[0]["filename"]:
            return web.Response(status=400)
        subfolder = _first(recorded.form, "subfolder")
        name = files[0]["filename"]
        self.inputs[f"{subfolder}/{name}" if subfolder else name] = files[0]["data"]
        kind = _first(recorded.form, "type") or "input"
        return web.json_response({"name": name, "subfolder": subfolder, "type": kind})

    async def _history(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry is not None else {})

    async def _view(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        query = request.query
        key = (query.get("type", "output"), query.get("subfolder", ""), query.get("filename", ""))
        data = self.outputs.get(key)
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png")

    async def _queue(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        running = [self.running.entry()] if self.running is not None else []
        return web.json_response(
            {"queue_running": running, "queue_pending": [item.entry() for item in self.pending]}
        )

    async def _queue_edit(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if body.get("clear"):
            self.deleted += [item.prompt_id for item in self.pending]
            self.pending.clear()
        for prompt_id in body.get("delete") or []:
            for item in [i for i in self.pending if i.prompt_id == prompt_id]:
                self.pending.remove(item)
                self.deleted.append(prompt_id)
        await self._broadcast_status()
        return web.Response(status=200)

    async def _interrupt_route(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.json if isinstance(recorded.json, dict) else {}
        running = self.running
        wanted = body.get("prompt_id") if self.targeted_interrupt else None
        if running is not None and (not wanted or wanted == running.prompt_id):
            self.interrupted.append(running.prompt_id)
            self._interrupt = True
        return web.Response(status=200)

    async def _object_info(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        armed = self.next_fault()
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        node = request.match_info["node"]
        if node != "CheckpointLoaderSimple" or node not in self.node_types:
            return web.json_response({})
        tooltip = {"tooltip": "The name of the checkpoint (model) to load."}
        spec: list[Any] = (
            ["COMBO", {**tooltip, "options": self.checkpoints}]
            if self.combo_v3
            else [self.checkpoints, tooltip]
        )
        return web.json_response(
            {
                node: {
                    "input": {"required": {"ckpt_name": spec}},
                    "input_order": {"required": ["ckpt_name"]},
                    "output": ["MODEL", "CLIP", "VAE"],
                    "output_is_list": [False, False, False],
                    "output_name": ["MODEL", "CLIP", "VAE"],
                    "name": node,
                    "display_name": "Load Checkpoint",
                    "description": "Loads a diffusion model checkpoint.",
                    "python_module": "nodes",
                    "category": "loaders",
                    "output_node": False,
                }
            }
        )


def _rejected(error: dict[str, Any], node_errors: dict[str, Any] | None = None) -> web.Response:
    return web.json_response(
        {"error": {"details": "", "extra_info": {}, **error}, "node_errors": node_errors or {}},
        status=400,
    )


def _node_error(
    kind: str, message: str, details: str, input_name: str, value: Any
) -> dict[str, Any]:
    return {
        "type": kind,
        "message": message,
        "details": details,
        "extra_info": {"input_name": input_name, "received_value": value},
    }


def _class(node: Any) -> str:
    return str(node.get("class_type") or "") if isinstance(node, dict) else ""


def _order(graph: dict[str, Any]) -> list[str]:
    """The nodes, each after the nodes it takes input from."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(key: str) -> None:
        if key in seen or key not in graph:
            return
        seen.add(key)
        for value in (graph[key].get("inputs") or {}).values():
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                visit(value[0])
        done.append(key)

    for key in graph:
        visit(key)
    return done


def _first(form: dict[str, list[Any]], name: str) -> str:
    values = [v for v in form.get(name, []) if isinstance(v, str)]
    return values[0] if values else ""


def _now() -> int:
    return int(time.time() * 1000)
