"""A fake NanoGPT API: ``/v1/images/generations`` with NanoGPT's own input-image fields
(``imageDataUrl``/``imageDataUrls``/``maskDataUrl``, data URLs only), ``b64_json`` results by
default, ``cost`` in the response, the ``{"error": <status>, "message"}`` error body, and
chat completions under ``/api/v1``."""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from limner.testing.fakes.openai import OpenAIFake

COST_PER_IMAGE = 0.02


class NanoGptFake(OpenAIFake):
    name = "nanogpt"
    edits_path: ClassVar[str | None] = None
    chat_path: ClassVar[str | None] = "/api/v1/chat/completions"
    models_path: ClassVar[str | None] = None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.balance = 10.0

    def wants_url(self, fields: dict[str, Any]) -> bool:
        return str(fields.get("response_format", "b64_json")) == "url"

    def usage_block(self, fields: dict[str, Any], count: int) -> dict[str, Any] | None:
        return None

    def image_response(self, items: list[dict[str, Any]], fields: dict[str, Any]) -> Any:
        body = super().image_response(items, fields)
        cost = COST_PER_IMAGE * len(items)
        self.balance -= cost
        return {**body, "cost": cost, "paymentSource": "USD", "remainingBalance": self.balance}

    def unsupported(self, fields: dict[str, Any]) -> str:
        if "imageDataUrl" in fields and "imageDataUrls" in fields:
            return "imageDataUrls"
        urls = [fields.get("imageDataUrl"), *(fields.get("imageDataUrls") or [])]
        urls.append(fields.get("maskDataUrl"))
        for url in urls:
            if url is not None and not str(url).startswith("data:image/"):
                return "imageDataUrl"  # remote URLs are not accepted
        return "stream" if "stream" in fields else ""

    def error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return web.json_response(
            {"error": status, "message": message}, status=status, headers=headers
        )

    def content_filtered(self, fields: dict[str, Any]) -> web.StreamResponse:
        return self.error(400, "Prompt rejected by content moderation")


__all__ = ["NanoGptFake"]
