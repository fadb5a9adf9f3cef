"""HTTP plumbing every remote adapter shares: base URLs, auth headers, timeouts, retries
with backoff and jitter (honouring ``Retry-After``), SSE reading, and the mapping of vendor
failures to Limner's error tree (ARCHITECTURE §6).

Nothing here logs request or response bodies: they may hold keys or base64 images.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from httpx_sse import EventSource, ServerSentEvent

from limner.errors import (
    ContentFiltered,
    LimnerError,
    ProviderAuthFailed,
    ProviderRejected,
    ResourceExhausted,
    Unavailable,
)
from limner.observability.metrics import NO_METRICS, MetricsHooks

log = logging.getLogger(__name__)

OnRetry = Callable[[str], Awaitable[None]]
RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}
_LONG_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{80,}")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Retries for connect errors, timeouts, 5xx and 429. 4xx and content filtering are
    never retried."""

    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0

    def delay(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_delay_s)
        backoff = self.base_delay_s * 2 ** (attempt - 1)
        jittered: float = backoff * (0.5 + random.random())
        return min(self.max_delay_s, jittered)


def normalise_base_url(base_url: str, known_suffixes: tuple[str, ...] = ()) -> str:
    """Strips a trailing ``/`` and any of ``known_suffixes`` (``/v1``, ``/sdapi/v1``, ...) so
    adapters can join their documented paths without doubling them."""
    url = base_url.strip().rstrip("/")
    changed = True
    while changed:
        changed = False
        for suffix in known_suffixes:
            if suffix and url.endswith(suffix):
                url = url[: -len(suffix)].rstrip("/")
                changed = True
    return url


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def scrub(text: str, limit: int = 300) -> str:
    """A provider message safe to show and log: long base64-like runs cut, length capped."""
    text = _LONG_TOKEN.sub("<…>", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_message(response: httpx.Response) -> str:
    """The vendor's own error message from the common JSON shapes, else the raw text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return scrub(response.text or response.reason_phrase)
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code")
        elif isinstance(error, str):
            message = body.get("message") or body.get("detail") or error
        if message is None:
            message = body.get("message") or body.get("detail") or body.get("errors")
        if message is None and body.get("name"):
            message = body["name"]
    if isinstance(message, list):
        message = "; ".join(str(m) for m in message)
    return scrub(str(message if message is not None else body))


def error_code(response: httpx.Response) -> str:
    """The vendor's machine-readable error code (OpenAI ``error.code``, xAI ``code``)."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        return ""
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else body.get("code")
    if code is None and isinstance(body.get("name"), str):
        code = body["name"]  # Stability: {"name": "content_moderation", ...}
    return code if isinstance(code, str) else ""


def error_for_status(provider_id: str, response: httpx.Response) -> LimnerError:
    status = response.status_code
    message = error_message(response)
    flagged = f"{message} {error_code(response)}".lower()
    metadata = {"provider": provider_id, "providerStatus": str(status)}
    text = f"providers/{provider_id} answered HTTP {status}: {message}"
    if status in (429, 529):
        return ResourceExhausted(
            text, metadata=metadata, retry_after_s=retry_after_seconds(response) or 1.0
        )
    if status in (401, 403) and "moderation" not in flagged:
        return ProviderAuthFailed(
            f"{text} (check the API key configured for providers/{provider_id})",
            metadata=metadata,
        )
    if status == 403 or "content_policy" in flagged or "moderation" in flagged:
        return ContentFiltered(text, metadata=metadata)
    if status == 402:
        return ProviderRejected(
            f"{text} (the account is out of credits)",
            reason="PROVIDER_PAYMENT_REQUIRED",
            metadata=metadata,
        )
    if status >= 500 or status in RETRYABLE_STATUS:
        return Unavailable(
            text, metadata=metadata, retry_after_s=retry_after_seconds(response) or 1.0
        )
    return ProviderRejected(text, metadata=metadata)


def transport_error(provider_id: str, error: httpx.HTTPError) -> Unavailable:
    kind = type(error).__name__
    return Unavailable(
        f"providers/{provider_id} could not be reached ({kind})",
        metadata={"provider": provider_id, "transportError": kind},
        retry_after_s=1.0,
    )


class ProviderHttp:
    """One provider endpoint: a shared ``httpx.AsyncClient`` plus this provider's base URL,
    headers, timeout and retry policy."""

    def __init__(
        self,
        *,
        provider_id: str,
        client: httpx.AsyncClient,
        base_url: str,
        headers: dict[str, str] | None = None,
        timeout_s: float = 120.0,
        retry: RetryPolicy | None = None,
        auth: httpx.Auth | None = None,
        answer_gate: asyncio.Semaphore | None = None,
        metrics: MetricsHooks = NO_METRICS,
    ) -> None:
        self.provider_id = provider_id
        self.metrics = metrics
        self.answer_gate = answer_gate
        self.client = client
        self.base_url = base_url
        self.headers = dict(headers or {})
        self.timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self.retry = retry or RetryPolicy()
        self.auth = auth

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}/{path.lstrip('/')}"

    async def request(
        self,
        method: str,
        path: str,
        *,
        on_retry: OnRetry | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Sends with retries; returns a 2xx response or raises the mapped error."""
        async with self.stream(
            method, path, on_retry=on_retry, headers=headers, **kwargs
        ) as response:
            await response.aread()
            return response

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        path: str,
        *,
        on_retry: OnRetry | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """Opens a 2xx streaming response (retrying until the status line is good)."""
        merged = {**self.headers, **(headers or {})}
        attempt = 0
        while True:
            attempt += 1
            error: LimnerError
            request = self.client.build_request(
                method, self.url(path), headers=merged, timeout=self.timeout, **kwargs
            )
            started = time.perf_counter()
            try:
                response = await self.client.send(request, stream=True, auth=self.auth)
            except httpx.HTTPError as exc:
                self.metrics.provider_response(self.provider_id, None, started)
                error = transport_error(self.provider_id, exc)
                hinted: float | None = None
            else:
                self.metrics.provider_response(self.provider_id, response.status_code, started)
                if response.is_success:
                    try:
                        yield response
                    finally:
                        await response.aclose()
                    return
                await response.aread()
                await response.aclose()
                error = error_for_status(self.provider_id, response)
                # Only a real Retry-After header overrides the jittered backoff.
                hinted = retry_after_seconds(response)
                if response.status_code not in RETRYABLE_STATUS:
                    raise error
            if attempt > self.retry.max_retries:
                raise error
            self.metrics.provider_retry(self.provider_id, error)
            delay = self.retry.delay(attempt, hinted)
            if on_retry is not None:
                await on_retry(
                    f"{error.message}; retrying in {delay:.1f} s "
                    f"(retry {attempt} of {self.retry.max_retries})"
                )
            await asyncio.sleep(delay)

    async def json(
        self, method: str, path: str, *, on_retry: OnRetry | None = None, **kwargs: Any
    ) -> Any:
        """The parsed JSON of a 2xx answer.

        The body is read into a local and parsed from there, not kept on the response: an
        ``httpx.Response`` is in a reference cycle (``response.stream`` holds it), so its
        content lives until the next cyclic garbage collection, and 2 MB image answers
        piled up to ~1 GB. At most ``answer_gate`` answers are read and parsed at once; the
        others wait in the sockets' buffers."""
        async with (
            self.stream(method, path, on_retry=on_retry, **kwargs) as response,
            self.answer_gate or contextlib.nullcontext(),
        ):
            try:
                body = b"".join([chunk async for chunk in response.aiter_bytes()])
            except httpx.HTTPError as exc:
                raise transport_error(self.provider_id, exc) from None
            return parse_json_bytes(self.provider_id, response.status_code, body)

    async def sse(
        self, method: str, path: str, *, on_retry: OnRetry | None = None, **kwargs: Any
    ) -> AsyncIterator[ServerSentEvent]:
        """Server-sent events of a streaming endpoint, in order."""
        async with self.stream(method, path, on_retry=on_retry, **kwargs) as response:
            try:
                async for event in EventSource(response).aiter_sse():
                    yield event
            except httpx.HTTPError as exc:
                raise transport_error(self.provider_id, exc) from None


def parse_json(provider_id: str, response: httpx.Response) -> Any:
    return parse_json_bytes(provider_id, response.status_code, response.content)


def parse_json_bytes(provider_id: str, status: int, body: bytes) -> Any:
    """orjson: about twice as fast as ``json`` on a 2 MB base64 answer, from bytes."""
    try:
        return orjson.loads(body)
    except ValueError:  # orjson.JSONDecodeError is a ValueError
        raise Unavailable(
            f"providers/{provider_id} answered with malformed JSON "
            f"(HTTP {status}, {len(body)} bytes)",
            reason="PROVIDER_BAD_RESPONSE",
            metadata={"provider": provider_id},
        ) from None


def aiohttp_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx's API over aiohttp (``LIMNER_HTTP__TRANSPORT=aiohttp``), handing bodies over in
    pieces of up to 1 MiB instead of the library's 16 KiB (a 2 MB answer is then a few
    trips through httpx's stream layers instead of ~128)."""
    from httpx_aiohttp import AiohttpTransport

    class Transport(AiohttpTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await super().handle_async_request(request)
            response.stream.CHUNK_SIZE = 1 << 20  # type: ignore[union-attr]
            return response

    return Transport(limits=limits)


def sse_json(provider_id: str, event: ServerSentEvent) -> Any:
    try:
        return json.loads(event.data)
    except json.JSONDecodeError:
        raise Unavailable(
            f"providers/{provider_id} streamed malformed JSON",
            reason="PROVIDER_BAD_RESPONSE",
            metadata={"provider": provider_id},
        ) from None
