"""A fake fal queue API (``queue.fal.run``): ``POST /{endpoint}`` queues a request and
answers ``{request_id, status_url, response_url, cancel_url}``; requests move through
``IN_QUEUE`` (``queue_position`` counting down to 0), ``IN_PROGRESS`` (runner ``logs``) and
``COMPLETED``; ``/requests/{id}/status`` and ``/requests/{id}/status/stream`` (server-sent
events) report it, ``/requests/{id}`` answers the model's output, ``PUT .../cancel`` answers
202 ``CANCELLATION_REQUESTED`` or 400 ``ALREADY_COMPLETED``. Request paths use the app id
(``fal-ai/flux``), not the endpoint (``fal-ai/flux/dev``), as fal's do.

Inputs are checked against a small per-endpoint table (required fields, presets, image
URLs that must be http(s) or decodable data URIs) with fal's 422 ``detail`` list; fields an
endpoint does not take are ignored, as fal's apps do, and listed in ``ignored_fields``.
``Authorization: Key <api_key>`` is required. Besides the shared ``Fault`` modes (armed for
the next submissions), ``FalFault`` covers what only a queue can do wrong.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from aiohttp import web
from PIL import Image

from limner.testing.fakes.base import FakeProvider, Fault

PRESETS = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
ASPECT_RATIOS = ("21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21")
_COMMON = {"prompt", "seed", "num_images", "sync_mode", "output_format"}
_FLUX = _COMMON | {
    "num_inference_steps",
    "guidance_scale",
    "enable_safety_checker",
    "acceleration",
}
# endpoint -> (required fields, accepted fields)
ENDPOINTS: dict[str, tuple[set[str], set[str]]] = {
    "fal-ai/flux/dev": ({"prompt"}, _FLUX | {"image_size"}),
    "fal-ai/flux/dev/image-to-image": ({"prompt", "image_url"}, _FLUX | {"image_url", "strength"}),
    "fal-ai/flux-lora/inpainting": (
        {"prompt", "image_url", "mask_url"},
        _FLUX | {"image_url", "mask_url", "strength", "image_size"},
    ),
    "fal-ai/flux-pro/kontext": (
        {"prompt", "image_url"},
        _COMMON | {"image_url", "guidance_scale", "aspect_ratio", "safety_tolerance"},
    ),
    "fal-ai/flux-pro/kontext/max/multi": (
        {"prompt", "image_urls"},
        _COMMON | {"image_urls", "guidance_scale", "aspect_ratio", "safety_tolerance"},
    ),
    "fal-ai/fast-sdxl": (
        {"prompt"},
        _COMMON
        | {
            "negative_prompt",
            "image_size",
            "num_inference_steps",
            "guidance_scale",
            "enable_safety_checker",
        },
    ),
}
NAMESPACES = ("workflows", "comfy")


class FalFault(StrEnum):
    """Faults of fal's queue, armed with ``arm_fal`` for the next submissions."""

    REQUEST_ERROR = "request_error"  # the status ends COMPLETED with error + error_type
    RESULT_REJECTED = "result_rejected"  # response_url answers 422 with a detail list
    CONTENT_POLICY = "content_policy"  # response_url answers 422 content_policy_violation
    STREAM_BROKEN = "stream_broken"  # /status/stream answers 503 (clients poll instead)
    STREAM_MALFORMED = "stream_malformed"  # /status/stream sends data that is not JSON
    MALFORMED_RESULT = "malformed_result"  # response_url answers 200 with a non-JSON body


