"""Fixtures for the contract tests: see contract_harness for what they start and why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from contract_harness import LimnerProcess, start_server
from tls_certs import TlsFiles, make_tls_files


@pytest.fixture(scope="module")
def limner_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LimnerProcess]:
    """One server per test module, for the client suites and the grpcurl/health checks."""
    server = start_server(tmp_path_factory.mktemp("contract") / "data")
    try:
        yield server
    finally:
        server.terminate()
        server.wait()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A test CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def _tls_server_env(files: TlsFiles, *, mutual: bool) -> dict[str, str]:
    env = {
        "LIMNER_TLS__CERT_FILE": str(files.server_cert),
        "LIMNER_TLS__KEY_FILE": str(files.server_key),
    }
    if mutual:
        env["LIMNER_TLS__CLIENT_CA_FILE"] = str(files.ca)
    return env


@pytest.fixture(scope="session")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[LimnerProcess]:
    """A server that speaks only TLS (shared by the modules that need one)."""
    server = start_server(
        tmp_path_factory.mktemp("tls-server") / "data", _tls_server_env(tls_files, mutual=False)
    )
    try:
        yield server
    finally:
        server.terminate()
        server.wait()


@pytest.fixture(scope="session")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles
) -> Iterator[LimnerProcess]:
    """A TLS server that also requires client certificates signed by the test CA."""
    server = start_server(
        tmp_path_factory.mktemp("mtls-server") / "data", _tls_server_env(tls_files, mutual=True)
    )
    try:
        yield server
    finally:
        server.terminate()
        server.wait()


@pytest.fixture
def tls_client_env(
    tls_server: LimnerProcess, mtls_server: LimnerProcess, tls_files: TlsFiles
) -> dict[str, str]:
    """What the Go and TypeScript suites' TLS tests read (clients/go/limner/tls_test.go)."""
    return {
        "LIMNER_TEST_TLS_ADDR": tls_server.address,
        "LIMNER_TEST_MTLS_ADDR": mtls_server.address,
        "LIMNER_TEST_CA_CERT": str(tls_files.ca),
        "LIMNER_TEST_CLIENT_CERT": str(tls_files.client_cert),
        "LIMNER_TEST_CLIENT_KEY": str(tls_files.client_key),
    }


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
