"""A fake Gemini API (generativelanguage ``v1beta``): ``models/{model}:generateContent``,
``models/{model}:streamGenerateContent`` (SSE with ``alt=sse``, else a JSON array) and
``GET models`` (paged with ``pageSize`` / ``nextPageToken``).

Answers are ``GenerateContentResponse`` objects: a ``thought: true`` part first (callers
must skip it), a text part, then an ``inlineData`` PNG when ``responseModalities`` asks for
images; ``usageMetadata`` with token counts. Errors use the ``google.rpc.Status`` shape
``{"error": {"code", "message", "status"}}``. A key sent as ``?key=`` is recorded (tests
assert it never is); with ``api_key`` set, a wrong ``x-goog-api-key`` gets Gemini's
400 "API key not valid". Faults:

- TEXT_INSTEAD_OF_IMAGE: a text-only candidate with ``finishReason`` ``no_image_reason``
  (``STOP`` by default; ``NO_IMAGE`` is Gemini's own).
- CONTENT_FILTERED: a candidate with ``finishReason: IMAGE_SAFETY`` and no content
  (``filter_style="finish_reason"``), or no candidates and
  ``promptFeedback.blockReason: PROHIBITED_CONTENT`` (``filter_style="prompt_feedback"``).
- OVERSIZED_IMAGE: inline data of ``oversized_bytes`` bytes.
- BROKEN_URL: does not exist here (Gemini returns images inline); arming it is an error.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from limner.testing.fakes.base import FakeProvider, Fault, _Armed

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}

DEFAULT_MODELS = [
    {
        "name": "models/gemini-2.5-flash",
        "displayName": "Gemini 2.5 Flash",
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent"],
    },
    {
        "name": "models/gemini-2.5-flash-image",
        "displayName": "Nano Banana",
        "supportedGenerationMethods": ["generateContent", "countTokens"],
    },
    {
        "name": "models/imagen-4.0-generate-001",
        "displayName": "Imagen 4",
        "supportedGenerationMethods": ["predict"],
    },
    {
        "name": "models/text-embedding-004",
        "displayName": "Text Embedding 004",
        "supportedGenerationMethods": ["embedContent"],
    },
]


class GeminiFake(FakeProvider):
    name = "gemini"

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        image_size: tuple[int, int] = (64, 64),
        api_key: str = "",
        filter_style: str = "finish_reason",
        no_image_reason: str = "STOP",
        chat_reply: str = "A windswept moor under low cloud, a single stone cottage.",
    ) -> None:
        super().__init__(latency_s=latency_s, image_size=image_size)
        self.api_key = api_key
        self.filter_style = filter_style
        self.no_image_reason = no_image_reason
        self.chat_reply = chat_reply
        self.models = [dict(m) for m in DEFAULT_MODELS]
        self.oversized_bytes = 64 * 1024 * 1024
        # The listing's largest page, whatever ``pageSize`` asks for (the real cap is 1000).
        self.max_page_size = 1000

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1beta/models/{target}", self._model_call)
        app.router.add_get("/v1beta/models", self._list)

    def arm(
        self, fault: Fault, *, times: int = 1, delay_s: float = 0.0, retry_after_s: float = 1.0
    ) -> None:
        if fault is Fault.BROKEN_URL:
            raise ValueError("Gemini returns images inline; it has no result URL to break")
        super().arm(fault, times=times, delay_s=delay_s, retry_after_s=retry_after_s)

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {
                "error": {
                    "code": status,
                    "message": message,
                    "status": STATUS_NAMES.get(status, "UNKNOWN"),
                }
            },
            status=status,
            headers=headers,
        )

    def _key_error(self, request: web.Request) -> web.Response | None:
        if self.api_key and request.headers.get("x-goog-api-key") != self.api_key:
            return self.error(400, "API key not valid. Please pass a valid API key.")
        return None

    # -- listing -----------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if (refused := self._key_error(request)) is not None:
            return refused
        size = min(int(request.query.get("pageSize", "50")), self.max_page_size)
        start = int(request.query.get("pageToken") or "0")
        body: dict[str, Any] = {"models": self.models[start : start + size]}
        if start + size < len(self.models):
            body["nextPageToken"] = str(start + size)
        return web.json_response(body)

    # -- generateContent / streamGenerateContent ---------------------------------------

    async def _model_call(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        model, _, method = request.match_info["target"].partition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return self.error(404, f"Method {method!r} not found")
        armed = self.next_fault()
        await self.delay(armed)
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        if (refused := self._key_error(request)) is not None:
            return refused
        if not any(m["name"] == f"models/{model}" for m in self.models):
            return self.error(404, f"models/{model} is not found for API version v1beta")
        body = recorded.json
        if not isinstance(body, dict) or not isinstance(body.get("contents"), list):
            return self.error(400, "* GenerateContentRequest.contents: contents is not specified")
        config = body.get("generationConfig") or {}
        # Image models draw unless told otherwise; responseModalities is optional for them.
        modalities = config.get("responseModalities")
        wants_image = "IMAGE" in modalities if modalities else "image" in model
        chunks = self._answer(model, wants_image, armed)
        if method == "generateContent":
            return web.json_response(_merge(chunks))
        if request.query.get("alt") != "sse":
            return web.json_response(chunks)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks:
            await response.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())
        await response.write_eof()
        return response

    def _answer(self, model: str, wants_image: bool, armed: _Armed | None) -> list[dict[str, Any]]:
        """The answer as stream chunks (``generateContent`` merges them into one)."""
        fault = armed.fault if armed is not None else None
        if fault is Fault.CONTENT_FILTERED and self.filter_style == "prompt_feedback":
            return [
                {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "modelVersion": model}
            ]
        if fault is Fault.CONTENT_FILTERED:
            reason = "IMAGE_SAFETY" if wants_image else "SAFETY"
            return [{"candidates": [{"finishReason": reason, "index": 0}], "modelVersion": model}]
        parts: list[dict[str, Any]] = [{"text": "Planning the composition.", "thought": True}]
        reason = "STOP"
        if wants_image and fault is not Fault.TEXT_INSTEAD_OF_IMAGE:
            data = (
                b"\x89PNG" + b"\0" * self.oversized_bytes
                if fault is Fault.OVERSIZED_IMAGE
                else self.next_image()
            )
            parts += [
                {"text": "Here is your image."},
                {"inlineData": {"mimeType": "image/png", "data": self.b64(data)}},
            ]
        elif wants_image:
            parts.append({"text": "I can only describe it: a cat on a mat."})
            reason = self.no_image_reason
        else:
            words = self.chat_reply.split(" ")
            parts += [{"text": w if i == 0 else " " + w} for i, w in enumerate(words)]
        chunks: list[dict[str, Any]] = [
            {"candidates": [{"content": {"role": "model", "parts": [part]}, "index": 0}]}
            for part in parts
        ]
        image_tokens = 1290 if any("inlineData" in p for p in parts) else 0
        chunks[-1]["candidates"][0]["finishReason"] = reason
        chunks[-1]["usageMetadata"] = {
            "promptTokenCount": 11,
            "candidatesTokenCount": image_tokens + 7,
            "thoughtsTokenCount": 5,
            "totalTokenCount": 11 + image_tokens + 7 + 5,
        }
        for chunk in chunks:
            chunk["modelVersion"] = model
        return chunks


def _merge(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One ``GenerateContentResponse`` from stream chunks (all parts in one candidate)."""
    merged: dict[str, Any] = {k: v for c in chunks for k, v in c.items() if k != "candidates"}
    candidates = [c["candidates"][0] for c in chunks if c.get("candidates")]
    if candidates:
        parts = [p for c in candidates for p in (c.get("content") or {}).get("parts", [])]
        candidate: dict[str, Any] = {"index": 0}
        if parts:
            candidate["content"] = {"role": "model", "parts": parts}
        reason = next((c["finishReason"] for c in candidates if c.get("finishReason")), None)
        if reason:
            candidate["finishReason"] = reason
        merged["candidates"] = [candidate]
    return merged


__all__ = ["DEFAULT_MODELS", "GeminiFake"]
