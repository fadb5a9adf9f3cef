"""Logging set-up: plain text for people, JSON lines for log pipelines."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """One line per record; ``trace_id=… span_id=…`` at the end when tracing is on and the
    record was made inside a sampled span."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", None)
        if trace_id is None:
            return line
        return f"{line} trace_id={trace_id} span_id={getattr(record, 'span_id', '')}"


_trace_ids_installed = False


def add_trace_ids(current: Callable[[], tuple[str, str] | None]) -> None:
    """From now on every log record made inside a span carries its ``trace_id`` and
    ``span_id`` (``current`` gives them, or None). Installed once per process, by tracing
    when it is turned on (a record factory, so it survives ``configure``)."""
    global _trace_ids_installed
    if _trace_ids_installed:
        return
    _trace_ids_installed = True
    make_record = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = make_record(*args, **kwargs)
        ids = current()
        if ids is not None:
            record.trace_id, record.span_id = ids
        return record

    logging.setLogRecordFactory(factory)


def _stderr_only_json() -> None:
    """With JSON logs stderr must carry nothing else, but some writers bypass logging:

    - gRPC's C core prints its own lines (``E1202 11:52:54.030922 16576 add_port.cc:83]
      Failed to add port ...``) unless ``GRPC_VERBOSITY=NONE``. It reads the variable
      once, when grpc is first imported, so the CLI configures logging before it imports
      grpc. A GRPC_VERBOSITY set in the environment wins: it is for debugging gRPC itself
      (and its lines are not JSON).
    - Python warnings and uncaught exceptions in threads print to stderr: they become log
      records instead.
    """
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")
    logging.captureWarnings(True)
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("limner").error(
        "uncaught exception in thread %s",
        name,
        exc_info=(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback),
    )


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    if fmt == "json":
        _stderr_only_json()
