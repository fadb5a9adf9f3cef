"""The Java client's own test suite (clients/java, JUnit 5 under Maven) against the real
server: ``mvn -B verify`` with ``LIMNER_ADDR`` and the TLS servers' ``LIMNER_TEST_*`` variables,
as for the Go and TypeScript suites in test_clients.py.

Maven generates the stubs from proto/ (protoc and protoc-gen-grpc-java come from Maven Central
as artifacts), compiles, runs the JUnit tests, and packages the jar and the sources jar. The
first run downloads the dependencies into ~/.m2 (a few minutes); later runs are offline-friendly.
Here we check, from Surefire's XML reports, that every expected test ran (none skipped) and
passed.
"""

from __future__ import annotations

import shutil
import subprocess
import xml.etree.ElementTree as ElementTree

import pytest
from contract_harness import ROOT, LimnerProcess, require, run

JAVA_CLIENT = ROOT / "clients" / "java"

JAVA_TESTS = {
    "ContractTest.listModels",
    "ContractTest.generateFollowsTheStreamToCompletion",
    "ContractTest.droppedStreamResumesWithAfterSequence",
    "ContractTest.watchJobResumesAfterUnavailable",
    "ContractTest.richErrorDetails",
    "ContractTest.cancelJobEndsTheStreamWithCancelled",
    "ContractTest.downloadAndUploadAsset",
    "ExampleTest.exampleGeneratesAndSavesAnImage",
    # TLS and mTLS (TlsTest.java), against the tls_server and mtls_server fixtures
    "TlsTest.tlsGenerateWithACAFile",
    "TlsTest.tlsRefusesPlaintextAndUntrustingClients",
    "TlsTest.mtlsWithAClientCertificate",
    "TlsTest.mtlsRefusesAClientWithoutACertificate",
    "TlsTest.tlsConfigErrors",
    "ExampleTest.exampleOverMutualTls",
    # the client alone, against a fake ImageService on a loopback port (LocalServerTest.java)
    "LocalServerTest.apiKeyOnEveryCallAndADefaultDeadlineOnUnaryCallsOnly",
    "LocalServerTest.downloadInChunks",
    "LocalServerTest.downloadRejectsOtherContent",
    "LocalServerTest.downloadRejectsAShortContent",
    "LocalServerTest.downloadRejectsAGap",
    "LocalServerTest.badRequestAndRetryInfo",
}


def maven_binary() -> str:
    mvn = shutil.which("mvn")
    java = shutil.which("java")
    require(
        mvn is not None and java is not None,
        "Java or Maven not found: install a JDK >= 17 and Maven >= 3.8 for the Java client suite",
    )
    assert mvn is not None
    version = run([str(java), "-version"])
    found = version.stdout.split('"')[1] if '"' in version.stdout else ""
    major = found.removeprefix("1.").split(".")[0]
    require(major.isdigit() and int(major) >= 17, f"Java >= 17 needed, found {found!r}")
    return mvn


def report(result: subprocess.CompletedProcess[str]) -> str:
    return f"{' '.join(result.args)} exited {result.returncode}:\n{result.stdout[-20000:]}"


def surefire_results() -> dict[str, str]:
    """Each test case in target/surefire-reports: ``Class.method`` -> passed/failed/skipped."""
    results: dict[str, str] = {}
    for path in sorted((JAVA_CLIENT / "target" / "surefire-reports").glob("TEST-*.xml")):
        for case in ElementTree.parse(path).getroot().iter("testcase"):
            method = (case.get("name") or "").split("(", 1)[0]  # "test(Path)" -> "test"
            name = f"{case.get('classname', '').rsplit('.', 1)[-1]}.{method}"
            outcome = "passed"
            for tag in ("failure", "error", "skipped"):
                if case.find(tag) is not None:
                    outcome = "skipped" if tag == "skipped" else "failed"
            results[name] = outcome
    return results


@pytest.mark.timeout(1200)  # a cold build downloads grpc-java, protoc and the Maven plugins
def test_java_client_suite(limner_server: LimnerProcess, tls_client_env: dict[str, str]) -> None:
    mvn = maven_binary()
    env = {"LIMNER_ADDR": limner_server.address, **tls_client_env}
    # Only this run's reports count: a report left by an earlier run could hide a missing test.
    shutil.rmtree(JAVA_CLIENT / "target" / "surefire-reports", ignore_errors=True)
    result = run(
        [mvn, "-B", "-q", "-ntp", "verify"],
        cwd=JAVA_CLIENT,
        env=env,
        timeout=1100,
    )
    assert result.returncode == 0, report(result)

    results = surefire_results()
    skipped = sorted(name for name, outcome in results.items() if outcome == "skipped")
    failed = sorted(name for name, outcome in results.items() if outcome == "failed")
    assert not skipped, f"Java tests skipped: {skipped}\n{result.stdout[-5000:]}"
    assert not failed, f"Java tests failed: {failed}\n{result.stdout[-5000:]}"
    missing = JAVA_TESTS - {name for name, outcome in results.items() if outcome == "passed"}
    assert not missing, f"Java tests that did not pass: {sorted(missing)}\n{results}"

    jars = {path.name for path in (JAVA_CLIENT / "target").glob("*.jar")}
    assert {"limner-client-0.1.0.jar", "limner-client-0.1.0-sources.jar"} <= jars, jars
