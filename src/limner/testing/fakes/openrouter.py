"""A fake OpenRouter API: ``POST /api/v1/chat/completions`` (images through ``modalities``,
text, SSE streaming) and ``GET /api/v1/models`` (the listing with ``architecture``
modalities and the ``output_modalities`` filter).

Like the real service it answers 404 "No endpoints found that support the requested output
modalities" when ``modalities`` asks an image-only model for text, returns images as
``choices[].message.images[].image_url.url`` (a data URL, or a hosted URL with
``result_style="url"``), streams ``delta.content`` / ``delta.images`` chunks ending in
``data: [DONE]`` (with ``: OPENROUTER PROCESSING`` comments), and reports ``usage`` with
``cost``. Faults:

- TEXT_INSTEAD_OF_IMAGE: a message with text and no ``images``.
- CONTENT_FILTERED: 200 with ``finish_reason: content_filter`` and
  ``native_finish_reason: IMAGE_SAFETY`` (``filter_style="finish_reason"``), or the 403
  moderation error (``filter_style="moderation"``).
- BROKEN_URL / OVERSIZED_IMAGE: a hosted image URL that 404s / serves too many bytes.
- The rest as every fake does them, with OpenRouter's error body
  ``{"error": {"code", "message", "metadata"}}``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from limner.testing.fakes.base import FakeProvider, Fault

NO_ENDPOINTS = "No endpoints found that support the requested output modalities: {}"


def listed_model(model_id: str, name: str, inputs: list[str], outputs: list[str]) -> dict[str, Any]:
    """One ``Model`` of the listing, with the fields the spec requires."""
    return {
        "id": model_id,
        "canonical_slug": model_id,
        "name": name,
        "created": 1_750_000_000,
        "description": f"{name} (fake)",
        "context_length": 32768,
        "architecture": {
            "modality": f"{'+'.join(inputs)}->{'+'.join(outputs)}",
            "input_modalities": inputs,
            "output_modalities": outputs,
            "tokenizer": "Other",
            "instruct_type": None,
        },
        "pricing": {"prompt": "0.0000003", "completion": "0.0000025", "image": "0.00003"},
        "top_provider": {
            "context_length": 32768,
            "max_completion_tokens": 8192,
            "is_moderated": False,
        },
        "per_request_limits": None,
        "supported_parameters": ["max_tokens", "temperature", "seed"],
        "default_parameters": None,
        "expiration_date": None,
        "knowledge_cutoff": None,
        "supported_voices": None,
        "links": {"details": f"/api/v1/models/{model_id}/endpoints"},
    }


DEFAULT_MODELS = [
    listed_model(
        "google/gemini-2.5-flash-image", "Google: Nano Banana", ["image", "text"], ["image", "text"]
    ),
    listed_model("black-forest-labs/flux.2-pro", "FLUX.2 Pro", ["text", "image"], ["image"]),
    listed_model("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", ["text", "image", "file"], ["text"]),
    listed_model(
        "openai/gpt-4o-audio", "OpenAI: GPT-4o Audio", ["text", "audio"], ["text", "audio"]
    ),
    listed_model("openai/text-embedding-3-small", "Embedding 3 small", ["text"], ["embeddings"]),
]


class OpenRouterFake(FakeProvider):
    name = "openrouter"

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        image_size: tuple[int, int] = (64, 64),
        result_style: str = "data_url",
        filter_style: str = "finish_reason",
        chat_reply: str = "A quiet harbour at dusk, lanterns reflected in still water.",
        image_text: str = "Here is your image.",
    ) -> None:
        super().__init__(latency_s=latency_s, image_size=image_size)
        self.result_style = result_style
        self.filter_style = filter_style
        self.chat_reply = chat_reply
        self.image_text = image_text
        self.models: list[dict[str, Any]] = [dict(m) for m in DEFAULT_MODELS]
        # The listing answers 500 this many times (faults armed with ``arm`` hit chat only).
        self.listing_failures = 0
        # Page the listing (``links.next``) at this size; None lists everything at once.
        self.page_size: int | None = None
        # Images per completion.
        self.images_per_reply = 1
        # Images added to plain text replies (a chat model that also draws).
        self.images_in_text_replies = 0
        # Model ids served but left out of the listing (OpenRouter lists with a delay).
        self.unlisted: set[str] = set()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/chat/completions", self._chat)
        app.router.add_get("/api/v1/models", self._models)

    @property
    def chat_requests(self) -> list[Any]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {"error": {"code": status, "message": message, "metadata": None}},
            status=status,
            headers=headers,
        )

    # -- listing -----------------------------------------------------------------------

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if self.listing_failures > 0:
            self.listing_failures -= 1
            return self.error(500, "Internal Server Error")
        wanted = set((request.query.get("output_modalities") or "text").split(","))
        models = [
            m
            for m in self.models
            if m["id"] not in self.unlisted
            and ("all" in wanted or wanted & set(m["architecture"]["output_modalities"]))
        ]
        offset = int(request.query.get("offset", "0"))
        size = self.page_size or len(models) or 1
        page = models[offset : offset + size]
        following = None
        if offset + size < len(models):
            following = (
                f"/api/v1/models?offset={offset + size}&limit={size}"
                f"&output_modalities={','.join(sorted(wanted))}"
            )
        return web.json_response(
            {"data": page, "total_count": len(models), "links": {"next": following}}
        )

    # -- chat completions --------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        armed = self.next_fault()
        await self.delay(armed)
        if armed is not None and armed.fault is Fault.CONNECTION_RESET:
            return await self.reset_connection(request)
        generic = self.generic_fault_response(armed)
        if generic is not None:
            return generic
        body = recorded.json
        if not isinstance(body, dict) or not body.get("messages") or not body.get("model"):
            return self.error(400, "Input required: specify model and messages")
        model = next((m for m in self.models if m["id"] == body["model"]), None)
        if model is None:
            return self.error(400, f"{body['model']} is not a valid model ID")
        outputs = set(model["architecture"]["output_modalities"])
        asked = body.get("modalities") or ["text"]
        if not set(asked) <= outputs:
            return self.error(404, NO_ENDPOINTS.format(", ".join(asked)))
        fault = armed.fault if armed is not None else None
        if fault is Fault.CONTENT_FILTERED and self.filter_style == "moderation":
            return web.json_response(
                {
                    "error": {
                        "code": 403,
                        "message": f"{model['id']} requires moderation on OpenRouter. "
                        'Your input was flagged for "sexual".',
                        "metadata": {
                            "reasons": ["sexual"],
                            "flagged_input": "...",
                            "provider_name": "fake",
                            "model_slug": model["id"],
                        },
                    }
                },
                status=403,
            )
        message, finish = self._message(model, asked, fault)
        usage = {
            "prompt_tokens": 12,
            "completion_tokens": 1290 if message.get("images") else 9,
            "total_tokens": 1302 if message.get("images") else 21,
            "cost": 0.039 if message.get("images") else 0.0001,
        }
        if body.get("stream"):
            return await self._stream(request, body, message, finish, usage)
        return web.json_response(
            {
                "id": f"gen-{int(time.time() * 1000)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model["id"],
                "provider": "Fake",
                "system_fingerprint": None,
                "choices": [
                    {
                        "index": 0,
                        "logprobs": None,
                        "finish_reason": finish[0],
                        "native_finish_reason": finish[1],
                        "message": message,
                    }
                ],
                "usage": usage,
            }
        )

    def _message(
        self, model: dict[str, Any], asked: list[str], fault: Fault | None
    ) -> tuple[dict[str, Any], tuple[str, str]]:
        """The assistant message and (finish_reason, native_finish_reason)."""
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if fault is Fault.CONTENT_FILTERED:
            return message, ("content_filter", "IMAGE_SAFETY")
        if "image" not in asked or fault is Fault.TEXT_INSTEAD_OF_IMAGE:
            text = self.chat_reply if "image" not in asked else "I can't draw that, but: a cat."
            message["content"] = text
            if "image" not in asked and self.images_in_text_replies:
                message["images"] = self._images(fault, self.images_in_text_replies)
            return message, ("stop", "STOP")
        if "text" in asked:
            message["content"] = self.image_text
        message["images"] = self._images(fault, self.images_per_reply)
        return message, ("stop", "STOP")

    def _images(self, fault: Fault | None, count: int) -> list[dict[str, Any]]:
        return [
            {"type": "image_url", "image_url": {"url": self._image_reference(fault)}, "index": i}
            for i in range(count)
        ]

    def _image_reference(self, fault: Fault | None) -> str:
        if fault is Fault.BROKEN_URL:
            return f"{self.base_url}/files/missing.png"
        if fault is Fault.OVERSIZED_IMAGE:
            return self.host(self.oversized_image())
        image = self.next_image()
        return self.host(image) if self.result_style == "url" else self.data_url(image)

    async def _stream(
        self,
        request: web.Request,
        body: dict[str, Any],
        message: dict[str, Any],
        finish: tuple[str, str],
        usage: dict[str, Any],
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)

        async def send(delta: dict[str, Any], reason: tuple[str, str] | None = None) -> None:
            chunk = {
                "id": "gen-stream",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "finish_reason": reason[0] if reason else None,
                        "native_finish_reason": reason[1] if reason else None,
                    }
                ],
            }
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())

        await response.write(b": OPENROUTER PROCESSING\n\n")
        text = message.get("content") or ""
        words = text.split(" ")
        for index, word in enumerate(words if text else []):
            await send({"role": "assistant", "content": word if index == 0 else " " + word})
        if message.get("images"):
            await send({"role": "assistant", "content": "", "images": message["images"]})
        await send({"role": "assistant", "content": ""}, finish)
        final = {
            "id": "gen-stream",
            "object": "chat.completion.chunk",
            "choices": [],
            "usage": usage,
        }
        await response.write(f"data: {json.dumps(final)}\n\n".encode())
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


__all__ = ["DEFAULT_MODELS", "OpenRouterFake", "listed_model"]
