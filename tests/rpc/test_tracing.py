"""OpenTelemetry traces: one trace from the RPC through its job, the provider's HTTP call,
the asset store and the database; a job resumed after a restart joins its submitter's
trace; no prompt or key in any attribute; log lines carry the ids; and with tracing off,
nothing of OpenTelemetry is even imported."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from limner.domain.jobs import Job, JobKind, JobStage, JobState, Progress
from limner.logs import JsonFormatter, TextFormatter
from limner.observability import tracing
from limner.testing import fast_settings, running_server
from limner.testing.fakes.openai import OpenAIFake
from limner.testing.providers import GatedImageGenerator, replacing_offline
from limner.testing.streams import collect, kinds
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_service_pb2 as jpb

pytestmark = pytest.mark.timeout(60)

PROMPT = "a lighthouse keeper feeding a secret owl named Wigbert"
API_KEY = "sk-trace-test-9f8e7d6c5b4a"
RPC = "/limner.v1.ImageService/GenerateImage"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for the servers a test starts, exporting every span as it ends."""
    exporter = InMemorySpanExporter()
    tracing.setup(exporter, batch=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()


def openai_settings(data_dir: Path, base_url: str) -> Any:
    return fast_settings(
        data_dir,
        providers={
            "oa": {"kind": "openai", "base_url": base_url, "api_key": API_KEY, "max_retries": 1}
        },
        models=[
            {
                "id": "gpt-image",
                "provider": "oa",
                "provider_model_id": "gpt-image-1",
                "input_modalities": ["text"],
                "output_modalities": ["image"],
                "profile": {"supports_previews": True},
            }
        ],
    )


async def finished(
    exporter: InMemorySpanExporter, found: Callable[[list[ReadableSpan]], bool]
) -> list[ReadableSpan]:
    """The finished spans once ``found`` holds of them (spans end just after the stream)."""
    for _ in range(200):
        spans = list(exporter.get_finished_spans())
        if found(spans):
            return spans
        await asyncio.sleep(0.02)
    raise AssertionError(f"spans never matched; got {[s.name for s in spans]}")


def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def parent_of(span: ReadableSpan) -> int:
    assert span.parent is not None, f"{span.name} has no parent"
    return span.parent.span_id


def ancestors(span: ReadableSpan, spans: list[ReadableSpan]) -> list[str]:
    """The names of ``span``'s ancestors, nearest first."""
    by_id = {s.context.span_id: s for s in spans}
    names = []
    parent = span.parent
    while parent is not None and parent.span_id in by_id:
        names.append(by_id[parent.span_id].name)
        parent = by_id[parent.span_id].parent
    return names


def texts(span: ReadableSpan) -> Iterator[str]:
    """Every string a backend would get from ``span``."""
    yield span.name
    if span.status.description:
        yield span.status.description
    for source in (
        span.attributes,
        *(e.attributes for e in span.events),
        *(link.attributes for link in span.links),
    ):
        for key, value in (source or {}).items():
            yield f"{key}={value}"


async def test_one_trace_from_the_rpc_through_the_job_the_provider_and_the_asset_store(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    async with OpenAIFake() as fake, running_server(openai_settings(tmp_path, fake.base_url)) as s:
        # Probes make no traces (neither the RPC nor the dependency checks it runs).
        probe = health_pb2_grpc.HealthStub(s.channel)
        for service in ("", "limner.ready"):
            await probe.Check(health_pb2.HealthCheckRequest(service=service))
        request = ipb.GenerateImageRequest(prompt=PROMPT, model="models/gpt-image")
        events = await collect(s.images.GenerateImage(request))
        assert kinds(events)[-1] == "completed"
        spans = await finished(
            exporter, lambda found: bool(named(found, RPC) and named(found, "job image_generation"))
        )
        sent = [r for r in fake.requests if r.path.endswith("/images/generations")]

    (rpc,) = named(spans, RPC)
    (job,) = named(spans, "job image_generation")
    trace_id = rpc.context.trace_id
    assert rpc.kind is SpanKind.SERVER
    assert rpc.attributes is not None and rpc.attributes["rpc.method"] == "GenerateImage"
    # RPC -> job
    assert job.context.trace_id == trace_id and parent_of(job) == rpc.context.span_id
    assert job.attributes is not None
    assert {key: job.attributes[key] for key in job.attributes if key != "limner.job.id"} == {
        "limner.job.kind": "image_generation",
        "limner.job.attempt": 1,
        "limner.job.resumed": False,
        "limner.workspace": "default",
        "limner.provider": "oa",
        "limner.model": "gpt-image",
        "limner.job.state": "succeeded",
    }
    assert job.attributes["limner.job.id"] == events[0].job.removeprefix("jobs/")
    assert "provider slot acquired" in [e.name for e in job.events]
    # job -> the provider's HTTP call (httpx over the aiohttp transport), which carries
    # the trace to the provider
    (http,) = [s for s in spans if s.kind is SpanKind.CLIENT and s.name == "POST"]
    assert http.context.trace_id == trace_id and parent_of(http) == job.context.span_id
    assert sent and sent[0].headers["traceparent"].split("-")[1] == f"{trace_id:032x}"
    # job -> asset store -> database
    stores = named(spans, "asset.store")
    generated = [
        store
        for store in stores
        if store.attributes and store.attributes["limner.asset.source"] == "generated"
    ]
    assert len(generated) == 1
    assert all(parent_of(store) == job.context.span_id for store in stores)
    inserts = [
        s
        for s in spans
        if s.parent is not None
        and s.parent.span_id == generated[0].context.span_id
        and s.attributes
        and "INSERT INTO assets" in str(s.attributes.get("db.statement", ""))
    ]
    assert inserts and inserts[0].attributes is not None
    assert inserts[0].attributes["db.system"] == "sqlite"
    # and the job's own log writes
    statements = [
        str(s.attributes.get("db.statement", ""))
        for s in spans
        if s.attributes and "job image_generation" in ancestors(s, spans)
    ]
    assert any(statement.startswith("UPDATE jobs") for statement in statements)
    # everything the RPC caused is in its trace
    assert {s.context.trace_id for s in spans} == {trace_id}
    # never the prompt, never the key
    leaks = [text for span in spans for text in texts(span) if PROMPT in text or API_KEY in text]
    assert leaks == []


async def test_a_job_resumed_after_a_restart_continues_its_submitters_trace(
    exporter: InMemorySpanExporter, tmp_path: Path
) -> None:
    gated = GatedImageGenerator()
    settings = fast_settings(tmp_path)
    async with running_server(settings, providers=replacing_offline(gated)) as server:
        call = server.images.GenerateImage(
            ipb.GenerateImageRequest(prompt=PROMPT, options=ipb.ImageOptions(width=96, height=96))
        )
        async for response in call:
            name = response.event.job
            break
        await gated.started.wait()
        call.cancel()
    # A new server over the same database resumes the job (attempt 2).
    async with running_server(settings) as server:
        events = await collect(server.jobs.WatchJob(jpb.WatchJobRequest(name=name)))
        assert kinds(events)[-1] == "completed"
        job_id = name.removeprefix("jobs/")

        def both_runs(spans: list[ReadableSpan]) -> bool:
            return len([s for s in named(spans, "job image_generation") if s.attributes]) == 2

        spans = await finished(exporter, both_runs)

    (rpc,) = named(spans, RPC)
    first, second = sorted(named(spans, "job image_generation"), key=lambda s: s.start_time or 0)
    for run in (first, second):
        assert run.attributes is not None and run.attributes["limner.job.id"] == job_id
        assert run.context.trace_id == rpc.context.trace_id
        assert parent_of(run) == rpc.context.span_id
    assert first.attributes is not None and second.attributes is not None
    assert first.attributes["limner.job.state"] == "interrupted"
    assert first.attributes["limner.job.resumed"] is False
    assert second.attributes["limner.job.state"] == "succeeded"
    assert second.attributes["limner.job.resumed"] is True
    assert second.attributes["limner.job.attempt"] == 2
    # What the new server wrote while taking the job over is in that trace too.
    resumed_writes = [
        s
        for s in spans
        if s.context.trace_id == rpc.context.trace_id
        and s.start_time is not None
        and second.start_time is not None
        and s.start_time < second.start_time
        and s.start_time > (first.end_time or 0)
        and s.attributes
        and "db.statement" in s.attributes
    ]
    assert resumed_writes
    # Lease renewals and claims (polled) make no traces of their own.
    lease_traces = [
        s
        for s in spans
        if s.context.trace_id != rpc.context.trace_id
        and s.attributes
        and "lease_until_us" in str(s.attributes.get("db.statement", ""))
    ]
    assert [s.attributes.get("db.statement") for s in lease_traces if s.attributes] == []
    leaks = [text for span in spans for text in texts(span) if PROMPT in text]
    assert leaks == []


def bare_job(trace_context: dict[str, str], attempt: int = 0) -> Job:
    now = datetime.now(UTC)
    return Job(
        id="j1",
        workspace_id="w",
        kind=JobKind.SCENE,
        state=JobState.QUEUED,
        progress=Progress(stage=JobStage.QUEUED),
        model_id="m",
        provider_id="p",
        prompt=PROMPT,
        spec=None,  # type: ignore[arg-type]  # the run span does not read it
        create_time=now,
        update_time=now,
        attempt=attempt,
        trace_context=trace_context,
    )


async def test_a_run_another_rpc_starts_is_its_child_and_links_to_the_submitter(
    exporter: InMemorySpanExporter,
) -> None:
    """ApproveScene starts the run of a job an earlier RPC submitted."""
    active = tracing._active
    assert active is not None
    with active.tracer.start_as_current_span("submitting rpc") as submitter:
        carrier = tracing.current_carrier()
    assert carrier["traceparent"].split("-")[2] == f"{submitter.get_span_context().span_id:016x}"
    job = bare_job(carrier, attempt=1)

    async def run() -> None:
        job.state = JobState.SUCCEEDED

    with active.tracer.start_as_current_span("approving rpc") as approver:
        await asyncio.create_task(tracing.traced_job(job, run))
    (span,) = named(list(exporter.get_finished_spans()), "job scene")
    assert span.parent is not None
    assert span.parent.span_id == approver.get_span_context().span_id
    assert [link.context.span_id for link in span.links] == [submitter.get_span_context().span_id]
    assert span.attributes is not None and span.attributes["limner.job.resumed"] is True


async def test_log_records_made_in_a_span_carry_its_ids(
    exporter: InMemorySpanExporter, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="limner.access")
    async with running_server(fast_settings(tmp_path)) as server:
        request = ipb.GenerateImageRequest(prompt=PROMPT)
        await collect(server.images.GenerateImage(request))
        spans = await finished(exporter, lambda found: bool(named(found, RPC)))
    (rpc,) = named(spans, RPC)
    (record,) = [r for r in caplog.records if getattr(r, "rpc_method", "") == RPC]
    assert record.trace_id == f"{rpc.context.trace_id:032x}"  # type: ignore[attr-defined]
    assert record.span_id == f"{rpc.context.span_id:016x}"  # type: ignore[attr-defined]
    line = TextFormatter().format(record)
    assert line.endswith(f"trace_id={record.trace_id} span_id={record.span_id}")  # type: ignore[attr-defined]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["trace_id"] == record.trace_id  # type: ignore[attr-defined]
    # Outside a span, nothing is added.
    outside = logging.getLogger("limner.test").makeRecord("x", logging.INFO, "f", 1, "m", (), None)
    assert not hasattr(outside, "trace_id")
    assert "trace_id" not in TextFormatter().format(outside)


def test_the_environment_names_the_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    from limner.observability import tracing_sdk

    assert tracing.exporter_names({}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "none"}) == []
    assert tracing.exporter_names({"OTEL_TRACES_EXPORTER": "otlp, console"}) == ["otlp", "console"]
    off = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}
    assert tracing.exporter_names(off) == []
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    exporter = tracing_sdk.exporter("otlp")
    try:
        assert isinstance(exporter, OTLPSpanExporter)
    finally:
        exporter.shutdown()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(RuntimeError, match="not supported"):
        tracing_sdk.exporter("otlp")
    with pytest.raises(RuntimeError, match="no 'zipkin' exporter is installed"):
        tracing_sdk.exporter("zipkin")


OFF_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, tempfile
    from pathlib import Path

    from limner.testing import fast_settings, running_server
    from limner.testing.streams import collect, kinds
    from limner.v1 import image_service_pb2 as ipb


    async def main() -> None:
        with tempfile.TemporaryDirectory() as scratch:
            async with running_server(fast_settings(Path(scratch))) as server:
                request = ipb.GenerateImageRequest(prompt="a fox")
                assert kinds(await collect(server.images.GenerateImage(request)))[-1] == "completed"


    asyncio.run(main())
    print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
    print("limner.observability.tracing_sdk" in sys.modules)
    """
)


@pytest.mark.parametrize("exporter_setting", [None, "none"])
def test_tracing_off_imports_nothing_of_opentelemetry(exporter_setting: str | None) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    if exporter_setting is not None:
        env["OTEL_TRACES_EXPORTER"] = exporter_setting
    done = subprocess.run(
        [sys.executable, "-c", OFF_SCRIPT], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["[]", "False"]
