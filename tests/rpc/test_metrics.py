"""Prometheus metrics through a real server: jobs that succeed, fail and are cancelled, RPC
errors, a provider over real HTTP with a retry and usage, a model a workspace created, all
scraped from ``/metrics`` over HTTP; and the Grafana dashboard's queries checked against a
real scrape."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import urllib.request
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from limner.errors import ContentFiltered
from limner.observability.metrics import NO_METRICS, PrometheusMetrics
from limner.settings import Settings
from limner.startup import AddressUnavailableError, InvalidSettingError
from limner.testing import GatedImageGenerator, RunningServer, fast_settings, running_server
from limner.testing.fakes import Fault
from limner.testing.fakes.openai import OpenAIFake
from limner.testing.providers import replacing_offline
from limner.testing.streams import collect, kinds
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import job_pb2
from limner.v1 import job_service_pb2 as jpb
from limner.v1 import model_pb2 as m
from limner.v1 import model_service_pb2 as mpb

pytestmark = pytest.mark.timeout(30)

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "limner.json"
PROMPT_MARK = "zq-secret-prompt-7f3a"  # every prompt carries it; no label value may
WORKSPACE_MODEL = "ws-private-model"  # a model created through the API, not configured


# -- helpers -------------------------------------------------------------------------------


class Scrape:
    """One parsed ``/metrics`` answer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}

    def samples(self, name: str) -> Iterator[Sample]:
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == name:
                    yield sample

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(
            s.value
            for s in self.samples(name)
            if all(s.labels.get(k) == v for k, v in labels.items())
        )

    def label_values(self) -> set[str]:
        return {
            value
            for family in self.families.values()
            for sample in family.samples
            for value in sample.labels.values()
        }


async def scrape(server: RunningServer) -> Scrape:
    address = server.app.metrics.address
    assert address, "metrics are on"

    def get() -> str:
        with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain")
            body: bytes = response.read()
            return body.decode()

    return Scrape(await asyncio.to_thread(get))


@asynccontextmanager
async def metrics_server(
    tmp_path: Path, fake: OpenAIFake | None = None, gated: GatedImageGenerator | None = None
) -> AsyncIterator[RunningServer]:
    overrides: dict[str, Any] = {}
    if fake is not None:
        overrides["providers"] = {
            # One job at a time, so a second one waits in the queue.
            "offline": {"kind": "offline", "max_concurrent_jobs": 1},
            "oa": {
                "kind": "openai",
                "base_url": fake.base_url,
                "api_key": "sk-test",
                "max_retries": 1,
            },
        }
        overrides["models"] = [
            {
                "id": "gpt-image",
                "provider": "oa",
                "provider_model_id": "gpt-image-1",
                "input_modalities": ["text"],
                "output_modalities": ["image"],
            }
        ]
    settings = fast_settings(tmp_path / "data", metrics={"address": "127.0.0.1:0"}, **overrides)
    providers = replacing_offline(gated) if gated is not None else None
    async with running_server(settings, providers=providers) as server:
        yield server


def request(prompt: str, model: str = "offline-image") -> ipb.GenerateImageRequest:
    return ipb.GenerateImageRequest(
        prompt=f"{prompt} {PROMPT_MARK}",
        model=model,
        options=ipb.ImageOptions(width=64, height=64, seed=3),
    )


async def first_event(call: Any) -> job_pb2.JobEvent:
    async for response in call:
        return response.event
    raise AssertionError("the stream ended before its first event")


async def until(call: Any, predicate: Any) -> list[job_pb2.JobEvent]:
    seen = []
    async for response in call:
        seen.append(response.event)
        if predicate(response.event):
            return seen
    raise AssertionError("the stream ended before the expected event")


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


# -- the server's metrics ------------------------------------------------------------------


