"""Helpers for reading job event streams in tests."""

from __future__ import annotations

from collections.abc import AsyncIterable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from limner.v1 import job_pb2


async def collect(stream: AsyncIterable[Any]) -> list[job_pb2.JobEvent]:
    """Every event of a GenerateImage/EditImage/WatchJob stream, unwrapped."""
    return [response.event async for response in stream]


def kinds(events: list[job_pb2.JobEvent]) -> list[str]:
    return [str(event.WhichOneof("event")) for event in events]


def logged(events: list[job_pb2.JobEvent]) -> list[job_pb2.JobEvent]:
    """Only the logged events (no snapshots, heartbeats or queue positions)."""
    return [e for e in events if not e.transient]


def status_details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The rich details of an RPC error, by type name."""
    raw = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if raw is None:
        return {}
    return unpack(status_pb2.Status.FromString(raw))


def unpack(status: status_pb2.Status) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for detail in status.details:
        for cls in (
            error_details_pb2.ErrorInfo,
            error_details_pb2.BadRequest,
            error_details_pb2.PreconditionFailure,
            error_details_pb2.RetryInfo,
        ):
            if detail.Is(cls.DESCRIPTOR):
                message = cls()
                detail.Unpack(message)
                found[cls.__name__] = message
    return found


__all__ = ["collect", "kinds", "logged", "rpc_status", "status_details", "unpack"]
