"""Server interceptors: request id + access log (outermost), API-key auth, and error
mapping (innermost, so every error leaves through it).

The aio ``intercept_service`` only sees the method name, so each interceptor rebuilds the
method handler around the real behaviour. Streaming behaviours are iterated here, so errors
raised mid-stream are mapped too (a bare ``await`` would miss them).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from limner.api.context import request_id_var, workspace_var
from limner.api.status import abort
from limner.errors import InternalError, LimnerError, Unauthenticated
from limner.observability.metrics import NO_METRICS, MetricsHooks
from limner.settings import ApiKey

log = logging.getLogger("limner.api")
access_log = logging.getLogger("limner.access")

Context = Any  # grpc.aio.ServicerContext; grpcio ships no type information
Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler | None]]
Unary = Callable[[Any, Context], Awaitable[Any]]
Streaming = Callable[[Any, Context], AsyncIterator[Any]]

LIMNER_PREFIX = "/limner.v1."


def _metadata(details: grpc.HandlerCallDetails) -> dict[str, str]:
    return {
        key: value for key, value in (details.invocation_metadata or ()) if isinstance(value, str)
    }


class _Wrapping(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Base: wraps unary-unary and unary-stream behaviours of limner.v1 methods."""

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        handler = await continuation(handler_call_details)
        method: str = handler_call_details.method
        if handler is None or not method.startswith(LIMNER_PREFIX):
            return handler
        metadata = _metadata(handler_call_details)
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(
                self.wrap_unary(handler.unary_unary, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(
                self.wrap_stream(handler.unary_stream, method, metadata),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def wrap_unary(self, behaviour: Unary, method: str, metadata: dict[str, str]) -> Unary:
        raise NotImplementedError

    def wrap_stream(self, behaviour: Streaming, method: str, metadata: dict[str, str]) -> Streaming:
        raise NotImplementedError


class AccessLogInterceptor(_Wrapping):
    """Gives every call a request id (the client's ``x-request-id`` or a new one), returns
    it in the trailers, and logs one structured line per call (and reports it to metrics)."""

    def __init__(self, metrics: MetricsHooks = NO_METRICS) -> None:
        self.metrics = metrics

    def _start(self, metadata: dict[str, str]) -> tuple[str, float]:
        request_id = metadata.get("x-request-id") or uuid.uuid4().hex
        request_id_var.set(request_id)
        return request_id, time.perf_counter()

    def _finish(self, method: str, context: Context, request_id: str, started: float) -> None:
        code = context.code()
        name = (
            code.name
            if isinstance(code, grpc.StatusCode)
            else "OK"
            if code in (None, 0)
            else str(code)
        )
        access_log.info(
            "rpc %s %s %.1fms",
            method,
            name,
            (time.perf_counter() - started) * 1000,
            extra={
                "rpc_method": method,
                "rpc_code": name,
                "request_id": request_id,
                "workspace": workspace_var.get(),
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
        self.metrics.rpc_finished(method, name, started)

    def wrap_unary(self, behaviour: Unary, method: str, metadata: dict[str, str]) -> Unary:
        async def logged(request: Any, context: Context) -> Any:
            request_id, started = self._start(metadata)
            context.set_trailing_metadata((("x-request-id", request_id),))
            try:
                return await behaviour(request, context)
            finally:
                self._finish(method, context, request_id, started)

        return logged

    def wrap_stream(self, behaviour: Streaming, method: str, metadata: dict[str, str]) -> Streaming:
        async def logged(request: Any, context: Context) -> AsyncIterator[Any]:
            request_id, started = self._start(metadata)
            context.set_trailing_metadata((("x-request-id", request_id),))
            try:
                async for response in behaviour(request, context):
                    yield response
            finally:
                self._finish(method, context, request_id, started)

        return logged


class AuthInterceptor(_Wrapping):
    """Maps an API key (``authorization: Bearer <key>`` or ``x-api-key``) to a workspace.
    Disabled when no keys are configured: every call then acts in ``default``."""

    def __init__(self, api_keys: list[ApiKey]) -> None:
        self._keys = [(key.key.get_secret_value().encode(), key.workspace) for key in api_keys]

    def _workspace(self, metadata: dict[str, str]) -> str | None:
        presented = metadata.get("x-api-key", "")
        authorization = metadata.get("authorization", "")
        if not presented and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        if not presented:
            return None
        found = None
        for key, workspace in self._keys:
            # Compare against every key in constant time so timing reveals nothing.
            if hmac.compare_digest(key, presented.encode()):
                found = workspace
        return found

    async def _check(self, metadata: dict[str, str], context: Context) -> None:
        if not self._keys:
            return
        workspace = self._workspace(metadata)
        if workspace is None:
            await abort(
                context,
                Unauthenticated(
                    "a valid API key is required: send it as `authorization: Bearer <key>` "
                    "or `x-api-key: <key>` metadata"
                ),
            )
        else:
            workspace_var.set(workspace)

    def wrap_unary(self, behaviour: Unary, method: str, metadata: dict[str, str]) -> Unary:
        async def authed(request: Any, context: Context) -> Any:
            await self._check(metadata, context)
            return await behaviour(request, context)

        return authed

    def wrap_stream(self, behaviour: Streaming, method: str, metadata: dict[str, str]) -> Streaming:
        async def authed(request: Any, context: Context) -> AsyncIterator[Any]:
            await self._check(metadata, context)
            async for response in behaviour(request, context):
                yield response

        return authed


class ErrorMappingInterceptor(_Wrapping):
    """Domain errors become rich statuses; anything unexpected becomes a plain INTERNAL
    (logged with its traceback here, never sent to the client)."""

    async def _map(self, error: BaseException, method: str, context: Context) -> None:
        if isinstance(error, LimnerError):
            await abort(context, error)
        log.exception("unexpected error in %s", method, exc_info=error)
        await abort(
            context,
            InternalError(
                f"internal error (request id {request_id_var.get() or 'unknown'}); "
                "the server log has the details"
            ),
        )

    def wrap_unary(self, behaviour: Unary, method: str, metadata: dict[str, str]) -> Unary:
        async def mapped(request: Any, context: Context) -> Any:
            try:
                return await behaviour(request, context)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as error:
                await self._map(error, method, context)

        return mapped

    def wrap_stream(self, behaviour: Streaming, method: str, metadata: dict[str, str]) -> Streaming:
        async def mapped(request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for response in behaviour(request, context):
                    yield response
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as error:
                await self._map(error, method, context)

        return mapped
