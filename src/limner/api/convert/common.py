"""Helpers shared by the per-proto-file converters: enum tables, well-known types, masks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from limner.errors import InvalidArgument

V = TypeVar("V")


def enum_from_pb(table: Mapping[Any, V], value: int, field: str, *, required: bool = True) -> V:
    """Looks up an enum value, refusing UNSPECIFIED (when required) and unknown numbers."""
    if value in table:
        return table[value]
    if value == 0 and required:
        raise InvalidArgument.field(field, "is required")
    raise InvalidArgument.field(field, f"has an unknown value {value}")


def timestamp_to_pb(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def duration_to_pb(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    value = duration_pb2.Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def update_mask_from_pb(mask: field_mask_pb2.FieldMask, default: set[str], prefix: str) -> set[str]:
    """The mask's paths without ``prefix``; an empty mask means every field in ``default``."""
    cleaned = {path.removeprefix(prefix) for path in mask.paths}
    return cleaned or set(default)
