"""A fake OpenAI API: Images (generations, multipart edits, partial-image streaming) and
Chat Completions (streamed SSE chunks or one JSON completion).

It is written to be subclassed: xAI and NanoGPT speak close relatives of this protocol, so
paths, the default result format, the usage block, the "filtered" answer and the way an
edit request is parsed are all hooks (``XaiFake`` and ``NanoGptFake`` override them).
``OpenAICompatibleFake`` is a self-hosted server that copies the Images API.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any, ClassVar

from aiohttp import web

from limner.testing.fakes.base import FakeProvider, Fault, RecordedRequest, _Armed


class OpenAIFake(FakeProvider):
    """``/v1/images/generations`` (JSON), ``/v1/images/edits`` (multipart ``image[]``,
    ``mask``), ``/v1/chat/completions``. Each request is recorded; ``last_fields`` is the
    parsed body of the last image request (JSON object, or form fields with file parts as
    ``{filename, content_type, data}`` dicts)."""

    name = "openai"
    generations_path: ClassVar[str] = "/v1/images/generations"
    edits_path: ClassVar[str | None] = "/v1/images/edits"
    chat_path: ClassVar[str | None] = "/v1/chat/completions"
    models_path: ClassVar[str | None] = "/v1/models"

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        image_size: tuple[int, int] = (64, 64),
        chat_reply: str = "A lighthouse on a cliff at dawn, warm light, long shadows.",
        chat_images: int = 0,
        partial_delay_s: float = 0.0,
    ) -> None:
        super().__init__(latency_s=latency_s, image_size=image_size)
        self.chat_reply = chat_reply
        # Images a chat completion returns (OpenRouter ``message.images`` style).
        self.chat_images = chat_images
        # Pause between streamed partial images (lets previews be throttled in tests).
        self.partial_delay_s = partial_delay_s
        # Answer chat requests with one JSON completion even when asked to stream (some
        # compatible servers do).
        self.ignore_stream = False
        self.models: list[dict[str, Any]] = [
            {"id": "gpt-image-1", "object": "model", "created": 0, "owned_by": "openai"},
            {"id": "dall-e-3", "object": "model", "created": 0, "owned_by": "openai"},
            {"id": "gpt-4o-mini", "object": "model", "created": 0, "owned_by": "openai"},
        ]

    def routes(self, app: web.Application) -> None:
        app.router.add_post(self.generations_path, self._images)
        if self.edits_path:
            app.router.add_post(self.edits_path, self._images)
        if self.chat_path:
            app.router.add_post(self.chat_path, self._chat)
        if self.models_path:
            app.router.add_get(self.models_path, self._models)

    # -- hooks -------------------------------------------------------------------------

    def fields(self, recorded: RecordedRequest) -> dict[str, Any]:
        """The image request's fields: JSON as sent; a form as single values, with
        repeated parts (``image[]``) as lists."""
        if recorded.form:
            return {
                name: values if name.endswith("[]") or len(values) > 1 else values[0]
                for name, values in recorded.form.items()
            }
        return recorded.json if isinstance(recorded.json, dict) else {}

    def wants_url(self, fields: dict[str, Any]) -> bool:
        """OpenAI: DALL·E answers with URLs unless asked for b64; GPT image always b64."""
        model = str(fields.get("model", "dall-e-2"))
        if model.startswith("dall-e"):
            return str(fields.get("response_format", "url")) == "url"
        return False

    def image_count(self, fields: dict[str, Any]) -> int:
        try:
            return max(1, min(10, int(fields.get("n", 1))))
        except (TypeError, ValueError):
            return 1

    def image_item(self, data: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        if self.wants_url(fields):
            return {"url": self.host(data)}
        return {"b64_json": self.b64(data)}

    def usage_block(self, fields: dict[str, Any], count: int) -> dict[str, Any] | None:
        """GPT image models report tokens; DALL·E reports nothing."""
        if str(fields.get("model", "")).startswith("dall-e"):
            return None
        return {
            "input_tokens": 50,
            "output_tokens": 100 * count,
            "total_tokens": 50 + 100 * count,
            "input_tokens_details": {"text_tokens": 10, "image_tokens": 40},
        }

    def image_response(self, items: list[dict[str, Any]], fields: dict[str, Any]) -> Any:
        body: dict[str, Any] = {"created": int(time.time()), "data": items}
        usage = self.usage_block(fields, len(items))
        if usage is not None:
            body["usage"] = usage
        return body

    def content_filtered(self, fields: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(
            {
                "error": {
                    "message": "Your request was rejected as a result of our safety system.",
                    "type": "image_generation_user_error",
                    "param": None,
                    "code": "content_policy_violation",
                }
            },
            status=400,
        )

    def text_instead(self, fields: dict[str, Any]) -> Any:
        """A 200 without image data (a revised prompt, no bytes)."""
        return self.image_response([{"revised_prompt": "I cannot draw that."}], fields)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                }
            },
            status=status,
            headers=headers,
        )

    def unsupported(self, fields: dict[str, Any]) -> str:
        """A field the real API refuses for this request (answered with 400), or ``""``."""
        if not str(fields.get("model", "dall-e-2")).startswith("dall-e"):
            for name in ("response_format", "style"):
                if name in fields:
                    return name
        elif self.streams(fields):
            return "stream"
        return ""

    def streams(self, fields: dict[str, Any]) -> bool:
        return str(fields.get("stream", "")).lower() == "true"

    def denied(self, recorded: RecordedRequest) -> web.StreamResponse | None:
        """An answer refusing the request's credentials, or ``None`` (this fake checks
        none)."""
        return None

    # -- images ------------------------------------------------------------------------

    async def _images(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        denied = self.denied(recorded)
        if denied is not None:
            return denied
        armed = self.next_fault()
        await self.delay(armed)
        fields = self.fields(recorded)
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        if armed is not None and armed.fault is Fault.CONTENT_FILTERED:
            return self.content_filtered(fields)
        if armed is not None and armed.fault is Fault.TEXT_INSTEAD_OF_IMAGE:
            return web.json_response(self.text_instead(fields))
        refused = self.unsupported(fields)
        if refused:
            return self.error(400, f"Unknown parameter: '{refused}'.")
        count = self.image_count(fields)
        if self.streams(fields):
            return await self._stream_images(request, fields, armed)
        items = [self._result(fields, armed) for _ in range(count)]
        return web.json_response(self.image_response(items, fields))

    def _result(self, fields: dict[str, Any], armed: _Armed | None) -> dict[str, Any]:
        if armed is not None and armed.fault is Fault.BROKEN_URL:
            return {"url": f"{self.base_url}/files/expired.png"}
        if armed is not None and armed.fault is Fault.OVERSIZED_IMAGE:
            return {"url": self.host(self.oversized_image())}
        return self.image_item(self.next_image(), fields)

    async def _stream_images(
        self, request: web.Request, fields: dict[str, Any], armed: _Armed | None
    ) -> web.StreamResponse:
        """GPT image streaming: ``partial_images`` partial events, then one completed
        event (``image_edit.*`` for edits)."""
        kind = "image_edit" if request.path == self.edits_path else "image_generation"
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        partials = int(fields.get("partial_images", 0) or 0)
        common = {
            "created_at": int(time.time()),
            "size": str(fields.get("size", "1024x1024")),
            "quality": "low",
            "background": "opaque",
            "output_format": "png",
        }
        for index in range(partials):
            event = {
                "type": f"{kind}.partial_image",
                "b64_json": self.b64(self.next_image()),
                "partial_image_index": index,
                **common,
            }
            await self._sse(response, f"{kind}.partial_image", event)
            if self.partial_delay_s:
                await asyncio.sleep(self.partial_delay_s)
        completed = {
            "type": f"{kind}.completed",
            "b64_json": self.b64(self.next_image()),
            "usage": self.usage_block(fields, 1),
            **common,
        }
        await self._sse(response, f"{kind}.completed", completed)
        await response.write_eof()
        return response

    @staticmethod
    async def _sse(response: web.StreamResponse, event: str, data: Any) -> None:
        payload = data if isinstance(data, str) else json.dumps(data)
        await response.write(f"event: {event}\ndata: {payload}\n\n".encode())

    # -- chat completions --------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        armed = self.next_fault()
        await self.delay(armed)
        body = recorded.json if isinstance(recorded.json, dict) else {}
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        # A streamed answer breaks inside the stream instead (see below).
        malformed_stream = bool(body.get("stream")) and _is(armed, Fault.MALFORMED_JSON)
        if generic is not None and not malformed_stream:
            return generic
        filtered = armed is not None and armed.fault is Fault.CONTENT_FILTERED
        text = "" if filtered else self.chat_reply
        images = [] if filtered else self.chat_image_items()
        usage = {
            "prompt_tokens": 42,
            "completion_tokens": len(text.split()),
            "total_tokens": 42 + len(text.split()),
        }
        finish = "content_filter" if filtered else "stop"
        base = {
            "id": "chatcmpl-fake",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
        }
        if not body.get("stream") or self.ignore_stream:
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if images:
                message["images"] = images
            return web.json_response(
                {
                    **base,
                    "object": "chat.completion",
                    "usage": usage,
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> None:
            data = {
                **base,
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            await response.write(f"data: {json.dumps(data)}\n\n".encode())

        await chunk({"role": "assistant", "content": ""})
        if armed is not None and armed.fault is Fault.MALFORMED_JSON:
            await response.write(b'data: {"choices": [ not json\n\n')
            await response.write_eof()
            return response
        words = text.split(" ")
        for index, word in enumerate(words):
            await chunk({"content": word if index == 0 else " " + word})
        if images:
            await chunk({"images": images})
        await chunk({}, finish)
        if (body.get("stream_options") or {}).get("include_usage"):
            data = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
            await response.write(f"data: {json.dumps(data)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    def chat_image_items(self) -> list[Any]:
        return [
            {"type": "image_url", "image_url": {"url": self.data_url(self.next_image())}}
            for _ in range(self.chat_images)
        ]

    # -- models ------------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        generic = self.generic_fault_response(self.next_fault())
        if generic is not None:
            return generic
        return web.json_response({"object": "list", "data": self.models})


class OpenAICompatibleFake(OpenAIFake):
    """A self-hosted server that copies the OpenAI Images API under ``/v1`` (vLLM-Omni,
    LocalAI, a NIM). Unlike OpenAI it refuses (HTTP 400, ``Unknown parameter``) any body
    field it was not built to ``accept``, as vLLM-Omni and Dynamo do; takes edit images as
    ``image_part`` parts; answers in ``b64_json`` unless asked for ``url`` (or built with
    ``default_format="url"``, as LocalAI answers); reports no usage; takes ``stream`` and
    streams partial images only when built with ``streaming=True``; and, built with
    ``auth=(header, value)``, answers image requests without that exact header with 401.
    Faults are armed as on ``OpenAIFake``."""

    name = "openai-compatible"

    def __init__(
        self,
        *,
        accepts: Iterable[str] = ("n", "size", "response_format"),
        default_format: str = "b64_json",
        image_part: str = "image",
        streaming: bool = False,
        auth: tuple[str, str] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.accepts = frozenset(accepts)
        self.default_format = default_format
        self.image_part = image_part
        self.streaming = streaming
        self.auth = auth

    def denied(self, recorded: RecordedRequest) -> web.StreamResponse | None:
        if self.auth is None:
            return None
        header, value = self.auth
        if recorded.headers.get(header.lower()) != value:
            return self.error(401, "invalid api key")
        return None

    def wants_url(self, fields: dict[str, Any]) -> bool:
        return str(fields.get("response_format", self.default_format)) == "url"

    def usage_block(self, fields: dict[str, Any], count: int) -> dict[str, Any] | None:
        return None

    def unsupported(self, fields: dict[str, Any]) -> str:
        known = {"model", "prompt", "mask", self.image_part, *self.accepts}
        if self.streaming:
            known |= {"stream", "partial_images"}
        return next((name for name in fields if name not in known), "")


def _is(armed: _Armed | None, fault: Fault) -> bool:
    return armed is not None and armed.fault is fault


__all__ = ["OpenAICompatibleFake", "OpenAIFake"]
