"""The Python client (clients/python, ``limner-client``) against a real ``limner serve``
process: the scenarios of the Go and TypeScript suites (test_clients.py), for both the
blocking flavour (``limner.client.sync``) and asyncio (``limner.client.aio``): list models;
generate and follow to completion; drop the stream mid-job and resume with
``after_sequence``, also automatically after UNAVAILABLE; cancel a running job; a rich
error's ErrorInfo and PreconditionFailure; download (size, sha256) and upload back; the
example program. Plus the API key and the default unary deadline on every call, and the
client wheel's runtime dependencies.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from contract_harness import ROOT, LimnerProcess, run
from google.rpc import error_details_pb2

from limner.client import (
    DownloadError,
    aio,
    error_details,
    find_detail,
    is_logged,
    sync,
)
from limner.client._common import ChunkChecker
from limner.v1 import image_service_pb2, job_pb2, job_service_pb2, model_service_pb2

PYTHON_CLIENT = ROOT / "clients" / "python"
ALLOWED_REQUIREMENTS = {"grpcio", "protobuf", "googleapis-common-protos", "grpcio-status"}
WATCH_JOB = "/limner.v1.JobService/WatchJob"
EXAMPLE = PYTHON_CLIENT / "examples" / "generate.py"
PIP_WHEEL = (sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation")


def request(prompt: str, seed: int) -> image_service_pb2.GenerateImageRequest:
    req = image_service_pb2.GenerateImageRequest(prompt=prompt)
    req.options.width, req.options.height, req.options.seed = 96, 64, seed
    return req


def kind(event: job_pb2.JobEvent) -> str:
    return event.WhichOneof("event") or "other"


def sequences(events: list[job_pb2.JobEvent]) -> list[int]:
    return [e.sequence for e in events if is_logged(e)]


def assert_one_to_n(seqs: list[int]) -> None:
    assert seqs, "no logged events"
    assert seqs == list(range(1, len(seqs) + 1)), f"lost or repeated events: {seqs}"


def mid_job(event: job_pb2.JobEvent) -> bool:
    p = event.progress
    return (
        kind(event) == "progress"
        and p.stage == job_pb2.JOB_STAGE_GENERATING
        and 1 <= p.step < p.total_steps
    )


def check_completed_stream(events: list[job_pb2.JobEvent]) -> None:
    assert kind(events[0]) == "snapshot" and kind(events[-1]) == "completed"
    assert_one_to_n(sequences(events))
    steps = [e.progress.step for e in events if kind(e) == "progress" and e.progress.total_steps]
    assert len(steps) >= 2 and steps == sorted(steps)
    image = events[-1].completed.images[0]
    assert (image.width, image.height, image.mime_type, image.seed) == (96, 64, "image/png", 7)
    assert events[-1].job.startswith("jobs/")


def check_rich_error(error: grpc.RpcError) -> None:
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = error_details(error)
    info = details.error_info
    assert info is not None, details
    assert (info.reason, info.domain) == ("MODEL_CAPABILITY_UNSUPPORTED", "limner.dev")
    assert info.metadata["capability"] == "image output"
    assert find_detail(error, error_details_pb2.ErrorInfo) == info
    failure = details.precondition_failure
    assert failure is not None and len(failure.violations) == 1
    violation = failure.violations[0]
    assert (violation.type, violation.subject) == ("CAPABILITY", "models/offline-writer")
    assert "image output" in violation.description
    assert details.bad_request is None and details.retry_info is None


def check_download(path: Path, written: int, image: Any) -> None:
    data = path.read_bytes()
    assert written == len(data) == image.size_bytes
    assert image.asset == "assets/" + hashlib.sha256(data).hexdigest()
    assert not path.with_name(path.name + ".part").exists()


# --- interceptors the tests add ------------------------------------------------------------


class SyncRecorder(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Records what the client's own interceptor set (they run before this one)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None, list[tuple[str, str]]]] = []

    def intercept_unary_unary(self, continuation: Any, details: Any, req: Any) -> Any:
        self.calls.append((details.method, details.timeout, list(details.metadata or ())))
        return continuation(details, req)


class AioRecorder(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None, list[tuple[str, str]]]] = []

    async def intercept_unary_unary(self, continuation: Any, details: Any, req: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        self.calls.append((method, details.timeout, list(details.metadata or ())))
        return await continuation(details, req)


class _Unavailable(grpc.RpcError):  # type: ignore[misc]
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "test: connection lost"


class SyncDropper(grpc.UnaryStreamClientInterceptor):  # type: ignore[misc]
    """Fails the first WatchJob stream with UNAVAILABLE after ``n`` messages."""

    def __init__(self, n: int) -> None:
        self.n, self.watches = n, 0

    def intercept_unary_stream(self, continuation: Any, details: Any, req: Any) -> Any:
        call = continuation(details, req)
        if details.method != WATCH_JOB:
            return call
        self.watches += 1
        if self.watches > 1:
            return call
        return _DroppingCall(call, self.n)


class _DroppingCall:
    def __init__(self, call: Any, n: int) -> None:
        self.call, self.left = call, n

    def __iter__(self) -> _DroppingCall:
        return self

    def __next__(self) -> Any:
        if self.left == 0:
            self.call.cancel()
            raise _Unavailable()
        self.left -= 1
        return next(self.call)

    def done(self) -> bool:
        return bool(self.call.done())

    def cancel(self) -> bool:
        return bool(self.call.cancel())


class AioDropper(grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    def __init__(self, n: int) -> None:
        self.n, self.watches = n, 0

    async def intercept_unary_stream(self, continuation: Any, details: Any, req: Any) -> Any:
        call = await continuation(details, req)
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        if method != WATCH_JOB:
            return call
        self.watches += 1
        if self.watches > 1:
            return call
        n = self.n

        async def dropping() -> AsyncIterator[Any]:
            left = n
            async for response in call:
                if left == 0:
                    call.cancel()
                    raise grpc.aio.AioRpcError(
                        grpc.StatusCode.UNAVAILABLE,
                        grpc.aio.Metadata(),
                        grpc.aio.Metadata(),
                        details="test: connection lost",
                    )
                left -= 1
                yield response

        return dropping()


# --- sync ---------------------------------------------------------------------------------


@pytest.fixture
def sync_client(limner_server: LimnerProcess) -> Iterator[sync.LimnerClient]:
    with sync.connect(limner_server.address) as client:
        yield client


def test_sync_list_models(sync_client: sync.LimnerClient) -> None:
    response = sync_client.models.ListModels(model_service_pb2.ListModelsRequest())
    names = {m.name for m in response.models}
    assert {"models/offline-image", "models/offline-writer"} <= names


def test_sync_generate_follows_the_stream_to_completion(sync_client: sync.LimnerClient) -> None:
    req = request("a lighthouse at dusk", 7)
    events = list(sync.generate_image(sync_client, req))
    assert req.request_id, "a fresh request_id was set"
    check_completed_stream(events)


def test_sync_dropped_stream_resumes_with_after_sequence(sync_client: sync.LimnerClient) -> None:
    call = sync_client.images.GenerateImage(request("a dropped stream", 3))
    before = []
    for response in call:
        before.append(response.event)
        if mid_job(response.event):
            break
    call.cancel()
    with pytest.raises(grpc.RpcError) as dropped:
        next(call)
    assert dropped.value.code() == grpc.StatusCode.CANCELLED
    seen = sequences(before)
    after = list(sync.watch_job(sync_client, before[0].job, after_sequence=seen[-1]))
    assert kind(after[0]) == "snapshot" and kind(after[-1]) == "completed"
    assert len(sequences(after)) >= 2, "the job finished before the drop"
    assert_one_to_n(seen + sequences(after))


def test_sync_watch_job_resumes_after_unavailable(limner_server: LimnerProcess) -> None:
    dropper = SyncDropper(4)
    retries: list[float] = []
    with sync.connect(limner_server.address, interceptors=[dropper]) as client:
        call = client.images.GenerateImage(request("a flaky network", 5))
        first = next(call).event
        call.cancel()
        events = list(
            sync.watch_job(
                client, first.job, backoff_s=0.01, on_retry=lambda _e, d: retries.append(d)
            )
        )
    assert dropper.watches >= 2 and retries == [0.01]
    assert kind(events[-1]) == "completed"
    assert_one_to_n(sequences(events))


def test_sync_cancel_job_ends_the_stream_with_cancelled(sync_client: sync.LimnerClient) -> None:
    events = []
    cancelled = False
    for event in sync.generate_image(sync_client, request("a cancelled job", 9)):
        events.append(event)
        if not cancelled and mid_job(event):
            response = sync_client.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=event.job))
            assert response.job.state == job_pb2.JOB_STATE_CANCELLED
            cancelled = True
    assert cancelled, "the job finished before it could be cancelled"
    assert kind(events[-1]) == "cancelled" and events[-1].cancelled.reason
    assert_one_to_n(sequences(events))
    with pytest.raises(grpc.RpcError) as twice:
        sync_client.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=events[-1].job))
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_details(twice.value).error_info
    assert info is not None and info.reason == "JOB_NOT_CANCELLABLE"


def test_sync_rich_error_details(sync_client: sync.LimnerClient) -> None:
    req = request("a cat", 1)
    req.model = "models/offline-writer"  # a text model: no image output
    with pytest.raises(grpc.RpcError) as caught:
        list(sync.generate_image(sync_client, req))
    check_rich_error(caught.value)


def test_sync_download_and_upload_asset(sync_client: sync.LimnerClient, tmp_path: Path) -> None:
    events = list(sync.generate_image(sync_client, request("a downloaded fox", 11)))
    image = events[-1].completed.images[0]
    path = tmp_path / "fox.png"
    written = sync.download_asset(sync_client, image.asset, path)
    check_download(path, written, image)

    uploaded = sync.upload_image(sync_client, path)
    assert uploaded.asset.name == image.asset and not uploaded.created

    missing = tmp_path / "missing.png"
    with pytest.raises(grpc.RpcError) as caught:
        sync.download_asset(sync_client, "assets/" + "0" * 64, missing)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not missing.exists() and not (tmp_path / "missing.png.part").exists()


def test_sync_api_key_and_default_deadline_on_every_call(
    fresh_server: Callable[..., LimnerProcess],
) -> None:
    server = fresh_server(LIMNER_AUTH__API_KEYS='[{"key": "k1", "workspace": "a"}]')
    recorder = SyncRecorder()
    with sync.connect(server.address, api_key="k1", interceptors=[recorder]) as client:
        client.models.ListModels(model_service_pb2.ListModelsRequest())
        client.models.ListModels(model_service_pb2.ListModelsRequest(), timeout=5)
        events = list(sync.generate_image(client, request("with a key", 2)))
        assert kind(events[-1]) == "completed"
    (_, timeout, metadata), (_, own_timeout, _) = recorder.calls
    assert (timeout, own_timeout) == (30.0, 5)
    assert ("authorization", "Bearer k1") in metadata
    with sync.connect(server.address, api_key="wrong") as client, pytest.raises(grpc.RpcError) as e:
        client.models.ListModels(model_service_pb2.ListModelsRequest())
    assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- asyncio ------------------------------------------------------------------------------


async def test_aio_list_models(limner_server: LimnerProcess) -> None:
    async with aio.connect(limner_server.address) as client:
        response = await client.models.ListModels(model_service_pb2.ListModelsRequest())
    assert {"models/offline-image", "models/offline-writer"} <= {m.name for m in response.models}


async def test_aio_generate_follows_the_stream_to_completion(limner_server: LimnerProcess) -> None:
    async with aio.connect(limner_server.address) as client:
        req = request("a lighthouse at dusk", 7)
        events = [e async for e in aio.generate_image(client, req)]
    assert req.request_id
    check_completed_stream(events)


async def test_aio_dropped_stream_resumes_with_after_sequence(
    limner_server: LimnerProcess,
) -> None:
    async with aio.connect(limner_server.address) as client:
        call = client.images.GenerateImage(request("a dropped stream", 3))
        before = []
        async for response in call:
            before.append(response.event)
            if mid_job(response.event):
                break
        call.cancel()
        assert call.cancelled()
        seen = sequences(before)
        after = [e async for e in aio.watch_job(client, before[0].job, after_sequence=seen[-1])]
    assert kind(after[0]) == "snapshot" and kind(after[-1]) == "completed"
    assert len(sequences(after)) >= 2, "the job finished before the drop"
    assert_one_to_n(seen + sequences(after))


async def test_aio_watch_job_resumes_after_unavailable(limner_server: LimnerProcess) -> None:
    dropper = AioDropper(4)
    retries: list[float] = []
    async with aio.connect(limner_server.address, interceptors=[dropper]) as client:
        call = client.images.GenerateImage(request("a flaky network", 5))
        first = (await call.read()).event
        call.cancel()
        events = [
            e
            async for e in aio.watch_job(
                client, first.job, backoff_s=0.01, on_retry=lambda _e, d: retries.append(d)
            )
        ]
    assert dropper.watches >= 2 and retries == [0.01]
    assert kind(events[-1]) == "completed"
    assert_one_to_n(sequences(events))


async def test_aio_cancel_job_ends_the_stream_with_cancelled(limner_server: LimnerProcess) -> None:
    async with aio.connect(limner_server.address) as client:
        events = []
        cancelled = False
        async for event in aio.generate_image(client, request("a cancelled job", 9)):
            events.append(event)
            if not cancelled and mid_job(event):
                response = await client.jobs.CancelJob(
                    job_service_pb2.CancelJobRequest(name=event.job)
                )
                assert response.job.state == job_pb2.JOB_STATE_CANCELLED
                cancelled = True
        assert cancelled, "the job finished before it could be cancelled"
        assert kind(events[-1]) == "cancelled" and events[-1].cancelled.reason
        assert_one_to_n(sequences(events))
        with pytest.raises(grpc.aio.AioRpcError) as twice:
            await client.jobs.CancelJob(job_service_pb2.CancelJobRequest(name=events[-1].job))
    info = find_detail(twice.value, error_details_pb2.ErrorInfo)
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert info is not None and info.reason == "JOB_NOT_CANCELLABLE"


async def test_aio_rich_error_details(limner_server: LimnerProcess) -> None:
    req = request("a cat", 1)
    req.model = "models/offline-writer"
    async with aio.connect(limner_server.address) as client:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            [e async for e in aio.generate_image(client, req)]
    check_rich_error(caught.value)


async def test_aio_download_and_upload_asset(limner_server: LimnerProcess, tmp_path: Path) -> None:
    async with aio.connect(limner_server.address) as client:
        events = [e async for e in aio.generate_image(client, request("a downloaded fox", 11))]
        image = events[-1].completed.images[0]
        path = tmp_path / "fox.png"
        written = await aio.download_asset(client, image.asset, path)
        check_download(path, written, image)

        uploaded = await aio.upload_image(client, path)
        assert uploaded.asset.name == image.asset and not uploaded.created

        missing = tmp_path / "missing.png"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await aio.download_asset(client, "assets/" + "0" * 64, missing)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert not missing.exists() and not (tmp_path / "missing.png.part").exists()


async def test_aio_api_key_and_default_deadline_on_every_call(
    fresh_server: Callable[..., LimnerProcess],
) -> None:
    server = fresh_server(LIMNER_AUTH__API_KEYS='[{"key": "k1", "workspace": "a"}]')
    recorder = AioRecorder()
    async with aio.connect(server.address, api_key="k1", interceptors=[recorder]) as client:
        await client.models.ListModels(model_service_pb2.ListModelsRequest())
        await client.models.ListModels(model_service_pb2.ListModelsRequest(), timeout=5)
        events = [e async for e in aio.generate_image(client, request("with a key", 2))]
        assert kind(events[-1]) == "completed"
    (_, timeout, metadata), (_, own_timeout, _) = recorder.calls
    assert (timeout, own_timeout) == (30.0, 5)
    assert ("authorization", "Bearer k1") in metadata


# --- the checks a download makes, the example, the wheel ----------------------------------


def chunk(offset: int, data: bytes, size: int = 0) -> image_service_pb2.ReadAssetContentResponse:
    response = image_service_pb2.ReadAssetContentResponse(offset=offset, data=data)
    if size:
        response.asset.size_bytes = size
    return response


def test_a_download_that_does_not_match_its_asset_is_refused() -> None:
    good = b"hello world"
    name = "assets/" + hashlib.sha256(good).hexdigest()
    checker = ChunkChecker(name)
    checker.add(chunk(0, good[:5], size=len(good)))
    checker.add(chunk(5, good[5:]))
    assert checker.finish() == len(good)

    wrong_content = ChunkChecker(name)
    wrong_content.add(chunk(0, b"hello WORLD", size=len(good)))
    with pytest.raises(DownloadError, match="sha256"):
        wrong_content.finish()

    short = ChunkChecker(name)
    short.add(chunk(0, good[:5], size=len(good)))
    with pytest.raises(DownloadError, match="got 5 bytes, the asset has 11"):
        short.finish()

    with pytest.raises(DownloadError, match="offset 6, expected 5"):
        gap = ChunkChecker(name)
        gap.add(chunk(0, good[:5], size=len(good)))
        gap.add(chunk(6, good[6:]))


@pytest.mark.parametrize("flavour", [[], ["--asyncio"]])
def test_example_generates_and_saves_an_image(
    limner_server: LimnerProcess, tmp_path: Path, flavour: list[str]
) -> None:
    out = tmp_path / "lighthouse.png"
    result = run(
        [sys.executable, str(EXAMPLE), *flavour, "a lighthouse", str(out)],
        env={"LIMNER_ADDR": limner_server.address},
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    assert "completed" in result.stdout and out.read_bytes().startswith(b"\x89PNG")


@pytest.mark.timeout(180)
def test_the_client_wheel_needs_only_grpc_protobuf_and_googleapis(tmp_path: Path) -> None:
    # No build isolation: the build uses this venv's setuptools, so no index is needed.
    # From a copy: an in-tree build leaves clients/python/build/, whose stale files would
    # go into later wheels.
    source = tmp_path / "source"
    shutil.copytree(PYTHON_CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    built = subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = tmp_path.glob("limner_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (metadata_name,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = archive.read(metadata_name).decode()
    requires = re.findall(r"^Requires-Dist: ([A-Za-z0-9_.-]+)", metadata, re.MULTILINE)
    assert requires and set(requires) <= ALLOWED_REQUIREMENTS, requires
    # The stubs and the helpers, typed; no limner/__init__.py (a namespace package), and
    # nothing of the server.
    assert "limner/v1/image_service_pb2.py" in names and "limner/v1/py.typed" in names
    assert "limner/v1/image_service_pb2.pyi" in names
    assert "limner/client/sync.py" in names and "limner/client/py.typed" in names
    assert "limner/__init__.py" not in names
    top = {n.split("/")[1] for n in names if n.startswith("limner/")}
    assert top == {"v1", "client"}, top