async def test_metrics_count_jobs_rpcs_providers_and_usage(tmp_path):
    gated = GatedImageGenerator()
    async with OpenAIFake() as fake, metrics_server(tmp_path, fake, gated) as server:
        before = await scrape(server)
        assert before.value("limner_jobs_submitted_total") == 0
        assert before.value("limner_build_info") == 1
        (build,) = before.samples("limner_build_info")
        assert build.labels["version"] and build.labels["python_version"]

        # 1. a job cancelled while the provider works on it, and one cancelled while it
        # waits for the provider's only slot
        call = server.images.GenerateImage(request("a lighthouse"))
        events = [await first_event(call)]
        await gated.started.wait()
        waiting = server.images.GenerateImage(request("a harbour light"))
        queued = [await first_event(waiting)]
        queued += await until(waiting, lambda e: e.progress.queue_position == 1)
        during = await scrape(server)
        assert during.value("limner_jobs_running", provider="offline") == 1
        assert during.value("limner_jobs_queued", provider="offline") == 1
        assert during.value("limner_job_watch_streams") == 2
        for job_call, seen in ((waiting, queued), (call, events)):
            await server.jobs.CancelJob(jpb.CancelJobRequest(name=seen[0].job))
            seen += [response.event async for response in job_call]
            assert kinds(seen)[-1] == "cancelled"
        job_ids = {events[0].job, queued[0].job}

        # 2. a job the provider refuses, 3. one that succeeds
        gated.fail_with = ContentFiltered("blocked")
        gated.gate.set()
        failed = await collect(server.images.GenerateImage(request("a red fox")))
        assert kinds(failed)[-1] == "failed"
        gated.fail_with = None
        done = await collect(server.images.GenerateImage(request("a blue fox")))
        assert kinds(done)[-1] == "completed"
        job_ids |= {failed[0].job, done[0].job}

        # 4. a configured provider over HTTP: rate limited once, retried, with usage
        fake.arm(Fault.RATE_LIMITED, retry_after_s=0)
        remote = await collect(server.images.GenerateImage(request("a harbour", "gpt-image")))
        assert kinds(remote)[-1] == "completed"
        # 5. a model a workspace created through the API: counted, but not named
        await server.models.CreateModel(
            mpb.CreateModelRequest(
                model_id=WORKSPACE_MODEL,
                model=m.Model(
                    provider="providers/oa",
                    provider_model_id="gpt-image-1",
                    input_modalities=[m.MODALITY_TEXT],
                    output_modalities=[m.MODALITY_IMAGE],
                    profile=m.ModelProfile(),
                ),
            )
        )
        created = await collect(
            server.images.GenerateImage(request("a quay", f"models/{WORKSPACE_MODEL}"))
        )
        assert kinds(created)[-1] == "completed", created[-1]
        job_ids |= {remote[0].job, created[0].job}

        # 6. RPC errors: an unknown job (unary), an empty prompt (a stream)
        missing = await rpc_error(server.jobs.GetJob(jpb.GetJobRequest(name="jobs/nope")))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        empty = await rpc_error(collect(server.images.GenerateImage(ipb.GenerateImageRequest())))
        assert empty.code() == grpc.StatusCode.INVALID_ARGUMENT

        after = await scrape(server)

    image = "limner.v1.ImageService"
    # RPCs by method and code, with latencies
    assert after.value("limner_rpc_requests_total", method="GenerateImage", code="OK") == 6
    assert (
        after.value("limner_rpc_requests_total", method="GenerateImage", code="INVALID_ARGUMENT")
        == 1
    )
    assert after.value("limner_rpc_requests_total", method="GetJob", code="NOT_FOUND") == 1
    assert after.value("limner_rpc_requests_total", method="CancelJob", code="OK") == 2
    assert after.value("limner_rpc_requests_total", service=image) == 7
    assert after.value("limner_rpc_duration_seconds_count", service=image) == 7
    assert after.value("limner_rpc_duration_seconds_bucket", method="GetJob", le="+Inf") == 1
    assert after.value("limner_rpc_duration_seconds_sum", method="GenerateImage") > 0

    # jobs submitted and finished, by kind, provider, model, outcome and reason
    offline = {"kind": "image_generation", "provider": "offline", "model": "offline-image"}
    remote_labels = {"kind": "image_generation", "provider": "oa", "model": "gpt-image"}
    assert after.value("limner_jobs_submitted_total", **offline) == 4
    assert after.value("limner_jobs_submitted_total", **remote_labels) == 1
    assert after.value("limner_jobs_submitted_total", provider="oa", model="other") == 1
    assert after.value("limner_jobs_submitted_total") == 6
    finished = "limner_jobs_finished_total"
    assert after.value(finished, **offline, outcome="cancelled", reason="") == 2
    assert after.value(finished, **offline, outcome="failed", reason="CONTENT_FILTERED") == 1
    assert after.value(finished, **offline, outcome="succeeded", reason="") == 1
    assert after.value(finished, **remote_labels, outcome="succeeded") == 1
    assert after.value(finished, model="other", outcome="succeeded") == 1
    assert after.value(finished) == 6

    # run times and queue waits: of every job but the one cancelled while queued
    duration = "limner_job_duration_seconds_count"
    for outcome in ("cancelled", "failed", "succeeded"):
        assert after.value(duration, **offline, outcome=outcome) == 1
    assert after.value(duration) == 5
    assert after.value("limner_job_queue_wait_seconds_count", provider="offline") == 3
    assert after.value("limner_job_queue_wait_seconds_count") == 5
    assert after.value("limner_job_log_write_seconds_count") > before.value(
        "limner_job_log_write_seconds_count"
    )

    # nothing is left queued, running or watched
    assert after.value("limner_jobs_running") == 0
    assert after.value("limner_jobs_queued") == 0
    assert after.value("limner_job_watch_streams") == 0
    assert {s.labels["provider"] for s in after.samples("limner_jobs_running")} == {
        "offline",
        "oa",
    }

    # provider HTTP: the 429, its retry and the two answers
    requests = "limner_provider_http_request_duration_seconds_count"
    assert after.value(requests, provider="oa", status="429") == 1
    assert after.value(requests, provider="oa", status="200") == 2
    assert after.value("limner_provider_http_retries_total", provider="oa", status="429") == 1
    assert after.value("limner_provider_http_retries_total") == 1

    # usage reported by the provider (the fake reports 50 input and 100 output tokens)
    tokens = "limner_usage_tokens_total"
    assert after.value(tokens, model="gpt-image", direction="input") == 50
    assert after.value(tokens, model="gpt-image", direction="output") == 100
    assert after.value(tokens, model="other", direction="output") == 100
    assert after.value(tokens, direction="unsplit") == 0
    assert after.value("limner_usage_provider_calls_total", provider="oa") >= 2

    # bounded labels: no job id, prompt or workspace-created model id anywhere
    job_ids = {name.removeprefix("jobs/") for name in job_ids}
    assert all(len(job_id) >= 16 for job_id in job_ids)
    values = after.label_values()
    for value in values:
        assert PROMPT_MARK not in value
        assert WORKSPACE_MODEL not in value
        assert not any(job_id in value for job_id in job_ids), value
    assert {s.labels["model"] for s in after.samples(finished)} == {
        "offline-image",
        "gpt-image",
        "other",
    }


