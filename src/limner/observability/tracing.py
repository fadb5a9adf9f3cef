"""OpenTelemetry traces: one trace per RPC, following its work across the job boundary.

An RPC's server span (the gRPC instrumentation) is the parent of the run of the job it
submits, which is the parent of the provider's HTTP calls (the httpx instrumentation), of
the asset store's ``asset.store`` spans and of the database statements (the SQLAlchemy
instrumentation) made on its behalf. The job carries its trace context: ``Job.trace_context``
holds the submitting span's W3C ``traceparent`` (``current_carrier``), stored with the job,
so a run resumed after a restart or claimed by another process continues the same trace.

**The switch.** Tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``,
``console``, ... anything but ``none``) and ``OTEL_SDK_DISABLED`` is not ``true``; every
other setting is a standard ``OTEL_*`` variable (endpoint, protocol, sampler, resource,
batching), read by the SDK. Off, nothing of OpenTelemetry is imported: every function here
returns at once (a shared no-op object, or its argument unchanged), so the cost when off is
a function call where a span would start.

**Layering.** The job engine and the use cases call only the thin functions of this module.
The SDK, the exporters and the maintained instrumentations live in ``tracing_sdk``, which
is imported only when tracing is turned on. Span attributes never hold a prompt, a key or
image bytes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Coroutine, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from limner.domain.jobs import Job
    from limner.observability.tracing_sdk import Tracing

AttributeValue = str | bool | int | float


class SpanHandle(Protocol):
    """What code outside this package may do with a span it started."""

    def set_attribute(self, key: str, value: AttributeValue) -> None: ...

    def add_event(self, name: str) -> None: ...


class _NoSpan:
    """The span of every ``span()`` while tracing is off: records nothing."""

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        return None

    def add_event(self, name: str) -> None:
        return None

    def __enter__(self) -> SpanHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


_NO_SPAN = _NoSpan()
_NOTHING: AbstractContextManager[None] = contextlib.nullcontext()
_active: Tracing | None = None


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The exporters ``OTEL_TRACES_EXPORTER`` names (``none`` left out); none when
    ``OTEL_SDK_DISABLED`` is ``true``. Tracing is on when this is not empty."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = (name.strip() for name in env.get("OTEL_TRACES_EXPORTER", "").split(","))
    return [name for name in names if name and name.lower() != "none"]


def start() -> bool:
    """Turns tracing on from the ``OTEL_*`` environment, once per process (the composition
    root calls this at every start; later calls change nothing). Returns whether it is on."""
    global _active
    if _active is None and exporter_names():
        from limner.observability.tracing_sdk import Tracing

        _active = Tracing.from_environment()
    return _active is not None


def setup(exporter: Any, *, batch: bool = True) -> None:
    """Turns tracing on with ``exporter`` (an SDK ``SpanExporter``) instead of the ones the
    environment names: for tests (an in-memory exporter, ``batch=False`` to export each
    span as it ends) and the benchmark. The sampler and resource still come from ``OTEL_*``.
    The global tracer provider is left alone, so ``shutdown`` can turn tracing off again."""
    global _active
    from limner.observability.tracing_sdk import Tracing

    if _active is not None:
        _active.shutdown()
    _active = Tracing([exporter], batch=batch, set_global=False)


def shutdown() -> None:
    """Exports what is pending and turns tracing off (servers started afterwards are not
    instrumented)."""
    global _active
    active, _active = _active, None
    if active is not None:
        active.shutdown()


def flush() -> None:
    """Exports the spans that have ended (the composition root calls this when it stops)."""
    if _active is not None:
        _active.flush()


def enabled() -> bool:
    return _active is not None


# -- what the composition root instruments --------------------------------------------------


def grpc_interceptors() -> list[Any]:
    """Server interceptors to put first (outermost): the gRPC instrumentation's, which
    continues a caller's ``traceparent`` and leaves out health checks and reflection."""
    return [] if _active is None else [_active.grpc_interceptor()]


def instrument_http(client: Any) -> None:
    """Traces every request of this ``httpx.AsyncClient`` (whatever its transport)."""
    if _active is not None:
        _active.instrument_http(client)


def instrument_database(engine: Any) -> None:
    """Traces every statement run on this SQLAlchemy ``Engine`` (the sync engine behind an
    async one)."""
    if _active is not None:
        _active.instrument_database(engine)


# -- what the job engine and the use cases call ----------------------------------------------


def current_carrier() -> dict[str, str]:
    """The current span's W3C trace context (``traceparent``, maybe ``tracestate``), to be
    stored with a job; empty when tracing is off or no span is current."""
    return {} if _active is None else _active.current_carrier()


def traced_job(job: Job, run: Callable[[], Coroutine[Any, Any, None]]) -> Coroutine[Any, Any, None]:
    """``run()`` (one run of ``job``) inside the job's run span; just ``run()`` when off.

    The run span's parent is the span current where the run starts when there is one: the
    RPC that submitted the job, or the one that resumed it (``ApproveScene``), which then
    also links to the submitting span. A run that no RPC started (after a restart, or
    claimed from a process that went away) continues the trace of the submitting RPC."""
    return run() if _active is None else _active.traced_job(job, run)


def span(name: str, attributes: Mapping[str, AttributeValue]) -> AbstractContextManager[SpanHandle]:
    """A hand-made child span of the current one (the asset store's)."""
    return _NO_SPAN if _active is None else _active.span(name, attributes)


def event(name: str) -> None:
    """An event on the current span (a job's run span: "provider slot acquired")."""
    if _active is not None:
        _active.event(name)


def untraced() -> AbstractContextManager[None]:
    """Instrumentations record nothing inside (background polling, such as lease renewal,
    would otherwise make a trace of its own every few seconds)."""
    return _NOTHING if _active is None else _active.untraced()


def log_ids() -> tuple[str, str] | None:
    """The current (sampled) span's trace and span ids, for log records."""
    return None if _active is None else _active.log_ids()


def continuing(job: Job) -> AbstractContextManager[None]:
    """Makes the job's stored trace context current: what is done for the job outside an
    RPC (taking it over after a restart) joins the trace of the RPC that submitted it."""
    return _NOTHING if _active is None else _active.continuing(job)
