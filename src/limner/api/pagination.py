"""Paging over lists the server holds in memory (models, providers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from limner import paging as pagination

T = TypeVar("T")


def page(
    items: Sequence[T], *, page_size: int, page_token: str, query: dict[str, Any]
) -> tuple[list[T], str]:
    size = pagination.page_size(page_size)
    position = pagination.decode(page_token, query, (int,))
    start = int(position[0]) if position else 0
    chunk = list(items[start : start + size])
    token = pagination.encode([start + size], query) if start + size < len(items) else ""
    return chunk, token
