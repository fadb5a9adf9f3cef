"""The tools people debug Limner with, against a real ``limner serve``: grpcurl through server
reflection (list, describe, a streaming call with a JSON body, a rich error) and
grpc-health-probe (SERVING per service; NOT_SERVING through the shutdown drain, before the
port closes). Both are installed at pinned versions by scripts/install-go-tools."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from contract_harness import ROOT, SERVICES, LimnerProcess, run, tool
from google.protobuf.descriptor import Descriptor

from limner.v1 import (
    asset_pb2,
    design_reference_pb2,
    design_reference_service_pb2,
    image_service_pb2,
    job_pb2,
    job_service_pb2,
    model_pb2,
    model_service_pb2,
    scene_pb2,
    scene_service_pb2,
)

PROTO_MODULES = (
    asset_pb2,
    design_reference_pb2,
    design_reference_service_pb2,
    image_service_pb2,
    job_pb2,
    job_service_pb2,
    model_pb2,
    model_service_pb2,
    scene_pb2,
    scene_service_pb2,
)

# JobEvent fields outside its `event` oneof (grpcurl omits false and zero values)
EVENT_FIELDS = ("job", "sequence", "time", "transient")

# Health per dependency, and readiness (all of them)
DEPENDENCIES = ("limner.database", "limner.assets", "limner.jobs", "limner.ready")

# grpc-health-probe exit codes
SERVING, CONNECTION_FAILED, UNHEALTHY = 0, 2, 4


def all_messages() -> list[str]:
    names: list[str] = []

    def visit(message: Descriptor) -> None:
        if not message.GetOptions().map_entry:
            names.append(message.full_name)
        for nested in message.nested_types:
            visit(nested)

    for module in PROTO_MODULES:
        for message in module.DESCRIPTOR.message_types_by_name.values():
            visit(message)
    return names


def json_stream(text: str) -> list[dict[str, Any]]:
    """grpcurl prints one pretty-printed JSON object per streamed response."""
    decoder = json.JSONDecoder()
    objects, index = [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        value, index = decoder.raw_decode(text, index)
        objects.append(value)
    return objects


def grpcurl(server: LimnerProcess, *args: str, data: str | None = None) -> Any:
    body = ["-d", data] if data is not None else []
    return run([tool("grpcurl"), "-plaintext", *body, server.address, *args], timeout=60)


def probe(address: str, service: str = "") -> tuple[int, str]:
    args = [tool("grpc-health-probe"), "-addr", address, "-connect-timeout", "1s"]
    args += ["-rpc-timeout", "1s", *(["-service", service] if service else [])]
    result = run(args, timeout=10)
    return result.returncode, result.stdout.strip()


def test_grpcurl_lists_the_services_through_reflection(limner_server: LimnerProcess) -> None:
    result = grpcurl(limner_server, "list")
    assert result.returncode == 0, result.stdout
    listed = set(result.stdout.split())
    assert set(SERVICES) <= listed, listed
    assert "grpc.health.v1.Health" in listed
    assert {"grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"} <= (
        listed
    )


@pytest.mark.parametrize("protocol", ["grpc-v1", "grpc-v1alpha"])
def test_buf_curl_lists_the_methods_over_each_reflection_protocol(
    limner_server: LimnerProcess, protocol: str
) -> None:
    # grpcurl and buf curl try v1 first and fall back to v1alpha; here each is forced.
    result = run(
        [
            str(ROOT / ".venv" / "bin" / "buf"),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--reflect-protocol",
            protocol,
            "--list-methods",
            f"http://{limner_server.address}",
        ],
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    methods = set(result.stdout.split())
    assert "limner.v1.ImageService/GenerateImage" in methods, result.stdout
    assert "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" in methods


@pytest.mark.timeout(120)
def test_grpcurl_describes_every_service_and_message(limner_server: LimnerProcess) -> None:
    job_event = grpcurl(limner_server, "describe", "limner.v1.JobEvent")
    assert job_event.returncode == 0, job_event.stdout
    assert "limner.v1.JobEvent is a message:" in job_event.stdout
    assert "oneof event {" in job_event.stdout
    assert "int64 sequence = 2;" in job_event.stdout

    symbols = [*SERVICES, *all_messages()]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: (s, grpcurl(limner_server, "describe", s)), symbols))
    failed = {symbol: r.stdout for symbol, r in results if r.returncode != 0}
    assert not failed, failed
    for symbol, result in results:
        kind = "service" if symbol in SERVICES else "message"
        assert f"{symbol} is a {kind}:" in result.stdout, result.stdout


def test_grpcurl_streams_generate_image_progress_to_completed(
    limner_server: LimnerProcess,
) -> None:
    body = '{"prompt":"a red fox","options":{"width":128,"height":96,"seed":7}}'
    result = grpcurl(limner_server, "limner.v1.ImageService/GenerateImage", data=body)
    assert result.returncode == 0, result.stdout
    events = [response["event"] for response in json_stream(result.stdout)]
    kinds = [next(k for k in event if k not in EVENT_FIELDS) for event in events]
    assert kinds[0] == "snapshot"
    assert kinds[-1] == "completed"
    assert "progress" in kinds
    steps = [e["progress"].get("step", 0) for e in events if "totalSteps" in e.get("progress", {})]
    assert steps == sorted(steps) and steps[-1] == 10, steps
    logged = [int(e["sequence"]) for e in events if not e.get("transient")]
    assert logged == list(range(1, len(logged) + 1))
    image = events[-1]["completed"]["images"][0]
    assert image["asset"].startswith("assets/")
    assert (image["width"], image["height"], image["mimeType"]) == (128, 96, "image/png")


def test_grpcurl_shows_a_rich_errors_details(limner_server: LimnerProcess) -> None:
    body = '{"prompt":"a cat","model":"models/offline-writer"}'
    result = grpcurl(limner_server, "limner.v1.ImageService/GenerateImage", data=body)
    assert result.returncode != 0
    assert "Code: FailedPrecondition" in result.stdout
    assert '"@type": "type.googleapis.com/google.rpc.ErrorInfo"' in result.stdout
    assert '"reason": "MODEL_CAPABILITY_UNSUPPORTED"' in result.stdout
    assert '"@type": "type.googleapis.com/google.rpc.PreconditionFailure"' in result.stdout


def test_health_probe_reports_serving_for_the_server_and_each_service(
    limner_server: LimnerProcess,
) -> None:
    for service in ("", *SERVICES, *DEPENDENCIES):
        code, output = probe(limner_server.address, service)
        assert (code, output) == (SERVING, "status: SERVING"), (service, code, output)
    code, output = probe(limner_server.address, "limner.v1.NoSuchService")
    assert code != SERVING, output


@pytest.mark.timeout(60)
def test_health_probe_sees_not_serving_during_the_drain_before_the_port_closes(
    fresh_server,
) -> None:
    # A drain long enough for several probes even on a loaded machine (each one starts a
    # Go binary).
    server: LimnerProcess = fresh_server(LIMNER_SHUTDOWN__DRAIN_S="4")
    assert probe(server.address) == (SERVING, "status: SERVING")

    server.terminate()  # SIGTERM: what docker stop and Kubernetes send
    timeline: list[tuple[float, int]] = []
    per_service: dict[str, tuple[int, str]] = {}
    started = time.monotonic()
    while time.monotonic() - started < 20:
        code, output = probe(server.address)
        timeline.append((time.monotonic() - started, code))
        if code == UNHEALTHY and not per_service:
            assert "NOT_SERVING" in output, output
            per_service = {service: probe(server.address, service) for service in SERVICES}
        if code == CONNECTION_FAILED:
            break
        time.sleep(0.05)
    assert server.wait() == 0, server.log_text()

    codes = [code for _, code in timeline]
    assert UNHEALTHY in codes, f"never saw NOT_SERVING: {timeline}"
    assert codes[-1] == CONNECTION_FAILED, f"the port never closed: {timeline}"
    first_unhealthy = codes.index(UNHEALTHY)
    # Once draining, never SERVING again (a probe that times out on a loaded machine is
    # neither answer, and does not count against the server).
    assert SERVING not in codes[first_unhealthy:], f"SERVING again after drain: {timeline}"
    assert all(code == UNHEALTHY for code, _ in per_service.values()), per_service
    assert set(per_service) == set(SERVICES)
