"""A fake xAI API: OpenAI-shaped images endpoints with xAI's differences — JSON-only edits
(``image: {url}`` / ``images: [{url}]``), URL results by default, ``cost_in_usd_ticks``
usage, ``size``/``quality``/``style`` rejected, the flat ``{"code", "error"}`` error body,
and ``/v1/image-generation-models``."""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from limner.testing.fakes.openai import OpenAIFake

TICKS_PER_IMAGE = 200_000_000  # 2 US cents


class XaiFake(OpenAIFake):
    name = "xai"
    models_path: ClassVar[str | None] = "/v1/image-generation-models"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Answer with hosted URLs even when b64_json was asked for.
        self.answer_with_urls = False
        # Older docs show a ``data:`` prefix inside ``b64_json``.
        self.b64_data_prefix = False
        self.image_models: list[dict[str, Any]] = [
            {
                "id": "grok-imagine-image",
                "aliases": [],
                "input_modalities": ["text", "image"],
                "output_modalities": ["image"],
                "object": "model",
                "owned_by": "xai",
            },
            {
                "id": "grok-2-image-1212",
                "aliases": ["grok-2-image"],
                "input_modalities": ["text"],
                "output_modalities": ["image"],
                "object": "model",
                "owned_by": "xai",
            },
        ]

    def wants_url(self, fields: dict[str, Any]) -> bool:
        return self.answer_with_urls or str(fields.get("response_format", "url")) == "url"

    def image_item(self, data: bytes, fields: dict[str, Any]) -> dict[str, Any]:
        if self.wants_url(fields):
            return {"url": self.host(data), "mime_type": "image/png"}
        encoded = self.data_url(data) if self.b64_data_prefix else self.b64(data)
        return {"b64_json": encoded, "mime_type": "image/png"}

    def usage_block(self, fields: dict[str, Any], count: int) -> dict[str, Any] | None:
        return {"cost_in_usd_ticks": TICKS_PER_IMAGE * count}

    def unsupported(self, fields: dict[str, Any]) -> str:
        for name in ("size", "quality", "style", "stream"):
            if name in fields:
                return name
        if "image" in fields and "images" in fields:
            return "image"
        return ""

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        if message.startswith("Unknown parameter"):
            message = f"Argument not supported: {message.split(chr(39))[1]}"
        return web.json_response(
            {"code": "Client specified an invalid argument", "error": message},
            status=status,
            headers=headers,
        )

    def content_filtered(self, fields: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(
            {
                "code": "Client specified an invalid argument",
                "error": "Generated image rejected by content moderation.",
            },
            status=400,
        )

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        generic = self.generic_fault_response(self.next_fault())
        if generic is not None:
            return generic
        return web.json_response({"models": self.image_models})


__all__ = ["XaiFake"]
