"""Fixtures for the contract tests: see contract_harness for what they start and why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contract_harness import LimnerProcess, start_server


@pytest.fixture(scope="module")
def limner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimnerProcess]:
    """One server per test module, for the client suites and the grpcurl/health checks."""
    server = start_server(tmp_path_factory.mktemp("contract") / "data")
    try:
        yield server
    finally:
        server.terminate()
        server.wait()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Callable[..., LimnerProcess]]:
    """Starts servers of a test's own (to shut one down); stops whatever is left."""
    started: list[LimnerProcess] = []

    def start(**extra_env: str) -> LimnerProcess:
        server = start_server(tmp_path / f"data{len(started)}", extra_env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.terminate()
        server.wait()
