"""Contract-test harness: the real ``limner serve`` in a child process on 127.0.0.1:0, and
the Go/Node toolchains the client suites and debugging tools need.

The server runs as its own process (configured by environment only, as in the Dockerfile)
and prints the port it bound, so the tests here are plain synchronous functions that run
``go test``, ``npm test``, ``grpcurl`` and ``grpc-health-probe`` against it: no event loop
in this process serves the server, so blocking ``subprocess.run`` calls are safe.

The offline provider is slowed to 10 steps of 0.2 s, so a job lasts about 2 s and is still
running when a client drops its stream or cancels it.

A missing toolchain skips the tests that need it, saying what to install, unless
``LIMNER_REQUIRE_TOOLCHAINS=1`` (CI sets it): then it fails them.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = ROOT / ".tools" / "bin"
GO_CLIENT = ROOT / "clients" / "go"
TS_CLIENT = ROOT / "clients" / "typescript"

SERVICES = (
    "limner.v1.ImageService",
    "limner.v1.JobService",
    "limner.v1.ModelService",
    "limner.v1.SceneService",
    "limner.v1.DesignReferenceService",
)

SLOW_OFFLINE = {
    "LIMNER_OFFLINE__STEPS": "10",
    "LIMNER_OFFLINE__STEP_DELAY_S": "0.2",
    # Client suites run their tests in parallel: no job should wait in the queue.
    "LIMNER_JOBS__DEFAULT_PROVIDER_CONCURRENCY": "16",
    "LIMNER_JOBS__HEARTBEAT_INTERVAL_S": "1",
    "LIMNER_SHUTDOWN__DRAIN_S": "2",
    "LIMNER_SHUTDOWN__GRACE_S": "2",
}

LISTENING = re.compile(r"limner listening on (\S+:\d+)")


def require(condition: bool, reason: str) -> None:
    """Skips (or, with LIMNER_REQUIRE_TOOLCHAINS=1, fails) when a toolchain is missing."""
    if condition:
        return
    if os.environ.get("LIMNER_REQUIRE_TOOLCHAINS") == "1":
        pytest.fail(f"{reason} (LIMNER_REQUIRE_TOOLCHAINS=1)", pytrace=False)
    pytest.skip(reason)


def go_binary() -> str:
    go = shutil.which("go")
    require(go is not None, "Go toolchain not found: install Go >= 1.26 to run the Go client suite")
    assert go is not None
    return go


def tool(name: str) -> str:
    path = TOOLS_BIN / name
    require(path.is_file(), f"{path.relative_to(ROOT)} not found: run scripts/install-go-tools")
    return str(path)


def npm_binary() -> str:
    npm = shutil.which("npm")
    require(
        npm is not None and shutil.which("node") is not None,
        "Node.js not found: install Node >= 20 to run the TypeScript client suite",
    )
    require(
        (TS_CLIENT / "node_modules" / ".bin" / "tsc").exists(),
        "clients/typescript/node_modules is missing: run scripts/install-node",
    )
    assert npm is not None
    return npm


@dataclass
class LimnerProcess:
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 20.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise


def start_server(data_dir: Path, extra_env: dict[str, str] | None = None) -> LimnerProcess:
    """``python -m limner serve`` on a free loopback port; returns once it is listening."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIMNER_")}
    env.update(SLOW_OFFLINE)
    env.update(
        {
            "LIMNER_ADDRESS": "127.0.0.1:0",
            "LIMNER_DATA_DIR": str(data_dir),
            "LIMNER_LOG_LEVEL": "INFO",
        }
    )
    env.update(extra_env or {})
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / f"{data_dir.name}-server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "limner", "serve"],
            cwd=data_dir.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = LISTENING.search(log.read_text(errors="replace"))
        if found:
            return LimnerProcess(process, found.group(1), log)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise AssertionError(f"limner serve did not start:\n{log.read_text(errors='replace')}")


def run(
    args: list[str], *, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Runs a command, capturing stdout and stderr together."""
    return subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
        check=False,
    )
