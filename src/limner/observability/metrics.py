"""Prometheus metrics: what the server does, served on their own HTTP port.

The rest of Limner reports through ``MetricsHooks``, one call per event (an RPC ended, a
job was submitted, started or finished, a provider answered, an event-log save became
durable, a provider reported usage). The base class records nothing: it is what every part
holds when ``LIMNER_METRICS__ADDRESS`` is unset, so metrics cost a method call when off.
``PrometheusMetrics`` records into a ``CollectorRegistry`` of its own (never the global
one: tests run several servers in one process) and serves it at ``/metrics`` from a
background thread. State that is there to be read (jobs queued and running per provider,
open watch streams) is read when scraped, not counted up and down.

Every label has a bounded set of values: gRPC methods (only the registered ``limner.v1``
ones reach the hook), status codes, job kinds and outcomes, error reasons (code-defined
``UPPER_SNAKE`` constants), provider ids (configured), HTTP status codes and model ids,
where only the builtin and configured models are named and every model a workspace
created through the API counts as ``other``. A job id, a prompt, a workspace or a cancel
reason is never a label value.

This module imports no grpc, HTTP client, database or API code (an import-linter contract
keeps it so): the job engine and the provider adapters may hold it.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from importlib import metadata
from typing import Any, Protocol, TypeVar, cast
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    make_wsgi_app,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from limner.domain.jobs import EventBody, FailedEvent, Job, Usage
from limner.startup import AddressUnavailableError, split_address

log = logging.getLogger("limner")

OTHER = "other"
MetricT = TypeVar("MetricT", Counter, Histogram)
# Error reasons are code-defined constants; anything else is not used as a label value.
_REASON = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

RPC_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
)  # fmt: skip
JOB_BUCKETS = (
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
)  # fmt: skip
QUEUE_BUCKETS = (
    0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
)  # fmt: skip
PROVIDER_BUCKETS = (
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
)  # fmt: skip
LOG_WRITE_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


class ProviderErrorLike(Protocol):
    """What ``provider_retry`` reads of the error that caused a retry (a ``LimnerError``)."""

    @property
    def metadata(self) -> Mapping[str, str]: ...


class SlotsLike(Protocol):
    """A provider's concurrency slots (``limner.jobs.slots.ProviderSlots``)."""

    @property
    def active(self) -> int: ...

    @property
    def waiting(self) -> int: ...


class MetricsHooks:
    """The calls the server makes as things happen. This base records nothing (metrics
    off); ``PrometheusMetrics`` records them. ``started`` arguments are
    ``time.perf_counter()`` readings taken when the measured thing began."""

    @property
    def address(self) -> str:
        """``host:port`` the ``/metrics`` endpoint listens on ("" when off)."""
        return ""

    def rpc_finished(self, method: str, code: str, started: float) -> None:
        """A ``/limner.v1.<Service>/<Method>`` call ended with a gRPC status code name."""

    def job_submitted(self, job: Job) -> None:
        """A new job was stored (not one an earlier request with the same id created)."""

    def job_started(self, job: Job, queued_since: float) -> None:
        """A job got its provider slot and starts running."""

    def job_finished(self, job: Job, event: EventBody, *, ran_here: bool) -> None:
        """A job's terminal event is durable. ``ran_here``: it ran in this process (so its
        run time is known), not ended here after running elsewhere or not at all."""

    def log_write(self, saved: asyncio.Future[None]) -> None:
        """An event-log save was queued; ``saved`` completes when it is durable."""

    def usage(self, job: Job, usage: Usage) -> None:
        """A provider call of a job reported what it used."""

    def provider_response(self, provider_id: str, status: int | None, started: float) -> None:
        """A provider HTTP request got its status line (``None``: a transport error)."""

    def provider_retry(self, provider_id: str, error: ProviderErrorLike) -> None:
        """A failed provider request is sent again."""

    def observe_jobs(self, slots: Mapping[str, SlotsLike], watchers: Callable[[], int]) -> None:
        """Reads queued/running jobs from each provider's slots and the number of open watch
        streams whenever metrics are collected (from the HTTP server's thread)."""

    async def start(self) -> None:
        """Starts serving ``/metrics``."""

    async def stop(self) -> None:
        """Stops serving."""


NO_METRICS = MetricsHooks()


def metrics_for(address: str, *, models: Iterable[str], providers: Iterable[str]) -> MetricsHooks:
    """The metrics a server records: none without an address, else Prometheus metrics that
    name the given (builtin and configured) models and providers in their labels."""
    if not address:
        return NO_METRICS
    return PrometheusMetrics(address, models=models, providers=providers)


def _version() -> str:
    try:
        return metadata.version("limner")
    except metadata.PackageNotFoundError:
        return "unknown"


