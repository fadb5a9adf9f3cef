"""Opaque page tokens for keyset pagination.

A token carries the position after the last row of a page and a fingerprint of the query
that produced it, so a token replayed against a different query is refused instead of
silently skipping rows. Tokens grant nothing: every query still filters by workspace.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from limner.errors import InvalidArgument, InvalidPageToken

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


def page_size(requested: int) -> int:
    if requested < 0:
        raise InvalidArgument.field("page_size", "must not be negative")
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    return min(requested, MAX_PAGE_SIZE)


def fingerprint(query: dict[str, Any]) -> str:
    encoded = json.dumps(query, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()[:16]


def encode(position: list[Any], query: dict[str, Any]) -> str:
    body = json.dumps({"v": 1, "p": position, "q": fingerprint(query)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(token: str, query: dict[str, Any], shape: tuple[type, ...]) -> list[Any] | None:
    """The position stored in ``token`` (checked against ``shape``, e.g. ``(int, str)``);
    ``None`` for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        position = body["p"]
        if body.get("v") != 1 or not isinstance(position, list):
            raise ValueError("unknown token version")
        if len(position) != len(shape) or not all(
            type(value) is kind for value, kind in zip(position, shape, strict=True)
        ):
            raise ValueError("malformed position")
        if any(isinstance(value, int) and value < 0 for value in position):
            raise ValueError("negative position")
        stored = body["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidPageToken.field("page_token", "is not a token this server issued") from exc
    if stored != fingerprint(query):
        raise InvalidPageToken.field(
            "page_token",
            "belongs to a different query: keep every other request field unchanged while "
            "paging, or start again without a token",
        )
    return position
