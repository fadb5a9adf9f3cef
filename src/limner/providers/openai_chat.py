"""OpenAI-compatible chat completions as a writer (text + images in, text out).

``OpenAIChatWriter`` is shared by every provider that speaks ``/chat/completions``: OpenAI,
xAI, NanoGPT, OpenRouter, and (kind ``openai-compatible``, ``providers/openai_compatible.py``)
any OpenAI-compatible base URL such as a local llama.cpp / vLLM / LM Studio server.

It always streams (``stream: true``) so text deltas reach the job as they arrive. A server
that ignores ``stream`` and answers with one JSON completion is handled too. Images a chat
model returns (OpenRouter ``message.images`` / ``delta.images``, xAI ``delta.images``) are
parsed by ``chat_images``, which the OpenRouter image adapter uses as well.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from httpx_sse import EventSource

from limner.domain.images import GeneratedImage
from limner.domain.jobs import Usage
from limner.errors import ContentFiltered, LimnerError, ModelNotConfigured, Unavailable
from limner.providers.base import (
    OnDelta,
    OnRetry,
    WriterMessage,
    WriterOutput,
    WriterRequest,
)
from limner.providers.http import ProviderHttp, parse_json, scrub, sse_json, transport_error
from limner.providers.results import data_url, image_from_reference

# Extra top-level body fields a provider adds (OpenRouter ``modalities``, ...).
ExtraBody = Callable[[WriterRequest], dict[str, Any]]


def message_content(message: WriterMessage) -> str | list[dict[str, Any]]:
    """Plain text, or (with images) the text part first, then one ``image_url`` part per
    image as a data URL. Plain strings keep text-only servers (and system roles) happy."""
    content = message.content()
    if all(isinstance(part, str) for part in content):
        return "".join(part for part in content if isinstance(part, str))
    parts: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, str):
            parts.append({"type": "text", "text": part})
        else:
            parts.append(
                {"type": "image_url", "image_url": {"url": data_url(part.data, part.mime_type)}}
            )
    return parts


def chat_images(provider_id: str, items: Any) -> list[GeneratedImage]:
    """Images from ``message.images`` / ``delta.images``: OpenRouter's
    ``{"type": "image_url", "image_url": {"url": ...}}`` items or xAI's bare strings;
    data URLs become bytes, http(s) URLs are downloaded later by the feature."""
    if not isinstance(items, list):
        return []
    images = []
    for item in items:
        reference: Any = item
        if isinstance(item, dict):
            reference = item.get("image_url", item.get("url"))
            if isinstance(reference, dict):
                reference = reference.get("url")
        if isinstance(reference, str) and reference:
            images.append(image_from_reference(provider_id, reference))
    return images


def chat_usage(usage: Any) -> Usage | None:
    """OpenAI ``usage`` (prompt/completion/total tokens; OpenRouter adds ``cost`` in USD)."""
    if not isinstance(usage, dict):
        return None
    input_tokens = _int(usage.get("prompt_tokens"))
    output_tokens = _int(usage.get("completion_tokens"))
    cost = usage.get("cost")
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=_int(usage.get("total_tokens")) or input_tokens + output_tokens,
        cost_usd=float(cost) if isinstance(cost, int | float) else 0.0,
        provider_calls=1,
    )


def stream_error(provider_id: str, error: Any) -> LimnerError:
    """An ``error`` object sent inside a 200 stream (OpenRouter does this mid-stream)."""
    if isinstance(error, dict):
        code = str(error.get("code") or "")
        message = str(error.get("message") or code or "error")
    else:
        code, message = "", str(error)
    text = f"providers/{provider_id} failed mid-stream: {scrub(message)}"
    metadata = {"provider": provider_id}
    if "content_policy" in code or "content_filter" in code or "moderation" in code:
        return ContentFiltered(text, metadata=metadata)
    return Unavailable(text, metadata=metadata, retry_after_s=1.0)


class _Accumulator:
    """Collects one streamed (or whole) completion."""

    def __init__(self, provider_id: str, on_delta: OnDelta) -> None:
        self.provider_id = provider_id
        self.on_delta = on_delta
        self.text: list[str] = []
        self.images: list[GeneratedImage] = []
        self.usage: Usage | None = None
        self.finish_reason = ""
        self.seen_choice = False

    async def chunk(self, chunk: Any) -> None:
        if not isinstance(chunk, dict):
            raise _bad_response(self.provider_id, "a chunk that is not a JSON object")
        if chunk.get("error"):
            raise stream_error(self.provider_id, chunk["error"])
        usage = chat_usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            self.seen_choice = True
            # Streams carry ``delta``; a whole completion carries ``message``.
            part = choice.get("delta") or choice.get("message") or {}
            if isinstance(part, dict):
                content = part.get("content")
                if isinstance(content, str) and content:
                    self.text.append(content)
                    await self.on_delta(content)
                self.images.extend(chat_images(self.provider_id, part.get("images")))
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])

    def output(self) -> WriterOutput:
        if self.finish_reason == "content_filter":
            raise ContentFiltered(
                f"providers/{self.provider_id} stopped the answer with finish_reason "
                "content_filter",
                metadata={"provider": self.provider_id},
            )
        if not self.seen_choice:
            raise _bad_response(self.provider_id, "no choices")
        return WriterOutput(text="".join(self.text), usage=self.usage, images=tuple(self.images))


def _bad_response(provider_id: str, what: str) -> Unavailable:
    return Unavailable(
        f"providers/{provider_id} answered the chat completion with {what}",
        reason="PROVIDER_BAD_RESPONSE",
        metadata={"provider": provider_id},
    )


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class OpenAIChatWriter:
    """A ``TextWriter`` over ``POST {base}{path}`` in the OpenAI chat-completions shape.

    ``max_tokens_field``: OpenAI's own API prefers ``max_completion_tokens`` (its reasoning
    models reject ``max_tokens``); most compatible servers only know ``max_tokens``.
    ``include_usage``: sends ``stream_options: {include_usage: true}`` so the last chunk
    carries token counts; turn off for servers that reject ``stream_options``.
    ``extra_body``: fields a provider adds to every request body (merged last).
    """

    def __init__(
        self,
        http: ProviderHttp,
        provider_id: str,
        *,
        path: str = "/chat/completions",
        extra_body: ExtraBody | None = None,
        max_tokens_field: str = "max_tokens",
        include_usage: bool = True,
    ) -> None:
        self.http = http
        self.provider_id = provider_id
        self.path = path
        self.extra_body = extra_body
        self.max_tokens_field = max_tokens_field
        self.include_usage = include_usage

    def body(self, request: WriterRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": request.provider_model_id,
            "messages": [
                {"role": message.role, "content": message_content(message)}
                for message in request.messages
            ],
            "stream": True,
            self.max_tokens_field: request.max_output_tokens,
        }
        if self.include_usage:
            body["stream_options"] = {"include_usage": True}
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if self.extra_body is not None:
            body.update(self.extra_body(request))
        return body

    async def write(
        self, request: WriterRequest, on_delta: OnDelta, *, on_retry: OnRetry | None = None
    ) -> WriterOutput:
        if not self.http.base_url:
            raise ModelNotConfigured(
                f"providers/{self.provider_id} has no base_url configured",
                metadata={"provider": self.provider_id},
            )
        result = _Accumulator(self.provider_id, on_delta)
        headers = {"Accept": "text/event-stream"}
        async with self.http.stream(
            "POST", self.path, json=self.body(request), headers=headers, on_retry=on_retry
        ) as response:
            content_type = response.headers.get("content-type", "")
            if "text/event-stream" not in content_type:
                # The server ignored ``stream``: one JSON completion.
                await response.aread()
                await result.chunk(parse_json(self.provider_id, response))
                return result.output()
            try:
                async for event in EventSource(response).aiter_sse():
                    data = event.data.strip()
                    if not data or data.startswith(":"):
                        continue
                    if data == "[DONE]":
                        break
                    await result.chunk(sse_json(self.provider_id, event))
            except httpx.HTTPError as exc:
                raise transport_error(self.provider_id, exc) from None
        return result.output()


# Endpoint paths an operator may paste into a compatible server's base URL.
_ENDPOINT_SUFFIXES = ("/chat/completions", "/images/generations", "/images/edits")


def compatible_base_url(base_url: str) -> str:
    """A compatible server's base: a pasted endpoint path (``…/chat/completions``,
    ``…/images/generations``, ``…/images/edits``) stripped; a bare host gets ``/v1`` (the
    path every compatible server uses), other paths are kept as given."""
    url = base_url.strip().rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        url = url.removesuffix(suffix).rstrip("/")
    if url and not urlsplit(url).path.strip("/"):
        url += "/v1"
    return url


__all__ = [
    "ExtraBody",
    "OpenAIChatWriter",
    "chat_images",
    "chat_usage",
    "compatible_base_url",
    "message_content",
    "stream_error",
]
