"""``limner serve`` with TLS, and the tools people use against it: grpcurl with ``-cacert``
(reflection and a streaming call over TLS; ``-cert``/``-key`` for mTLS), grpc-health-probe
with ``-tls`` (and the Dockerfile's HEALTHCHECK), and the ``limner generate`` CLI with
``--ca-cert``, ``--client-cert`` and ``--client-key``. Also how ``limner serve`` reports a
TLS file it cannot use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from contract_harness import ROOT, SERVICES, LimnerProcess, run, start_server, tool
from tls_certs import TlsFiles

# grpc-health-probe exit codes
SERVING, CONNECTION_FAILED = 0, 2


def grpcurl(*args: str, data: str | None = None) -> subprocess.CompletedProcess[str]:
    body = ["-d", data] if data is not None else []
    return run([tool("grpcurl"), *body, *args], timeout=60)


def test_grpcurl_lists_services_over_tls_with_cacert(
    tls_server: LimnerProcess, tls_files: TlsFiles
) -> None:
    result = grpcurl("-cacert", str(tls_files.ca), tls_server.address, "list")
    assert result.returncode == 0, result.stdout
    assert set(SERVICES) <= set(result.stdout.split())


def test_grpcurl_streams_generate_image_over_tls(
    tls_server: LimnerProcess, tls_files: TlsFiles
) -> None:
    body = '{"prompt":"a red fox","options":{"width":96,"height":64,"seed":7}}'
    result = grpcurl(
        "-cacert",
        str(tls_files.ca),
        tls_server.address,
        "limner.v1.ImageService/GenerateImage",
        data=body,
    )
    assert result.returncode == 0, result.stdout
    assert '"completed"' in result.stdout
    assert json.loads(result.stdout[: result.stdout.index("\n}") + 2])["event"]["snapshot"]


def test_grpcurl_is_refused_without_the_ca_or_in_plaintext(
    tls_server: LimnerProcess, tls_files: TlsFiles
) -> None:
    untrusted = grpcurl(tls_server.address, "list")
    assert untrusted.returncode != 0
    assert "certificate" in untrusted.stdout, untrusted.stdout
    other_ca = grpcurl("-cacert", str(tls_files.other_ca), tls_server.address, "list")
    assert other_ca.returncode != 0
    plaintext = grpcurl("-plaintext", tls_server.address, "list")
    assert plaintext.returncode != 0


def test_grpcurl_over_mtls_needs_a_client_certificate(
    mtls_server: LimnerProcess, tls_files: TlsFiles
) -> None:
    ca = ["-cacert", str(tls_files.ca)]
    client = ["-cert", str(tls_files.client_cert), "-key", str(tls_files.client_key)]
    listed = grpcurl(*ca, *client, mtls_server.address, "list")
    assert listed.returncode == 0, listed.stdout
    assert set(SERVICES) <= set(listed.stdout.split())

    refused = grpcurl(*ca, mtls_server.address, "list")
    assert refused.returncode != 0, refused.stdout
    stranger = [
        "-cert",
        str(tls_files.other_client_cert),
        "-key",
        str(tls_files.other_client_key),
    ]
    refused = grpcurl(*ca, *stranger, mtls_server.address, "list")
    assert refused.returncode != 0, refused.stdout


def probe(address: str, *tls_args: str, service: str = "") -> tuple[int, str]:
    args = [tool("grpc-health-probe"), "-addr", address, "-connect-timeout", "2s"]
    args += ["-rpc-timeout", "2s", *tls_args, *(["-service", service] if service else [])]
    result = run(args, timeout=15)
    return result.returncode, result.stdout.strip()


def test_health_probe_over_tls_and_mtls(
    tls_server: LimnerProcess, mtls_server: LimnerProcess, tls_files: TlsFiles
) -> None:
    tls = ["-tls", "-tls-ca-cert", str(tls_files.ca)]
    for service in ("", "limner.v1.ImageService"):
        assert probe(tls_server.address, *tls, service=service) == (SERVING, "status: SERVING")
    client = ["-tls-client-cert", str(tls_files.client_cert)]
    client += ["-tls-client-key", str(tls_files.client_key)]
    assert probe(mtls_server.address, *tls, *client) == (SERVING, "status: SERVING")
    code, output = probe(mtls_server.address, *tls)
    assert code == CONNECTION_FAILED, output
    code, output = probe(tls_server.address)  # plaintext against TLS
    assert code == CONNECTION_FAILED, output


def limner_cli(*args: str) -> subprocess.CompletedProcess[str]:
    # A wide terminal: rich wraps nothing, so each message is one line.
    return run([sys.executable, "-m", "limner", *args], env={"COLUMNS": "200"}, timeout=120)


@pytest.mark.timeout(180)
def test_limner_generate_over_mtls(
    mtls_server: LimnerProcess, tls_files: TlsFiles, tmp_path: Path
) -> None:
    out = tmp_path / "fox.png"
    tls = ["--ca-cert", str(tls_files.ca), "--client-cert", str(tls_files.client_cert)]
    tls += ["--client-key", str(tls_files.client_key)]
    common = ["--address", mtls_server.address, "--size", "96x64", "--out", str(out)]
    result = limner_cli("generate", "a fox over mTLS", *common, *tls)
    assert result.returncode == 0, result.stdout
    assert "saved" in result.stdout and out.read_bytes()[:4] == b"\x89PNG"

    refused = limner_cli("generate", "a fox", *common, "--ca-cert", str(tls_files.ca))
    assert refused.returncode == 1, refused.stdout
    assert "UNAVAILABLE" in refused.stdout


def test_limner_generate_reports_a_missing_ca_file_in_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    result = limner_cli("generate", "a fox", "--address", "127.0.0.1:1", "--ca-cert", str(missing))
    assert result.returncode == 2, result.stdout
    assert f"cannot read the CA certificate {missing}" in " ".join(result.stdout.split())
    assert "Traceback" not in result.stdout


def test_limner_serve_stops_on_a_key_that_does_not_match(
    tls_files: TlsFiles, tmp_path: Path
) -> None:
    env = {
        "LIMNER_TLS__CERT_FILE": str(tls_files.server_cert),
        "LIMNER_TLS__KEY_FILE": str(tls_files.client_key),
    }
    with pytest.raises(AssertionError, match="did not start") as raised:
        start_server(tmp_path / "data", env)
    assert (
        f"TLS: the private key {tls_files.client_key} (tls.key_file / LIMNER_TLS__KEY_FILE) "
        f"does not belong to the certificate {tls_files.server_cert}"
    ) in " ".join(str(raised.value).split())


def dockerfile_healthcheck() -> str:
    """The shell command of the Dockerfile's HEALTHCHECK."""
    text = (ROOT / "Dockerfile").read_text()
    command = re.search(r"^HEALTHCHECK .*\\\n\s+CMD (\[.*\])$", text, re.MULTILINE)
    assert command, "no HEALTHCHECK CMD in the Dockerfile"
    shell, flag, script = json.loads(command.group(1))
    assert (shell, flag) == ("/bin/sh", "-c")
    return str(script)