class _JobState(Collector):
    """Gauges read at collection time: nothing to keep in step as jobs come and go."""

    def __init__(self, slots: Mapping[str, SlotsLike], watchers: Callable[[], int]) -> None:
        self._slots = dict(slots)
        self._watchers = watchers

    def describe(self) -> Iterable[Metric]:
        return list(self._families())

    def collect(self) -> Iterable[Metric]:
        return list(self._families(read=True))

    def _families(self, *, read: bool = False) -> Iterator[Metric]:
        queued = GaugeMetricFamily(
            "limner_jobs_queued",
            "Jobs waiting for a provider slot in this process, by provider.",
            labels=["provider"],
        )
        running = GaugeMetricFamily(
            "limner_jobs_running",
            "Jobs holding a provider slot (running) in this process, by provider.",
            labels=["provider"],
        )
        watching = GaugeMetricFamily(
            "limner_job_watch_streams",
            "Open job event streams (WatchJob and the streaming job RPCs) in this process.",
        )
        if read:
            # Runs on the HTTP server's thread: only integers are read from the loop's state.
            for provider, slots in self._slots.items():
                queued.add_metric([provider], slots.waiting)
                running.add_metric([provider], slots.active)
            watching.add_metric([], self._watchers())
        yield from (queued, running, watching)


