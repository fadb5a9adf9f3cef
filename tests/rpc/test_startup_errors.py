"""``limner serve`` and ``limner config check`` as real processes: every start-up mistake
is one or two lines on stderr (no traceback) and an exit code of its class."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from limner.providers import PROVIDER_KINDS
from limner.startup import ExitCode

pytestmark = pytest.mark.timeout(120)

KINDS = ", ".join(sorted(PROVIDER_KINDS))


def limner(
    tmp_path: Path, *args: str, config: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs ``python -m limner ARGS`` in ``tmp_path`` with only the given LIMNER_* variables;
    ``config`` is written to ``tmp_path/limner.toml``."""
    if config is not None:
        (tmp_path / "limner.toml").write_text(textwrap.dedent(config))
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("LIMNER_")}
    return subprocess.run(
        [sys.executable, "-m", "limner", *args],
        cwd=tmp_path,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def serve(tmp_path: Path, *args: str, **kwargs: str) -> subprocess.CompletedProcess[str]:
    return limner(tmp_path, "serve", "--data-dir", "data", *args, **kwargs)


# Mistakes found in the configuration: stderr is exactly these lines.
CONFIG_MISTAKES = {
    "misspelt section": (
        {"config": '[provders.x]\nkind = "openai"\n'},
        ["--config", "limner.toml"],
        ['limner.toml: unknown key "provders" (did you mean "providers"?)'],
        ExitCode.UNKNOWN_SETTING,
    ),
    "misspelt key": (
        {"config": "[jobs]\ntimeout = 5\n"},
        ["--config", "limner.toml"],
        ['limner.toml: unknown key "jobs.timeout" (did you mean "jobs.timeout_s"?)'],
        ExitCode.UNKNOWN_SETTING,
    ),
    "misspelt variable": (
        {"LIMNER_JOBS__TIMEOUT": "5"},
        [],
        [
            'LIMNER_JOBS__TIMEOUT: unknown key "jobs.timeout" '
            '(did you mean "LIMNER_JOBS__TIMEOUT_S"?)'
        ],
        ExitCode.UNKNOWN_SETTING,
    ),
    "unknown provider kind": (
        {"config": '[providers.x]\nkind = "dall-e"\n', "LIMNER_CONFIG_FILE": "limner.toml"},
        [],
        [f'limner.toml: providers.x.kind: unknown provider kind "dall-e"; known kinds: {KINDS}'],
        ExitCode.INVALID_SETTING,
    ),
    "model without output modalities": (
        {
            "config": """
                [[models]]
                id = "sdxl"
                provider = "offline"
                provider_model_id = "x"
                output_modalities = []
                """
        },
        ["--config", "limner.toml"],
        [
            'limner.toml: models[0].output_modalities: model "sdxl" has no output modality; '
            'list "image" and/or "text"'
        ],
        ExitCode.INVALID_SETTING,
    ),
    "model naming a missing provider": (
        {
            "config": """
                [[models]]
                id = "sdxl"
                provider = "local-sd"
                provider_model_id = "x"
                """
        },
        ["--config", "limner.toml"],
        [
            'limner.toml: models[0].provider: model "sdxl" names provider "local-sd", which is '
            "not configured; configured providers: offline"
        ],
        ExitCode.INVALID_SETTING,
    ),
    "address without a port": (
        {},
        ["--address", "localhost"],
        [
            '--address: "localhost" has no port; use HOST:PORT, e.g. "localhost:50051" '
            "(port 0 picks a free one)"
        ],
        ExitCode.INVALID_SETTING,
    ),
    "bad choice": (
        {"LIMNER_LOG_FORMAT": "yaml"},
        [],
        ['LIMNER_LOG_FORMAT: "yaml" is not valid; expected "text" or "json"'],
        ExitCode.INVALID_SETTING,
    ),
    "bad TOML": (
        {"config": 'address = "127.0.0.1:0"\n[jobs\n'},
        ["--config", "limner.toml"],
        ["limner.toml:2:6: not valid TOML: Expected ']' at the end of a table declaration"],
        ExitCode.CONFIG_SYNTAX,
    ),
    "missing configuration file": (
        {},
        ["--config", "nowhere.toml"],
        ['configuration file "nowhere.toml" does not exist'],
        ExitCode.CONFIG_FILE,
    ),
    "bad database URL": (
        {"LIMNER_DATABASE_URL": "mysql://root:hunter2@db/limner"},
        [],
        [
            'LIMNER_DATABASE_URL: "mysql://root:***@db/limner" is not a database URL Limner '
            "can use; use sqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DATABASE"
        ],
        ExitCode.DATABASE_URL,
    ),
}


@pytest.mark.parametrize("case", sorted(CONFIG_MISTAKES))
def test_configuration_mistakes(tmp_path, case):
    env, args, lines, code = CONFIG_MISTAKES[case]
    result = serve(tmp_path, "--address", "127.0.0.1:0", *args, **env)
    assert result.stderr == "".join(f"limner: {line}\n" for line in lines)
    assert result.returncode == code
    assert not (tmp_path / "data").exists(), "nothing was started"


def mistakes(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines ``limner:`` printed (log lines before them may vary)."""
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("limner: ")]


def test_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path, "--address", f"127.0.0.1:{port}")
    assert mistakes(result) == [
        f"limner: cannot listen on 127.0.0.1:{port}: the address is already in use",
        "limner: choose another with --address or LIMNER_ADDRESS (port 0 picks a free one)",
    ]
    assert result.returncode == ExitCode.ADDRESS_UNAVAILABLE


def test_data_directory_that_cannot_be_created(tmp_path):
    (tmp_path / "data").write_text("a file, not a directory")
    result = serve(tmp_path, "--address", "127.0.0.1:0")
    assert mistakes(result) == [
        f'limner: data directory "{tmp_path}/data" cannot be created: a file is in the way'
    ]
    assert result.returncode == ExitCode.DATA_DIR


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_data_directory_that_cannot_be_written(tmp_path):
    (tmp_path / "data").mkdir(mode=0o500)
    try:
        result = serve(tmp_path, "--address", "127.0.0.1:0")
    finally:
        (tmp_path / "data").chmod(0o700)
    assert mistakes(result) == [
        f'limner: data directory "{tmp_path}/data" is not writable: Permission denied'
    ]
    assert result.returncode == ExitCode.DATA_DIR


def test_database_that_cannot_be_reached(tmp_path):
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql+asyncpg://limner:hunter2@127.0.0.1:{port}/limner"
    result = serve(tmp_path, "--address", "127.0.0.1:0", LIMNER_DATABASE_URL=url)
    lines = mistakes(result)
    assert len(lines) == 1
    assert lines[0].startswith(
        f"limner: cannot open the database postgresql+asyncpg://limner:***@127.0.0.1:{port}/"
        "limner: "
    )
    assert "hunter2" not in result.stderr
    assert result.returncode == ExitCode.DATABASE_UNAVAILABLE


def test_debug_shows_the_traceback(tmp_path):
    result = serve(tmp_path, "--address", "localhost", "--debug")
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.endswith(
        'limner: --address: "localhost" has no port; use HOST:PORT, e.g. "localhost:50051" '
        "(port 0 picks a free one)\n"
    )
    assert result.returncode == ExitCode.INVALID_SETTING


def test_config_check_prints_the_effective_settings_with_secrets_masked(tmp_path):
    config = """
        [[auth.api_keys]]
        key = "client-secret"
        workspace = "acme"

        [providers.oa]
        kind = "openai"
        api_key = "sk-provider-secret"

        [[models]]
        id = "gpt-image"
        provider = "oa"
        provider_model_id = "gpt-image-1"
        """
    result = limner(
        tmp_path,
        "config",
        "check",
        config=config,
        LIMNER_CONFIG_FILE="limner.toml",
        LIMNER_DATABASE_URL="postgresql+asyncpg://limner:db-secret@db/limner",
        LIMNER_JOBS__TIMEOUT_S="60",
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(
        "# The configuration is valid. Configuration file: limner.toml (from LIMNER_CONFIG_FILE).\n"
    )
    for secret in ("client-secret", "sk-provider-secret", "db-secret"):
        assert secret not in result.stdout
    settings = tomllib.loads(result.stdout)
    provider = settings["providers"]["oa"]
    assert provider["kind"] == "openai" and provider["api_key"] == "**********"
    assert provider["enabled"] is True and provider["timeout_s"] == 120.0
    assert settings["auth"]["api_keys"] == [{"key": "**********", "workspace": "acme"}]
    assert settings["database_url"] == "postgresql+asyncpg://limner:***@db/limner"
    assert settings["jobs"]["timeout_s"] == 60.0
    assert settings["models"][0]["id"] == "gpt-image"


def test_config_check_refuses_what_serve_refuses(tmp_path):
    result = limner(tmp_path, "config", "check", "--config", "limner.toml", config="[jobz]\n")
    assert result.stderr == 'limner: limner.toml: unknown key "jobz" (did you mean "jobs"?)\n'
    assert result.stdout == ""
    assert result.returncode == ExitCode.UNKNOWN_SETTING


def test_version_and_help(tmp_path):
    from importlib.metadata import version

    result = limner(tmp_path, "--version")
    assert (result.returncode, result.stdout) == (0, f"limner {version('limner')}\n")
    text = limner(tmp_path, "--help", COLUMNS="200").stdout
    assert "Exit codes:" in text
    for code in ExitCode:
        assert f" {int(code):>2}  " in text, f"--help documents exit code {int(code)}"
