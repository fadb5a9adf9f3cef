"""Times are stored as integer microseconds since the epoch (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def to_us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def opt_to_us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)