@dataclass
class FalRequest:
    """One queued request as the fake sees it."""

    id: str
    endpoint: str
    app: str
    input: dict[str, Any]
    fault: Fault | None = None
    fal_fault: FalFault | None = None
    status: str = "IN_QUEUE"
    position: int = 0
    logs: list[dict[str, Any]] = field(default_factory=list)
    error: tuple[str, str] | None = None  # (message, error_type)
    answer: tuple[int, bytes] | None = None  # the response_url answer once completed
    cancelled: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def notify(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class FalFake(FakeProvider):
    """``queue_length`` requests are ahead of each new one (positions count down every
    ``tick_s``); it then runs for ``run_steps`` ticks, logging ``step n/total``. With
    ``hold_queued`` a request stays at position 0, with ``hold_running`` it keeps running,
    until the flag is cleared. ``running_cancel`` is how a cancel of a running request is
    answered (fal can only pass it on, so the request still finishes)."""

    name = "fal"

    def __init__(
        self,
        *,
        api_key: str = "fal-test-key",
        queue_length: int = 0,
        tick_s: float = 0.02,
        run_steps: int = 3,
        latency_s: float = 0.0,
    ) -> None:
        super().__init__(latency_s=latency_s)
        self.api_key = api_key
        self.queue_length = queue_length
        self.tick_s = tick_s
        self.run_steps = run_steps
        self.hold_queued = False
        self.hold_running = False
        self.running_cancel = "CANCELLATION_REQUESTED"
        # Results as data URIs (fal's sync_mode) instead of hosted URLs.
        self.answer_with_data_uris = False
        # has_nsfw_concepts for the next results, one flag per image (None: none flagged).
        self.nsfw_flags: list[bool] | None = None
        self.submitted: list[FalRequest] = []
        self.cancels: list[tuple[str, str]] = []  # (request id, status when cancelled)
        self.ignored_fields: list[str] = []
        self._by_id: dict[str, FalRequest] = {}
        self._fal_faults: list[FalFault] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/{app:.+}/requests/{id}/status/stream", self._stream)
        app.router.add_get("/{app:.+}/requests/{id}/status", self._status)
        app.router.add_get("/{app:.+}/requests/{id}", self._result)
        app.router.add_put("/{app:.+}/requests/{id}/cancel", self._cancel)
        app.router.add_post("/{endpoint:.+}", self._submit)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await super().stop()

    def arm_fal(self, fault: FalFault, *, times: int = 1) -> None:
        self._fal_faults.extend([fault] * times)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response({"detail": message}, status=status, headers=headers)

    # -- routes --------------------------------------------------------------------------

    async def _submit(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        denied = self._check_key(request)
        if denied is not None:
            return denied
        endpoint = request.match_info["endpoint"].strip("/")
        armed = self.next_fault()
        await self.delay(armed)
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        if endpoint not in ENDPOINTS:
            return self.error(404, f"Application '{endpoint}' not found")
        if not isinstance(recorded.json, dict):
            return _invalid(["body"], "Input should be a valid dictionary", "dict_type")
        problem = self._validate(endpoint, recorded.json)
        if problem is not None:
            return problem
        fal_request = FalRequest(
            id=str(uuid.uuid4()),
            endpoint=endpoint,
            app=_app_id(endpoint),
            input=recorded.json,
            fault=armed.fault if armed is not None else None,
            fal_fault=self._fal_faults.pop(0) if self._fal_faults else None,
            position=max(self.queue_length - 1, 0),
        )
        self.submitted.append(fal_request)
        self._by_id[fal_request.id] = fal_request
        task = asyncio.create_task(self._lifecycle(fal_request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        urls = self._urls(fal_request)
        return web.json_response(
            {
                "status": "IN_QUEUE",
                "request_id": fal_request.id,
                "queue_position": fal_request.position,
                **urls,
            }
        )

    async def _status(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        return web.json_response(self._status_body(found, request.query.get("logs") == "1"))

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        if found.fal_fault is FalFault.STREAM_BROKEN:
            return self.error(503, "status streaming is unavailable")
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        if found.fal_fault is FalFault.STREAM_MALFORMED:
            await response.write(b'data: {"status": "IN_QUE\n\n')
            await response.write_eof()
            return response
        with_logs = request.query.get("logs") == "1"
        while True:
            changed = found.changed
            body = self._status_body(found, with_logs)
            await response.write(f"data: {json.dumps(body)}\n\n".encode())
            if found.status == "COMPLETED":
                break
            await changed.wait()
        await response.write_eof()
        return response

    async def _result(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        found = self._find(request)
        if isinstance(found, web.Response):
            return found
        if found.status != "COMPLETED" or found.answer is None:
            return self.error(400, "Request is still in progress")
        status, body = found.answer
        return web.Response(status=status, body=body, content_type="application/json")

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        found = self._find(request, status_if_missing={"status": "NOT_FOUND"})
        if isinstance(found, web.Response):
            return found
        self.cancels.append((found.id, found.status))
        if found.status == "COMPLETED":
            return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
        if found.status == "IN_PROGRESS":
            if self.running_cancel == "ALREADY_COMPLETED":
                return web.json_response({"status": "ALREADY_COMPLETED"}, status=400)
            return web.json_response({"status": self.running_cancel}, status=202)
        found.cancelled = True
        found.status = "COMPLETED"
        found.error = ("Request was cancelled by the client", "client_cancelled")
        found.answer = (499, json.dumps({"detail": found.error[0]}).encode())
        found.notify()
        return web.json_response({"status": "CANCELLATION_REQUESTED"}, status=202)

    # -- the queue -------------------------------------------------------------------------

    async def _lifecycle(self, item: FalRequest) -> None:
        while item.position > 0 and not item.cancelled:
            await asyncio.sleep(self.tick_s)
            item.position -= 1
            item.notify()
        while self.hold_queued and not item.cancelled:  # noqa: ASYNC110 (a test knob)
            await asyncio.sleep(self.tick_s)
        await asyncio.sleep(self.tick_s)
        if item.cancelled:
            return
        item.status = "IN_PROGRESS"
        item.notify()
        total = self.run_steps
        for step in range(1, total + 1):
            await asyncio.sleep(self.tick_s)
            item.logs.append(_log(f"{step}/{total} [00:00<00:00, 9.9it/s]"))
            item.notify()
        while self.hold_running:  # noqa: ASYNC110 (a test knob)
            await asyncio.sleep(self.tick_s)
        item.answer = self._answer(item)
        item.status = "COMPLETED"
        item.notify()

    def _answer(self, item: FalRequest) -> tuple[int, bytes]:
        """What response_url answers for a finished request."""
        if item.fal_fault is FalFault.REQUEST_ERROR:
            item.error = ("Runner disconnected while processing the request", "runner_disconnected")
            failure = {"detail": item.error[0], "error_type": item.error[1]}
            return 503, json.dumps(failure).encode()
        if item.fal_fault is FalFault.RESULT_REJECTED:
            return 422, _detail(
                ["body", "image_url"],
                "Image dimensions are too large: at most 1024x1024",
                "image_too_large",
                {"max_height": 1024, "max_width": 1024},
            )
        if item.fal_fault is FalFault.CONTENT_POLICY:
            return 422, _detail(
                ["body", "prompt"],
                "The content could not be processed because it contained material flagged "
                "by a content checker.",
                "content_policy_violation",
            )
        if item.fal_fault is FalFault.MALFORMED_RESULT:
            return 200, b'{"images": [ not json'
        count = int(item.input.get("num_images") or 1)
        width, height = self._size(item.input)
        fault = item.fault
        images = []
        for _ in range(0 if fault is Fault.TEXT_INSTEAD_OF_IMAGE else count):
            data = self.next_image(width, height)
            if fault is Fault.OVERSIZED_IMAGE:
                data = self.oversized_image()
            if fault is Fault.BROKEN_URL:
                url = f"{self.base_url}/files/missing-{uuid.uuid4().hex}.png"
            elif self.answer_with_data_uris:
                url = self.data_url(data)
            else:
                url = self.host(data)
            images.append(
                {"url": url, "width": width, "height": height, "content_type": "image/png"}
            )
        flags = [fault is Fault.CONTENT_FILTERED] * len(images)
        if self.nsfw_flags is not None:
            flags = (self.nsfw_flags + [False] * len(images))[: len(images)]
        seed = item.input.get("seed")
        body: dict[str, Any] = {
            "images": images,
            "timings": {"inference": 0.01},
            "seed": seed if isinstance(seed, int) else 424242,
            "has_nsfw_concepts": flags,
            "prompt": item.input.get("prompt", ""),
        }
        if not images:
            body["description"] = "The model produced no image for this prompt."
        return 200, json.dumps(body).encode()

    def _size(self, fields: dict[str, Any]) -> tuple[int, int]:
        for name in ("image_url", "image_urls"):
            value = fields.get(name)
            first = value[0] if isinstance(value, list) and value else value
            if isinstance(first, str) and first.startswith("data:"):
                decoded = _decode_data_uri(first)
                if decoded is not None:
                    with Image.open(io.BytesIO(decoded)) as opened:
                        return opened.size
        size = fields.get("image_size", "landscape_4_3")
        if isinstance(size, dict):
            return int(size["width"]), int(size["height"])
        if isinstance(size, str) and size in PRESETS:
            return PRESETS[size]
        return self.image_size

    # -- helpers ---------------------------------------------------------------------------

    def _check_key(self, request: web.Request) -> web.Response | None:
        if request.headers.get("authorization", "") != f"Key {self.api_key}":
            return self.error(401, "Invalid or missing API key")
        return None

    def _find(
        self, request: web.Request, status_if_missing: dict[str, str] | None = None
    ) -> FalRequest | web.Response:
        denied = self._check_key(request)
        if denied is not None:
            return denied
        found = self._by_id.get(request.match_info["id"])
        # fal's request paths name the app, never the endpoint's sub-path.
        if found is None or found.app != request.match_info["app"]:
            if status_if_missing is not None:
                return web.json_response(status_if_missing, status=404)
            return self.error(404, "Request not found")
        return found

    def _urls(self, item: FalRequest) -> dict[str, str]:
        base = f"{self.base_url}/{item.app}/requests/{item.id}"
        return {
            "response_url": base,
            "status_url": f"{base}/status",
            "cancel_url": f"{base}/cancel",
        }

    def _status_body(self, item: FalRequest, with_logs: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": item.status,
            "request_id": item.id,
            "response_url": self._urls(item)["response_url"],
        }
        if item.status == "IN_QUEUE":
            body["queue_position"] = item.position
        else:
            body["logs"] = list(item.logs) if with_logs else None
        if item.status == "COMPLETED":
            body["metrics"] = {"inference_time": 0.01}
            if item.error is not None:
                body["error"], body["error_type"] = item.error
        return body

    def _validate(self, endpoint: str, fields: dict[str, Any]) -> web.Response | None:
        required, accepted = ENDPOINTS[endpoint]
        for name in sorted(required):
            if name not in fields:
                return _invalid(["body", name], "Field required", "missing")
        self.ignored_fields.extend(sorted(set(fields) - accepted))
        prompt = fields.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _invalid(["body", "prompt"], "String should have at least 1 character", "")
        count = fields.get("num_images", 1)
        if not isinstance(count, int) or not 1 <= count <= 4:
            return _invalid(["body", "num_images"], "Input should be from 1 to 4", "less_than")
        size = fields.get("image_size")
        if "image_size" in accepted and size is not None:
            valid = (isinstance(size, str) and size in PRESETS) or (
                isinstance(size, dict)
                and set(size) == {"width", "height"}
                and all(isinstance(v, int) and 1 <= v <= 14142 for v in size.values())
            )
            if not valid:
                return _invalid(["body", "image_size"], "Input should be a preset or a size", "")
        ratio = fields.get("aspect_ratio")
        if "aspect_ratio" in accepted and ratio is not None and ratio not in ASPECT_RATIOS:
            return _invalid(["body", "aspect_ratio"], "Input should be a known ratio", "enum")
        strength = fields.get("strength")
        if (
            "strength" in accepted
            and strength is not None
            and (not isinstance(strength, int | float) or not 0 <= strength <= 1)
        ):
            return _invalid(["body", "strength"], "Input should be from 0 to 1", "")
        for name in ("image_url", "mask_url", "image_urls"):
            if name not in accepted or name not in fields:
                continue
            values = fields[name] if name == "image_urls" else [fields[name]]
            if not isinstance(values, list) or not values:
                return _invalid(["body", name], "Input should be a non-empty list", "")
            for value in values:
                if not _readable_image(value):
                    return _invalid(["body", name], "Could not load the image", "image_load_error")
        return None


def _readable_image(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value.startswith(("http://", "https://")):
        return True
    decoded = _decode_data_uri(value) if value.startswith("data:image/") else None
    if decoded is None:
        return False
    try:
        with Image.open(io.BytesIO(decoded)) as opened:
            opened.verify()
    except Exception:
        return False
    return True


def _decode_data_uri(value: str) -> bytes | None:
    header, _, payload = value.partition(",")
    if not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


def _app_id(endpoint: str) -> str:
    parts = endpoint.split("/")
    return "/".join(parts[: 3 if parts[0] in NAMESPACES else 2])


def _log(message: str) -> dict[str, Any]:
    return {
        "message": message,
        "level": "INFO",
        "source": "USER",
        "timestamp": datetime.now(UTC).isoformat(),
    }


def _detail(loc: list[str], message: str, kind: str, ctx: dict[str, Any] | None = None) -> bytes:
    error: dict[str, Any] = {
        "loc": loc,
        "msg": message,
        "type": kind,
        "url": f"https://docs.fal.ai/errors#{kind}",
    }
    if ctx:
        error["ctx"] = ctx
    return json.dumps({"detail": [error]}).encode()


def _invalid(loc: list[str], message: str, kind: str) -> web.Response:
    return web.Response(
        status=422,
        body=_detail(loc, message, kind or "value_error"),
        content_type="application/json",
    )


__all__ = ["FalFake", "FalFault", "FalRequest"]
