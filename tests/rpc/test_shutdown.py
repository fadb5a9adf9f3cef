"""`limner serve` as a real process: it logs the address it bound, stops gracefully on
SIGTERM with a job in flight, and the next start resumes that job."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import grpc
import pytest

from limner.testing.streams import collect, kinds
from limner.v1 import image_service_pb2 as ipb
from limner.v1 import image_service_pb2_grpc, job_pb2, job_service_pb2_grpc
from limner.v1 import job_service_pb2 as jpb

pytestmark = pytest.mark.timeout(60)
LISTENING = re.compile(r"listening on (127\.0\.0\.1:\d+)")


async def start_server(data_dir: Path, **env: str) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "limner",
        "serve",
        "--address",
        "127.0.0.1:0",
        "--data-dir",
        str(data_dir),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "LIMNER_SHUTDOWN__DRAIN_S": "0", **env},
    )
    assert process.stdout is not None
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        if not line:
            raise AssertionError("server exited before it was listening")
        match = LISTENING.search(line)
        if match:
            return process, match.group(1)


async def stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    assert process.stdout is not None
    output = (await asyncio.wait_for(process.stdout.read(), 20)).decode()
    return await process.wait(), output


async def test_sigterm_mid_job_then_restart_resumes_it(tmp_path):
    slow = {"LIMNER_OFFLINE__STEP_DELAY_S": "0.5", "LIMNER_SHUTDOWN__GRACE_S": "0.3"}
    process, address = await start_server(tmp_path, **slow)
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            images = image_service_pb2_grpc.ImageServiceStub(channel)
            call = images.GenerateImage(
                ipb.GenerateImageRequest(
                    prompt="a slow job", options=ipb.ImageOptions(width=64, height=64, seed=3)
                )
            )
            name = ""
            async for response in call:
                event = response.event
                name = name or event.job
                if event.progress.step >= 1:
                    break
            code, output = await stop(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, output
    assert "shutting down" in output and "stopped" in output

    process, address = await start_server(tmp_path, LIMNER_OFFLINE__STEP_DELAY_S="0")
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            jobs = job_service_pb2_grpc.JobServiceStub(channel)
            events = await collect(jobs.WatchJob(jpb.WatchJobRequest(name=name)))
            assert kinds(events)[-1] == "completed"
            warnings = [e.warning.code for e in events if e.HasField("warning")]
            assert warnings.count("JOB_INTERRUPTED") == 1 and "JOB_RESUMED" in warnings
            job = (await jobs.GetJob(jpb.GetJobRequest(name=name))).job
            assert job.state == job_pb2.JOB_STATE_SUCCEEDED and job.attempt == 2
    finally:
        code, _ = await stop(process)
    assert code == 0
