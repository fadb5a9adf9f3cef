"""The shared machinery of the provider fakes."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiohttp import web
from PIL import Image


def fake_png(width: int = 64, height: int = 64, seed: int = 0) -> bytes:
    """A real PNG whose colour depends on ``seed`` (so results differ per request)."""
    colour = ((seed * 47) % 256, (seed * 91 + 80) % 256, (seed * 13 + 160) % 256)
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class Fault(StrEnum):
    """What the next request should suffer instead of a normal answer."""

    LATENCY = "latency"  # answer normally after ``Fault`` delay
    RATE_LIMITED = "rate_limited"  # 429 with Retry-After
    SERVER_ERROR = "server_error"  # 500
    UNAVAILABLE = "unavailable"  # 503
    MALFORMED_JSON = "malformed_json"  # 200 with a body that is not JSON
    TEXT_INSTEAD_OF_IMAGE = "text_instead_of_image"  # a valid answer without an image
    CONTENT_FILTERED = "content_filtered"  # the provider's own "filtered" answer
    BROKEN_URL = "broken_url"  # a hosted result URL that 404s
    CONNECTION_RESET = "connection_reset"  # the connection drops before any answer
    OVERSIZED_IMAGE = "oversized_image"  # a result far larger than Limner accepts
    BAD_REQUEST = "bad_request"  # 400 with the vendor's error shape
    UNAUTHORIZED = "unauthorized"  # 401


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any = None
    form: dict[str, list[Any]] = field(default_factory=dict)


@dataclass
class _Armed:
    fault: Fault
    delay_s: float = 0.0
    retry_after_s: float = 1.0


class FakeProvider:
    """Base class: subclasses add routes in ``routes()`` and answer with ``image_for()``.

    ``arm(fault, times=n)`` makes the next ``n`` requests to answer-producing routes fail in
    that way; ``latency_s`` delays every answer; ``requests`` records every request.
    """

    name = "fake"

    def __init__(self, *, latency_s: float = 0.0, image_size: tuple[int, int] = (64, 64)) -> None:
        self.latency_s = latency_s
        self.image_size = image_size
        self.requests: list[RecordedRequest] = []
        self._faults: deque[_Armed] = deque()
        self._files: dict[str, bytes] = {}
        self._counter = 0
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> FakeProvider:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/files/{name}", self._serve_file)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeProvider:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- faults ------------------------------------------------------------------------

    def arm(
        self, fault: Fault, *, times: int = 1, delay_s: float = 0.0, retry_after_s: float = 1.0
    ) -> None:
        for _ in range(times):
            self._faults.append(_Armed(fault, delay_s, retry_after_s))

    def next_fault(self) -> _Armed | None:
        return self._faults.popleft() if self._faults else None

    # -- helpers for subclasses ----------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        recorded = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("application/json") and body:
            try:
                recorded.json = json.loads(body)
            except json.JSONDecodeError:
                recorded.json = None
        elif content_type.startswith("multipart/form-data"):
            recorded.form = await _parse_multipart(request, body)
        self.requests.append(recorded)
        return recorded

    async def delay(self, armed: _Armed | None) -> None:
        wait = self.latency_s + (armed.delay_s if armed and armed.fault is Fault.LATENCY else 0)
        if wait:
            await asyncio.sleep(wait)

    def next_image(self, width: int | None = None, height: int | None = None) -> bytes:
        self._counter += 1
        size = (width or self.image_size[0], height or self.image_size[1])
        return fake_png(*size, seed=self._counter)

    def oversized_image(self) -> bytes:
        # 64 MiB of PNG-looking bytes: larger than any sane max_image_bytes.
        return fake_png(8, 8) + b"\0" * (64 * 1024 * 1024)

    def host(self, data: bytes, suffix: str = "png") -> str:
        """Serves ``data`` at a URL on this fake and returns the URL."""
        self._counter += 1
        name = f"img{self._counter}.{suffix}"
        self._files[name] = data
        return f"{self.base_url}/files/{name}"

    @staticmethod
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    @staticmethod
    def data_url(data: bytes, mime: str = "image/png") -> str:
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"

    def generic_fault_response(self, armed: _Armed | None) -> web.StreamResponse | None:
        """Answers for faults every provider shows the same way; ``None`` otherwise."""
        if armed is None:
            return None
        match armed.fault:
            case Fault.RATE_LIMITED:
                return self.error(
                    429, "rate limited", headers={"Retry-After": f"{armed.retry_after_s:g}"}
                )
            case Fault.SERVER_ERROR:
                return self.error(500, "internal server error")
            case Fault.UNAVAILABLE:
                return self.error(503, "service unavailable")
            case Fault.BAD_REQUEST:
                return self.error(400, "invalid request: size is not supported")
            case Fault.UNAUTHORIZED:
                return self.error(401, "invalid api key")
            case Fault.MALFORMED_JSON:
                return web.Response(
                    status=200, text='{"data": [ not json', content_type="application/json"
                )
        return None

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        """The vendor's error body; subclasses override for their own shape."""
        return web.json_response(
            {"error": {"message": message, "type": "fake_error", "code": None}},
            status=status,
            headers=headers,
        )

    async def reset_connection(self, request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise ConnectionResetError("fake reset")

    async def _serve_file(self, request: web.Request) -> web.StreamResponse:
        data = self._files.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404, text="no such file")
        return web.Response(body=data, content_type="image/png")


async def _parse_multipart(request: web.Request, body: bytes) -> dict[str, list[Any]]:
    """Form fields (str) and files (dict with filename, content_type, data), by name."""
    from email.parser import BytesParser
    from email.policy import HTTP

    header = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(header + body)
    fields: dict[str, list[Any]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        value: Any
        if filename is not None:
            value = {
                "filename": filename,
                "content_type": part.get_content_type(),
                "data": payload,
            }
        else:
            value = payload.decode()
        fields.setdefault(str(name), []).append(value)
    return fields
