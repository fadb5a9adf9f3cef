"""The `limner` CLI follows a job the way the clients do, as real processes:

- `limner generate` survives a server restart mid-job (it reconnects with backoff and
  resumes with WatchJob(after_sequence)) and saves the image;
- Ctrl-C leaves the job running, prints its name and how to follow or cancel it, and
  exits 130; `limner watch` then follows it to the end, and `limner cancel` cancels one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

import grpc
import pytest

from limner.v1 import image_service_pb2 as ipb
from limner.v1 import image_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from limner.v1 import job_service_pb2 as jpb

pytestmark = pytest.mark.timeout(120)
LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")
# The CLI as a terminal runs it. SIGINT gets Python's handler even when the test runner's
# environment ignores SIGINT (background jobs of a shell without job control inherit that).
CLI = [
    sys.executable,
    "-c",
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'limner'; from limner.cli import app; app()",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_env(**env: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("LIMNER_", "GRPC_"))}
    return {**kept, "COLUMNS": "200", **env}


def new_log(data_dir: Path) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir.with_name(f"{data_dir.name}-{time.monotonic_ns()}.log")


def read(log: Path) -> str:
    return log.read_text(errors="replace")


async def serve(data_dir: Path, address: str, **env: str) -> asyncio.subprocess.Process:
    """``limner serve`` on ``address``; its log goes to a file next to ``data_dir``."""
    log = new_log(data_dir)
    with open(log, "wb") as sink:  # noqa: ASYNC230 (an empty file, opened once)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "limner",
            "serve",
            "--address",
            address,
            "--data-dir",
            str(data_dir),
            stdout=sink,
            stderr=sink,
            env=clean_env(LIMNER_SHUTDOWN__DRAIN_S="0", LIMNER_SHUTDOWN__GRACE_S="0.2", **env),
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if LISTENING.search(read(log)):
            return process
        if process.returncode is not None:
            break
        await asyncio.sleep(0.05)
    raise AssertionError(f"limner serve did not start:\n{read(log)}")


async def stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=clean_env(),
    )


async def finish(process: asyncio.subprocess.Process, within_s: float = 60) -> tuple[int, str]:
    output, _ = await asyncio.wait_for(process.communicate(), within_s)
    return process.returncode or 0, output.decode()


async def running_job(address: str) -> job_pb2.Job:
    """The first job the server runs, once it renders (past its first step)."""
    deadline = time.monotonic() + 30
    async with grpc.aio.insecure_channel(address) as channel:
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        while time.monotonic() < deadline:
            listed = (await jobs.ListJobs(jpb.ListJobsRequest())).jobs
            if listed and listed[0].progress.step >= 1:
                return listed[0]
            await asyncio.sleep(0.1)
    raise AssertionError("no job started rendering")


async def job_state(address: str, name: str) -> int:
    async with grpc.aio.insecure_channel(address) as channel:
        jobs = job_service_pb2_grpc.JobServiceStub(channel)
        return (await jobs.GetJob(jpb.GetJobRequest(name=name))).job.state


async def test_generate_survives_a_server_restart_mid_job(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    data = tmp_path / "data"
    server = await serve(
        data, address, LIMNER_OFFLINE__STEPS="10", LIMNER_OFFLINE__STEP_DELAY_S="0.4"
    )
    out = tmp_path / "lighthouse.png"
    command = await cli(
        "generate", "a lighthouse", "--size", "64x64", "--address", address, "--out", str(out)
    )
    try:
        job = await running_job(address)
        await stop(server)  # the job is interrupted and released
        assert command.returncode is None, "the CLI gave up when the server went away"
        # The same address and data: what a restarted container or pod looks like.
        server = await serve(
            data, address, LIMNER_OFFLINE__STEPS="10", LIMNER_OFFLINE__STEP_DELAY_S="0.05"
        )
        code, output = await finish(command)
        assert code == 0, output
        assert "connection lost" in output
        assert f"saved {out}" in output.replace("\n", "")
        assert out.read_bytes().startswith(b"\x89PNG")
        resumed = await job_state(address, job.name)
        assert resumed == job_pb2.JOB_STATE_SUCCEEDED
    finally:
        if command.returncode is None:
            command.kill()
            await command.wait()
        await stop(server)


async def test_ctrl_c_leaves_the_job_running_and_says_how_to_follow_it(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    server = await serve(
        tmp_path / "data",
        address,
        LIMNER_OFFLINE__STEPS="12",
        LIMNER_OFFLINE__STEP_DELAY_S="0.25",
    )
    command = await cli("generate", "a lighthouse", "--size", "64x64", "--address", address)
    try:
        job = await running_job(address)
        command.send_signal(signal.SIGINT)  # what Ctrl-C in a terminal sends
        code, output = await finish(command, within_s=30)
        assert code == 130, output
        text = " ".join(output.split())
        assert f"interrupted: {job.name} keeps running on the server." in text, output
        assert f"limner watch {job.name} --address {address}" in text
        assert f"limner cancel {job.name} --address {address}" in text
        assert f'grpcurl -plaintext -d \'{{"name":"{job.name}"}}\' {address}' in text
        # Only the stream went: the job runs on.
        state = await job_state(address, job.name)
        assert state in (job_pb2.JOB_STATE_RUNNING, job_pb2.JOB_STATE_SUCCEEDED)

        # The printed command follows it to the end.
        out = tmp_path / "watched.png"
        watch = await cli("watch", job.name, "--address", address, "--out", str(out))
        code, output = await finish(watch)
        assert code == 0, output
        assert out.read_bytes().startswith(b"\x89PNG")
    finally:
        if command.returncode is None:
            command.kill()
            await command.wait()
        await stop(server)


async def test_cancel_cancels_a_running_job(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    server = await serve(
        tmp_path / "data", address, LIMNER_OFFLINE__STEPS="40", LIMNER_OFFLINE__STEP_DELAY_S="0.5"
    )
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            images = image_service_pb2_grpc.ImageServiceStub(channel)
            call = images.GenerateImage(ipb.GenerateImageRequest(prompt="a slow one"))
            name = (await anext(aiter(call))).event.job
            call.cancel()
        command = await cli("cancel", name.removeprefix("jobs/"), "--address", address)
        code, output = await finish(command)
        assert code == 0, output
        assert f"cancelled {name}" in output
        assert await job_state(address, name) == job_pb2.JOB_STATE_CANCELLED
    finally:
        await stop(server)
