"""Per-request values the interceptors set and the servicers read."""

from __future__ import annotations

from contextvars import ContextVar

DEFAULT_WORKSPACE = "default"

workspace_var: ContextVar[str] = ContextVar("limner_workspace", default=DEFAULT_WORKSPACE)
request_id_var: ContextVar[str] = ContextVar("limner_request_id", default="")


def current_workspace() -> str:
    return workspace_var.get()