def test_the_docker_healthcheck_speaks_tls_and_mtls(
    limner_server: LimnerProcess,
    tls_server: LimnerProcess,
    mtls_server: LimnerProcess,
    tls_files: TlsFiles,
) -> None:
    script = dockerfile_healthcheck()
    path = f"{Path(tool('grpc-health-probe')).parent}:/usr/bin:/bin"

    def healthcheck(server: LimnerProcess, **env: str) -> int:
        # As in the image: LIMNER_ADDRESS is the listen address (0.0.0.0:<port>).
        env = {"PATH": path, "LIMNER_ADDRESS": f"0.0.0.0:{server.address.rsplit(':', 1)[1]}", **env}
        result = subprocess.run(
            ["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=20
        )
        return result.returncode

    server_tls = {"LIMNER_TLS__CERT_FILE": str(tls_files.server_cert)}
    client = {
        "LIMNER_CLIENT_CERT": str(tls_files.client_cert),
        "LIMNER_CLIENT_KEY": str(tls_files.client_key),
    }
    assert healthcheck(limner_server) == 0
    assert healthcheck(tls_server, **server_tls) == 0
    assert healthcheck(mtls_server, **server_tls, **client) == 0
    assert healthcheck(mtls_server, **server_tls) != 0, "mTLS without a client certificate"
    assert healthcheck(tls_server) != 0, "plaintext against TLS"