async def test_metrics_are_off_by_default(make_server):
    async with make_server() as server:
        assert server.app.metrics is NO_METRICS
        assert server.app.metrics.address == ""


def test_the_address_comes_from_the_environment_and_needs_a_port(monkeypatch):
    monkeypatch.setenv("LIMNER_METRICS__ADDRESS", "127.0.0.1:9464")
    assert Settings.load(None).metrics.address == "127.0.0.1:9464"
    monkeypatch.setenv("LIMNER_METRICS__ADDRESS", "9464")
    with pytest.raises(InvalidSettingError, match=r"LIMNER_METRICS__ADDRESS.*has no port"):
        Settings.load(None)


async def test_a_taken_metrics_port_stops_the_start(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        settings = fast_settings(tmp_path / "data", metrics={"address": address})
        with pytest.raises(AddressUnavailableError, match="LIMNER_METRICS__ADDRESS") as raised:
            async with running_server(settings):
                pass
    assert f"cannot listen for metrics on {address}" in str(raised.value)


async def test_servers_in_one_process_keep_their_own_registries(tmp_path):
    async with (
        metrics_server(tmp_path / "one") as one,
        metrics_server(tmp_path / "two") as two,
    ):
        assert one.app.metrics.address != two.app.metrics.address
        await collect(one.images.GenerateImage(request("a lamp")))
        first, second = await scrape(one), await scrape(two)
        assert first.value("limner_jobs_submitted_total") == 1
        assert second.value("limner_jobs_submitted_total") == 0
        assert isinstance(one.app.metrics, PrometheusMetrics)
        assert one.app.metrics.registry is not getattr(two.app.metrics, "registry", None)


# -- the Grafana dashboard -----------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLE = re.compile(r"\$\{?\w+\}?")
_OFFSET = re.compile(r"\boffset\s+-?\w+")
_LABEL_VALUES = re.compile(r"^\s*label_values\((.*),\s*\w+\s*\)\s*$")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?=\s*(\(?))")
_KEYWORDS = {"and", "or", "unless", "bool", "group_left", "group_right", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana ``label_values`` query) reads."""
    query = _LABEL_VALUES.match(expr)
    if query is not None:
        expr = query.group(1)
    for pattern in (_STRING, _MATCHERS, _RANGE, _GROUPING, _VARIABLE, _OFFSET):
        expr = pattern.sub(" ", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        if match.group(1) == "(" or match.group(0).lower() in _KEYWORDS:
            continue  # a function or an aggregation, not a metric
        names.add(match.group(0))
    return names


def test_metric_names_are_extracted_from_promql():
    expr = (
        "histogram_quantile(0.95, sum by (le, kind) (rate(limner_job_duration_seconds_bucket"
        '{job=~"$job", outcome="succeeded"}[$__rate_interval])))'
        " / on (kind) group_left sum(limner_jobs_running offset 5m) > bool 0"
    )
    assert metric_names(expr) == {"limner_job_duration_seconds_bucket", "limner_jobs_running"}
    assert metric_names('label_values(limner_build_info{job=~"$job"}, instance)') == {
        "limner_build_info"
    }
    families = {
        "limner_rpc_requests": "counter",
        "limner_jobs_running": "gauge",
        "limner_job_duration_seconds": "histogram",
    }
    assert exported("limner_rpc_requests_total", families)
    assert exported("limner_jobs_running", families)
    assert exported("limner_job_duration_seconds_bucket", families)
    assert exported("limner_job_duration_seconds_count", families)
    assert not exported("limner_rpc_requests", families)  # a counter is read as _total
    assert not exported("limner_jobs_running_total", families)
    assert not exported("limner_job_duration_seconds", families)
    assert not exported("limner_jobs_runing", families)


def dashboard_queries(node: Any) -> Iterator[str]:
    """Every panel target's ``expr`` and every templating query, at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            # Templating queries are strings too (label_values(...)); other "query" keys
            # (the data source variable's plugin id) have no parentheses.
            if isinstance(value, str) and (key == "expr" or (key == "query" and "(" in value)):
                yield value
            else:
                yield from dashboard_queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from dashboard_queries(item)


SUFFIXES = {
    "_bucket": {"histogram"},
    "_sum": {"histogram", "summary"},
    "_count": {"histogram", "summary"},
    "_total": {"counter"},
}


def exported(name: str, families: dict[str, str]) -> bool:
    """Whether ``name`` is a series of a family the server exports (by family type)."""
    if families.get(name) in {"gauge", "untyped", "info", "stateset", "unknown"}:
        return True
    for suffix, types in SUFFIXES.items():
        if name.endswith(suffix) and families.get(name.removesuffix(suffix)) in types:
            return True
    return False


async def test_every_dashboard_query_names_an_exported_metric(tmp_path):
    dashboard = json.loads(DASHBOARD.read_text("utf-8"))
    queries = list(dashboard_queries(dashboard))
    assert len(queries) >= 20
    async with metrics_server(tmp_path) as server:
        scraped = await scrape(server)
    families = {name: family.type for name, family in scraped.families.items()}
    used: set[str] = set()
    for query in queries:
        names = metric_names(query)
        assert names, f"no metric found in {query!r}"
        missing = {name for name in names if not exported(name, families)}
        assert not missing, f"{query!r} reads {missing}, which the server does not export"
        used |= names
    # Every Limner metric family appears on the dashboard.
    ours = {name for name in families if name.startswith("limner_")}
    shown = {
        name
        for name in ours
        if any(u == name or u.removesuffix(s) == name for u in used for s in SUFFIXES)
    }
    assert shown == ours
