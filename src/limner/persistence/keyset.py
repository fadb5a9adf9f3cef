"""Keyset pagination shared by every list query.

A list is sorted by a few columns, all ascending or all descending, the last of which makes
the order total (an id, a hash, a position). A page token (``limner.paging``) holds the
sort values of the last row of its page and the next page starts after them, so pages stay
stable while rows are added. One row more than the page size is fetched to learn whether
another page follows, without counting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.engine import Connection, Row

from limner import paging as pagination

PageRead = Callable[[Connection], tuple[Sequence[Row[Any]], str]]


def keyset_page(
    statement: Select[Any],
    *,
    order: Sequence[ColumnElement[Any]],
    shape: tuple[type, ...],
    descending: bool,
    query: dict[str, Any],
    page_size: int,
    page_token: str,
) -> PageRead:
    """One page of ``statement`` (a SELECT already filtered to the list), as a read to run
    in a transaction: it returns the page's rows and the next page's token (``""`` after
    the last page).

    ``order`` are the sort columns and ``shape`` their Python types: a token stores the
    last row's values of ``order`` (checked against ``shape`` when read back) with a
    fingerprint of ``query``, the request fields that must not change while paging. The
    page size and the token are checked here, before any database work."""
    size = pagination.page_size(page_size)
    position = pagination.decode(page_token, query, shape)
    if position is not None:
        statement = statement.where(_after(order, position, descending=descending))
    sort = [column.desc() if descending else column for column in order]
    statement = statement.order_by(*sort).limit(size + 1)

    def read(connection: Connection) -> tuple[Sequence[Row[Any]], str]:
        rows = connection.execute(statement).all()
        if len(rows) <= size:
            return rows, ""
        rows = rows[:size]
        last = rows[-1]._mapping
        values = [kind(last[column]) for kind, column in zip(shape, order, strict=True)]
        return rows, pagination.encode(values, query)

    return read


def _after(
    order: Sequence[ColumnElement[Any]], position: list[Any], *, descending: bool
) -> ColumnElement[bool]:
    """The rows that sort after ``position``: for ``(a, b)`` descending,
    ``a < a0 OR (a = a0 AND b < b0)``."""
    branches: list[ColumnElement[bool]] = []
    for index, (column, value) in enumerate(zip(order, position, strict=True)):
        beyond = column < value if descending else column > value
        ties = [
            earlier == earlier_value
            for earlier, earlier_value in zip(order[:index], position[:index], strict=True)
        ]
        branches.append(and_(*ties, beyond) if ties else beyond)
    return or_(*branches) if len(branches) > 1 else branches[0]
