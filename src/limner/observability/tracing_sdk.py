"""The SDK side of ``limner.observability.tracing``, imported only when tracing is on: the
tracer provider and its exporters, the maintained instrumentations wired to it, the job's
run span, and the log records' trace ids.

The exporters are the ones ``OTEL_TRACES_EXPORTER`` names, found the way the SDK's own
auto-configuration finds them (entry points of the group ``opentelemetry_traces_exporter``;
``otlp`` is OTLP over gRPC unless ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` says
``http/protobuf``). Each exports through a ``BatchSpanProcessor`` (``OTEL_BSP_*``); the
sampler comes from ``OTEL_TRACES_SAMPLER`` (default: parent-based, always on) and the
resource from ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES`` (default service name
``limner``).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from importlib import metadata
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from limner import logs
from limner.domain.jobs import Job, JobState
from limner.observability import tracing
from limner.observability.tracing import AttributeValue, SpanHandle

# Stored with jobs, so always W3C whatever OTEL_PROPAGATORS says for the wire.
_W3C = TraceContextTextMapPropagator()
# Probes call these every few seconds: a trace each would drown the real ones.
UNTRACED_SERVICES = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
)
_OTLP_BY_PROTOCOL = {"": "otlp_proto_grpc", "grpc": "otlp_proto_grpc"}
_OTLP_BY_PROTOCOL["http/protobuf"] = "otlp_proto_http"


def _version() -> str:
    try:
        return metadata.version("limner")
    except metadata.PackageNotFoundError:
        return "unknown"


def resource() -> Resource:
    """The ``OTEL_*`` resource, named ``limner`` (with its version) unless it names itself."""
    detected = Resource.create()
    defaults: dict[str, str] = {}
    if str(detected.attributes.get("service.name", "")).startswith("unknown_service"):
        defaults["service.name"] = "limner"
    if "service.version" not in detected.attributes:
        defaults["service.version"] = _version()
    return detected.merge(Resource(defaults))


def exporter(name: str) -> SpanExporter:
    """The exporter ``OTEL_TRACES_EXPORTER`` calls ``name``, configured by its own
    ``OTEL_EXPORTER_*`` variables."""
    entry = name
    if name == "otlp":
        protocol = (
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or ""
        ).strip()
        if protocol not in _OTLP_BY_PROTOCOL:
            raise RuntimeError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r} is not supported for traces; "
                "use grpc or http/protobuf"
            )
        entry = _OTLP_BY_PROTOCOL[protocol]
    found = metadata.entry_points(group="opentelemetry_traces_exporter", name=entry)
    if not found:
        installed = sorted(
            e.name for e in metadata.entry_points(group="opentelemetry_traces_exporter")
        )
        hint = " (pip install opentelemetry-exporter-otlp-proto-http)" if "http" in entry else ""
        raise RuntimeError(
            f"OTEL_TRACES_EXPORTER names {name!r}, but no {entry!r} exporter is installed"
            f"{hint}; installed: {', '.join(installed)}"
        )
    exporter_class = next(iter(found)).load()
    made: SpanExporter = exporter_class()
    return made


class Tracing:
    """Tracing, on: one tracer provider and what was instrumented with it."""

    def __init__(self, exporters: Sequence[SpanExporter], *, batch: bool, set_global: bool) -> None:
        self.provider = TracerProvider(resource=resource())
        for each in exporters:
            processor = BatchSpanProcessor(each) if batch else SimpleSpanProcessor(each)
            self.provider.add_span_processor(processor)
        if set_global:
            # For any other OpenTelemetry-aware library in the process.
            trace.set_tracer_provider(self.provider)
        self.tracer = self.provider.get_tracer("limner", _version())
        logs.add_trace_ids(tracing.log_ids)

    @classmethod
    def from_environment(cls) -> Tracing:
        return cls(
            [exporter(name) for name in tracing.exporter_names()], batch=True, set_global=True
        )

    def flush(self) -> None:
        self.provider.force_flush()

    def shutdown(self) -> None:
        self.provider.shutdown()

    # -- the maintained instrumentations ---------------------------------------------------

    def grpc_interceptor(self) -> Any:
        from opentelemetry.instrumentation.grpc import aio_server_interceptor
        from opentelemetry.instrumentation.grpc.filters import any_of, negate, service_name

        excluded = [*UNTRACED_SERVICES]
        extra = os.environ.get("OTEL_PYTHON_GRPC_EXCLUDED_SERVICES", "")
        excluded += [name.strip() for name in extra.split(",") if name.strip()]
        return aio_server_interceptor(  # type: ignore[no-untyped-call]
            tracer_provider=self.provider,
            filter_=negate(any_of(*(service_name(name) for name in excluded))),
        )

    def instrument_http(self, client: Any) -> None:
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        # Wraps the client's transport, so the httpx-aiohttp transport is traced too.
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.provider)

    def instrument_database(self, engine: Any) -> None:
        # The instrumentation's own engine tracer, on this engine only: the instrumentor's
        # process-wide patches (create_engine, a span per Engine.connect) are not wanted.
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
        from opentelemetry.instrumentation.sqlalchemy.version import __version__ as sql_version
        from opentelemetry.metrics import get_meter

        name = "opentelemetry.instrumentation.sqlalchemy"
        connections = get_meter(name, sql_version).create_up_down_counter(
            "db.client.connections.usage",
            unit="connections",
            description="The number of connections that are currently in state described by "
            "the state attribute.",
        )
        tracer = self.provider.get_tracer(name, sql_version)
        EngineTracer(tracer, engine, connections)  # type: ignore[no-untyped-call]

    # -- hand-made spans -------------------------------------------------------------------

    def log_ids(self) -> tuple[str, str] | None:
        span_context = trace.get_current_span().get_span_context()
        if not span_context.is_valid or not span_context.trace_flags.sampled:
            return None
        return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")

    def current_carrier(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        if trace.get_current_span().get_span_context().is_valid:
            _W3C.inject(carrier)
        return carrier

    def traced_job(
        self, job: Job, run: Callable[[], Coroutine[Any, Any, None]]
    ) -> Coroutine[Any, Any, None]:
        return self._run_job(job, run)

    async def _run_job(self, job: Job, run: Callable[[], Coroutine[Any, Any, None]]) -> None:
        submitted = (
            trace.get_current_span(_W3C.extract(job.trace_context)).get_span_context()
            if job.trace_context
            else trace.INVALID_SPAN_CONTEXT
        )
        current = trace.get_current_span().get_span_context()
        parent: Context | None = None  # the current context
        links: list[Link] = []
        if not current.is_valid:
            # No RPC started this run: continue the trace of the one that submitted it.
            parent = trace.set_span_in_context(trace.NonRecordingSpan(submitted), Context())
        elif submitted.is_valid and (current.trace_id, current.span_id) != (
            submitted.trace_id,
            submitted.span_id,
        ):
            links.append(Link(submitted, {"limner.link": "job submitted"}))
        attributes: dict[str, AttributeValue] = {
            "limner.job.id": job.id,
            "limner.job.kind": job.kind.value,
            "limner.job.attempt": job.attempt + 1,
            "limner.job.resumed": job.attempt > 0,
            "limner.workspace": job.workspace_id,
            "limner.provider": job.provider_id,
            "limner.model": job.model_id,
        }
        span = self.tracer.start_span(
            f"job {job.kind.value}",
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes=attributes,
            links=links,
        )
        with trace.use_span(
            span, end_on_exit=True, record_exception=False, set_status_on_exception=False
        ):
            try:
                await run()
            except asyncio.CancelledError:
                # Shutting down (it resumes at the next start) or taken over elsewhere.
                span.set_attribute("limner.job.state", "interrupted")
                raise
            except BaseException as error:
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
                raise
            span.set_attribute("limner.job.state", job.state.value)
            span.set_attribute("limner.job.attempt", job.attempt)
            if job.state is JobState.FAILED and job.error is not None:
                span.set_attribute("limner.error.reason", job.error.reason)
                span.set_status(Status(StatusCode.ERROR, job.error.reason))

    def span(
        self, name: str, attributes: Mapping[str, AttributeValue]
    ) -> AbstractContextManager[SpanHandle]:
        return self.tracer.start_as_current_span(name, attributes=attributes)

    def event(self, name: str) -> None:
        trace.get_current_span().add_event(name)

    def untraced(self) -> AbstractContextManager[None]:
        return suppress_instrumentation()

    @contextmanager
    def continuing(self, job: Job) -> Iterator[None]:
        if not job.trace_context:
            yield
            return
        token = otel_context.attach(_W3C.extract(job.trace_context))
        try:
            yield
        finally:
            otel_context.detach(token)