class PrometheusMetrics(MetricsHooks):
    """Records into its own registry and serves it at ``http://<address>/metrics``."""

    def __init__(self, address: str, *, models: Iterable[str], providers: Iterable[str]) -> None:
        self._bind = split_address(address)  # checked when settings load
        self._models = frozenset(models)
        self._providers = frozenset(providers)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._address = ""
        # ``*_created`` series double the series count for a timestamp nobody graphs.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        Info("limner_build", "The running Limner build.", registry=registry).info(
            {"version": _version(), "python_version": platform.python_version()}
        )

        self.rpc_requests = Counter(
            "limner_rpc_requests",
            "gRPC calls handled, by service, method and status code.",
            ["service", "method", "code"],
            registry=registry,
        )
        self.rpc_duration = Histogram(
            "limner_rpc_duration_seconds",
            "Time from a gRPC call's start to its end (streams: until the last message).",
            ["service", "method"],
            buckets=RPC_BUCKETS,
            registry=registry,
        )
        self.jobs_submitted = Counter(
            "limner_jobs_submitted",
            "Jobs created, by kind, provider and model.",
            ["kind", "provider", "model"],
            registry=registry,
        )
        self.jobs_finished = Counter(
            "limner_jobs_finished",
            "Jobs ended, by kind, provider, model, outcome (succeeded, failed, cancelled) "
            "and the error reason of failed jobs.",
            ["kind", "provider", "model", "outcome", "reason"],
            registry=registry,
        )
        self.job_duration = Histogram(
            "limner_job_duration_seconds",
            "Run time of jobs that ran in this process: from their provider slot to their end.",
            ["kind", "provider", "model", "outcome"],
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.job_queue_wait = Histogram(
            "limner_job_queue_wait_seconds",
            "Time jobs waited for a provider slot.",
            ["kind", "provider"],
            buckets=QUEUE_BUCKETS,
            registry=registry,
        )
        self.log_write_duration = Histogram(
            "limner_job_log_write_seconds",
            "Time from queueing a job's events for saving to their save being durable.",
            buckets=LOG_WRITE_BUCKETS,
            registry=registry,
        )
        self.provider_requests = Histogram(
            "limner_provider_http_request_duration_seconds",
            "Provider HTTP requests (every attempt): time to the response's status line, by "
            "provider and HTTP status (error: no response).",
            ["provider", "status"],
            buckets=PROVIDER_BUCKETS,
            registry=registry,
        )
        self.provider_retries = Counter(
            "limner_provider_http_retries",
            "Provider HTTP requests sent again, by provider and the status that caused it.",
            ["provider", "status"],
            registry=registry,
        )
        self.usage_tokens = Counter(
            "limner_usage_tokens",
            "Tokens providers reported, by direction (input, output, unsplit: the part of a "
            "reported total not split into input and output).",
            ["kind", "provider", "model", "direction"],
            registry=registry,
        )
        self.usage_cost = Counter(
            "limner_usage_cost_usd",
            "Cost providers reported, in US dollars.",
            ["kind", "provider", "model"],
            registry=registry,
        )
        self.usage_calls = Counter(
            "limner_usage_provider_calls",
            "Provider calls (generations, completions) jobs made, as reported with usage.",
            ["kind", "provider", "model"],
            registry=registry,
        )
        # Label children, looked up once per label set (the hooks run on the event loop).
        self._rpc_children: dict[tuple[str, str], tuple[Counter, Histogram]] = {}
        self._children: dict[tuple[object, ...], object] = {}

    # -- bounded label values ----------------------------------------------------------

    def model(self, model_id: str) -> str:
        return model_id if model_id in self._models else OTHER

    def provider(self, provider_id: str) -> str:
        return provider_id if provider_id in self._providers else OTHER

    def _job_labels(self, job: Job) -> tuple[str, str, str]:
        return job.kind.value, self.provider(job.provider_id), self.model(job.model_id)

    def _child(self, metric: MetricT, *labels: str) -> MetricT:
        """``metric.labels(*labels)``, looked up once per label set (values are bounded, so
        the cache is too): the hooks run on the event loop, for every job."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return cast(MetricT, child)

    # -- hooks -------------------------------------------------------------------------

    @property
    def address(self) -> str:
        return self._address

    def rpc_finished(self, method: str, code: str, started: float) -> None:
        children = self._rpc_children.get((method, code))
        if children is None:
            _, service, name = method.split("/", 2)
            children = self._rpc_children[(method, code)] = (
                self.rpc_requests.labels(service, name, code),
                self.rpc_duration.labels(service, name),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)

    def job_submitted(self, job: Job) -> None:
        self._child(self.jobs_submitted, *self._job_labels(job)).inc()

    def job_started(self, job: Job, queued_since: float) -> None:
        waited = time.perf_counter() - queued_since
        labels = (job.kind.value, self.provider(job.provider_id))
        self._child(self.job_queue_wait, *labels).observe(waited)

    def job_finished(self, job: Job, event: EventBody, *, ran_here: bool) -> None:
        labels = self._job_labels(job)
        outcome = job.state.value
        reason = ""
        if isinstance(event, FailedEvent):
            reason = event.error.reason if _REASON.match(event.error.reason) else OTHER
        self._child(self.jobs_finished, *labels, outcome, reason).inc()
        if ran_here and job.start_time is not None and job.end_time is not None:
            seconds = (job.end_time - job.start_time).total_seconds()
            self._child(self.job_duration, *labels, outcome).observe(max(seconds, 0.0))

    def log_write(self, saved: asyncio.Future[None]) -> None:
        saved.add_done_callback(
            partial(_observe_save, self.log_write_duration, time.perf_counter())
        )

    def usage(self, job: Job, usage: Usage) -> None:
        labels = self._job_labels(job)
        unsplit = usage.total_tokens - usage.input_tokens - usage.output_tokens
        for direction, tokens in (
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("unsplit", unsplit),
        ):
            if tokens > 0:
                self._child(self.usage_tokens, *labels, direction).inc(tokens)
        if usage.cost_usd > 0:
            self._child(self.usage_cost, *labels).inc(usage.cost_usd)
        if usage.provider_calls > 0:
            self._child(self.usage_calls, *labels).inc(usage.provider_calls)

    def provider_response(self, provider_id: str, status: int | None, started: float) -> None:
        seconds = time.perf_counter() - started
        self._child(self.provider_requests, self.provider(provider_id), _status(status)).observe(
            seconds
        )

    def provider_retry(self, provider_id: str, error: ProviderErrorLike) -> None:
        status = error.metadata.get("providerStatus", "")
        label = _status(int(status)) if status.isdigit() else "error"
        self._child(self.provider_retries, self.provider(provider_id), label).inc()

    def observe_jobs(self, slots: Mapping[str, SlotsLike], watchers: Callable[[], int]) -> None:
        known = {provider: s for provider, s in slots.items() if provider in self._providers}
        self.registry.register(_JobState(known, watchers))

    # -- the endpoint --------------------------------------------------------------------

    async def start(self) -> None:
        host, port = self._bind
        try:
            server, thread = await asyncio.to_thread(_serve, self.registry, host, port)
        except OSError as error:
            raise AddressUnavailableError(
                f"cannot listen for metrics on {host}:{port}: {error.strerror or error}",
                "choose another with LIMNER_METRICS__ADDRESS (port 0 picks a free one)",
            ) from None
        self._server, self._thread = server, thread
        shown = f"[{host}]" if ":" in host else host
        self._address = f"{shown}:{server.server_address[1]}"
        log.info("metrics on http://%s/metrics", self._address)

    async def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            await asyncio.to_thread(_shut_down, server, thread)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # no line on stderr per scrape


def _serve(
    registry: CollectorRegistry, host: str, port: int
) -> tuple[WSGIServer, threading.Thread]:
    """``prometheus_client.start_http_server``, but its thread polls for shutdown every
    50 ms instead of 500 (a stopping server should not wait on its metrics) and has a name
    (``limner-metrics``) that per-thread CPU figures show."""
    family, _, _, _, sockaddr = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]

    class Server(ThreadingWSGIServer):
        address_family = family

    server = make_server(
        str(sockaddr[0]), port, make_wsgi_app(registry), Server, handler_class=_QuietHandler
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.05},
        name="limner-metrics",
        daemon=True,
    )
    thread.start()
    return server, thread


def _observe_save(histogram: Histogram, started: float, saved: asyncio.Future[None]) -> None:
    if not saved.cancelled() and saved.exception() is None:
        histogram.observe(time.perf_counter() - started)


def _shut_down(server: WSGIServer, thread: threading.Thread | None) -> None:
    server.shutdown()
    server.server_close()
    if thread is not None:
        thread.join(timeout=5)


def _status(status: int | None) -> str:
    if status is None:
        return "error"
    return str(status) if 100 <= status <= 599 else OTHER
