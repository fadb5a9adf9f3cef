"""Keyset pagination shared by the list queries: newest first, ties broken by id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, and_, or_


def newest_first(
    statement: Select[Any],
    *,
    created: Any,
    key: Any,
    position: list[Any] | None,
    size: int,
) -> Select[Any]:
    """Orders by (``created``, ``key``) descending, starts after ``position`` (the last
    row of the previous page, from its page token) and fetches one row more than
    ``size`` so the caller knows whether another page follows."""
    if position is not None:
        last_created, last_key = position
        statement = statement.where(
            or_(created < last_created, and_(created == last_created, key < last_key))
        )
    return statement.order_by(created.desc(), key.desc()).limit(size + 1)
