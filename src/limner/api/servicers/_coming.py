"""Servicer methods for RPCs a later release implements: each answers UNIMPLEMENTED with a
message naming the missing feature (never a bare "Method not implemented!")."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from limner.errors import Unimplemented


def coming_unary(method: str, feature: str) -> Callable[[Any, Any, Any], Awaitable[Any]]:
    async def handler(self: Any, request: Any, context: Any) -> Any:
        raise Unimplemented.feature(method, feature)

    handler.__name__ = method
    return handler


def coming_stream(method: str, feature: str) -> Callable[[Any, Any, Any], AsyncIterator[Any]]:
    async def handler(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
        raise Unimplemented.feature(method, feature)
        yield  # pragma: no cover  (makes this an async generator)

    handler.__name__ = method
    return handler
