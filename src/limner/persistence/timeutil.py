"""Times are stored as integer microseconds since the epoch (UTC)."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_us(after_s: float = 0.0) -> int:
    """Now (plus ``after_s`` seconds), in stored form."""
    return int((time.time() + after_s) * 1_000_000)


def to_us(value: datetime) -> int:
    return int(value.timestamp() * 1_000_000)


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, tz=UTC)


def opt_from_us(value: int | None) -> datetime | None:
    return None if value is None else from_us(value)


def opt_to_us(value: datetime | None) -> int | None:
    return None if value is None else to_us(value)
