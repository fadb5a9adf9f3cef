"""Each generated client's own test suite against the real server: the Go module's
``go vet``, ``staticcheck``, ``gofmt`` and ``go test ./...``, and the TypeScript package's
``npm test`` (tsc, then ``node --test``), both with ``LIMNER_ADDR`` pointing at a
``limner serve`` process.

The suites cover the same scenarios: list models; generate and follow the stream to
completion; drop the stream mid-job and resume with ``after_sequence`` (nothing lost or
repeated), also automatically after UNAVAILABLE; a rich error's ErrorInfo and
PreconditionFailure; cancel a running job; download the asset (size, sha256) and upload it
back; the example program end to end. Their TLS cases run against two more servers (TLS, and
mTLS), named with the test CA and client certificate in ``LIMNER_TEST_*`` variables
(``tls_client_env``). Here we check that they ran (none skipped) and passed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from contract_harness import GO_CLIENT, TS_CLIENT, LimnerProcess, go_binary, npm_binary, run, tool

GO_TESTS = {
    "TestListModels",
    "TestGenerateFollowsTheStreamToCompletion",
    "TestDroppedStreamResumesWithAfterSequence",
    "TestWatchJobResumesAfterUnavailable",
    "TestRichErrorDetails",
    "TestCancelJobEndsTheStreamWithCancelled",
    "TestDownloadAndUploadAsset",
    "TestExampleGeneratesAndSavesAnImage",
    # TLS and mTLS (tls_test.go), against the tls_server and mtls_server fixtures
    "TestTLSGenerateWithACAFile",
    "TestTLSRefusesPlaintextAndUntrustingClients",
    "TestMTLSWithAClientCertificate",
    "TestMTLSRefusesAClientWithoutACertificate",
    "TestTLSConfigErrors",
    "TestExampleOverMutualTLS",
}
TS_TESTS = 8 + 6  # contract.test.ts, tls.test.ts


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"{' '.join(result.args)} exited {result.returncode}:\n{result.stdout}"


@pytest.mark.timeout(900)  # a cold build of grpc-go takes minutes on 2 cores
def test_go_client_suite(limner_server: LimnerProcess, tls_client_env: dict[str, str]) -> None:
    go = go_binary()
    env = {"LIMNER_ADDR": limner_server.address, "GOFLAGS": "-mod=readonly", **tls_client_env}

    vet = run([go, "vet", "./..."], cwd=GO_CLIENT, env=env, timeout=600)
    assert vet.returncode == 0, report(vet)
    # staticcheck's default checks, tests included; pinned in scripts/install-go-tools.
    lint = run([tool("staticcheck"), "./..."], cwd=GO_CLIENT, env=env, timeout=600)
    assert lint.returncode == 0 and lint.stdout == "", f"staticcheck: {report(lint)}"
    goroot = run([go, "env", "GOROOT"]).stdout.strip()
    gofmt = run([str(Path(goroot) / "bin" / "gofmt"), "-l", "."], cwd=GO_CLIENT)
    assert gofmt.returncode == 0 and gofmt.stdout == "", f"gofmt -l: {report(gofmt)}"

    result = run(
        [go, "test", "-count=1", "-v", "-parallel", "8", "./..."],
        cwd=GO_CLIENT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, report(result)
    passed = set(re.findall(r"^\s*--- PASS: (\w+)", result.stdout, re.MULTILINE))
    skipped = re.findall(r"^\s*--- SKIP: (\w+)", result.stdout, re.MULTILINE)
    assert not skipped, f"Go tests skipped: {skipped}\n{result.stdout}"
    assert passed >= GO_TESTS, f"Go tests that did not pass: {GO_TESTS - passed}\n{result.stdout}"


@pytest.mark.timeout(300)
def test_typescript_client_suite(
    limner_server: LimnerProcess, tls_client_env: dict[str, str]
) -> None:
    npm = npm_binary()
    result = run(
        [npm, "test", "--silent"],
        cwd=TS_CLIENT,
        env={"LIMNER_ADDR": limner_server.address, **tls_client_env},
        timeout=240,
    )
    assert result.returncode == 0, report(result)
    summary = re.findall(r"^# (pass|fail|skipped|cancelled|todo) (\d+)$", result.stdout, re.M)
    counts = {name: int(value) for name, value in summary}
    expected = {"pass": TS_TESTS, "fail": 0, "skipped": 0, "cancelled": 0, "todo": 0}
    assert counts == expected, f"node --test summary {counts}, want {expected}:\n{result.stdout}"
