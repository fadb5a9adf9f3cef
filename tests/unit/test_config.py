"""Strict configuration: every unknown key, bad value and unusable file is refused with
lines that name the key, where it came from (file, LIMNER_* variable or flag) and a close
match; ``limner config check`` prints the effective settings with secrets masked."""

from __future__ import annotations

import errno
import os
import socket
import textwrap
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from limner.config import NOT_SETTINGS, effective_toml, unknown_keys
from limner.providers import PROVIDER_KINDS
from limner.settings import Section, Settings
from limner.startup import (
    AddressUnavailableError,
    ConfigFileError,
    ConfigSyntaxError,
    DataDirError,
    ExitCode,
    InvalidSettingError,
    StartupError,
    UnknownSettingError,
    check_address,
    exit_codes_help,
    mask_url,
    prepare_data_dir,
    reported,
    split_address,
)

KINDS = ", ".join(sorted(PROVIDER_KINDS))


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LIMNER_* variable from the caller's shell; files are named relative to tmp_path."""
    for name in list(os.environ):
        if name.upper().startswith("LIMNER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write(text: str, name: str = "limner.toml") -> Path:
    path = Path(name)
    path.write_text(textwrap.dedent(text))
    return path


def failure(error_type: type[StartupError], *args: Any, **overrides: Any) -> StartupError:
    with pytest.raises(error_type) as caught:
        Settings.load(*args, **overrides)
    return caught.value


def load_lines(text: str, error_type: type[StartupError] = InvalidSettingError) -> list[str]:
    return list(failure(error_type, write(text)).lines)


# --- unknown keys --------------------------------------------------------------------------


def test_a_misspelt_section_names_the_file_and_the_closest_key():
    error = failure(UnknownSettingError, write('[provders.x]\nkind = "openai"\n'))
    assert error.lines == ('limner.toml: unknown key "provders" (did you mean "providers"?)',)
    assert error.exit_code == ExitCode.UNKNOWN_SETTING == 5


def test_a_misspelt_key_in_a_section():
    lines = load_lines("[jobs]\ntimeout = 5\n", UnknownSettingError)
    assert lines == ['limner.toml: unknown key "jobs.timeout" (did you mean "jobs.timeout_s"?)']


def test_unknown_keys_in_providers_models_and_lists_are_all_reported():
    lines = load_lines(
        """
        colour = "blue"

        [providers.local-sd]
        kind = "automatic1111"
        base_ulr = "http://127.0.0.1:7860"

        [[models]]
        id = "sdxl"
        provider = "local-sd"
        provider_model_id = "x"
        output_modality = ["image"]
        profile = { supports_sed = true }

        [[auth.api_keys]]
        key = "k"
        workspaces = "acme"
        """,
        UnknownSettingError,
    )
    assert lines == [
        'limner.toml: unknown key "colour"',
        'limner.toml: unknown key "providers.local-sd.base_ulr" '
        '(did you mean "providers.local-sd.base_url"?)',
        'limner.toml: unknown key "models[0].output_modality" '
        '(did you mean "models[0].output_modalities"?)',
        'limner.toml: unknown key "models[0].profile.supports_sed" '
        '(did you mean "models[0].profile.supports_seed"?)',
        'limner.toml: unknown key "auth.api_keys[0].workspaces" '
        '(did you mean "auth.api_keys[0].workspace"?)',
    ]


def test_unknown_environment_variables_name_the_variable_and_the_right_spelling(monkeypatch):
    monkeypatch.setenv("LIMNER_ADRESS", "127.0.0.1:1")
    monkeypatch.setenv("LIMNER_JOBS__TIMEOUT", "5")
    monkeypatch.setenv("LIMNER_PROVIDERS__OA__APIKEY", "sk-1")
    monkeypatch.setenv("LIMNER_ADDRESS__PORT", "1")
    error = failure(UnknownSettingError)
    assert error.lines == (
        'LIMNER_ADDRESS__PORT: unknown key "address.port" (address has no keys)',
        'LIMNER_ADRESS: unknown key "adress" (did you mean "LIMNER_ADDRESS"?)',
        'LIMNER_JOBS__TIMEOUT: unknown key "jobs.timeout" (did you mean "LIMNER_JOBS__TIMEOUT_S"?)',
        'LIMNER_PROVIDERS__OA__APIKEY: unknown key "providers.oa.apikey" '
        '(did you mean "LIMNER_PROVIDERS__OA__API_KEY"?)',
    )


def test_unknown_keys_inside_a_json_variable(monkeypatch):
    monkeypatch.setenv("LIMNER_AUTH__API_KEYS", '[{"key": "k", "workspce": "a"}]')
    assert failure(UnknownSettingError).lines == (
        'LIMNER_AUTH__API_KEYS: unknown key "auth.api_keys[0].workspce" '
        '(did you mean "auth.api_keys[0].workspace"?)',
    )


def test_variables_of_the_client_and_the_tooling_are_not_settings(monkeypatch):
    for name in NOT_SETTINGS:
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("LIMNER_CONFIG_FILE")
    assert Settings.load(None).address == "127.0.0.1:50051"


def test_an_unknown_override_is_refused():
    error = failure(UnknownSettingError, None, jobs={"timeout": 5})
    assert error.lines == ('--jobs: unknown key "jobs.timeout" (did you mean "jobs.timeout_s"?)',)


def _sections(model: type[BaseModel], seen: set[type[BaseModel]]) -> None:
    for field in model.model_fields.values():
        stack: list[Any] = [field.annotation]
        while stack:
            annotation = stack.pop()
            stack += get_args(annotation)
            model = annotation if isinstance(annotation, type) else None
            if model and issubclass(model, BaseModel) and model not in seen:
                seen.add(model)
                _sections(model, seen)


def test_every_settings_section_refuses_unknown_keys():
    """A section added later must inherit ``Section`` (extra keys forbidden) too."""
    sections: set[type[BaseModel]] = set()
    _sections(Settings, sections)
    assert sections, "Settings has sections"
    plain = sorted(
        s.__name__
        for s in sections
        if s.model_config.get("extra") != "forbid" and "SecretStr" not in s.__name__
    )
    assert plain == [], f"inherit limner.settings.Section: {plain}"
    assert all(issubclass(s, Section) for s in sections if s.__module__ == "limner.settings")


@pytest.mark.parametrize(
    "section",
    sorted(
        name
        for name, field in Settings.model_fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
    ),
)
def test_an_unknown_key_in_any_section_is_refused_from_file_and_environment(section, monkeypatch):
    lines = load_lines(f"[{section}]\nno_such_key = 1\n", UnknownSettingError)
    assert lines == [f'limner.toml: unknown key "{section}.no_such_key"']
    Path("limner.toml").unlink()
    monkeypatch.setenv(f"LIMNER_{section.upper()}__NO_SUCH_KEY", "1")
    assert failure(UnknownSettingError).lines == (
        f'LIMNER_{section.upper()}__NO_SUCH_KEY: unknown key "{section}.no_such_key"',
    )


def test_unknown_keys_walks_nested_annotations():
    found = list(unknown_keys(Settings, {"providers": {"a": {"kind": "offline", "x": 1}}}))
    assert found[0][0] == ("providers", "a", "x")


# --- bad values ----------------------------------------------------------------------------


def test_an_unknown_provider_kind_lists_the_known_ones():
    lines = load_lines('[providers.x]\nkind = "automatic111"\n')
    assert lines == [
        'limner.toml: providers.x.kind: unknown provider kind "automatic111" '
        f'(did you mean "automatic1111"?); known kinds: {KINDS}'
    ]


def test_a_model_without_output_modalities():
    lines = load_lines(
        """
        [[models]]
        id = "sdxl"
        provider = "offline"
        provider_model_id = "x"
        output_modalities = []
        """
    )
    assert lines == [
        'limner.toml: models[0].output_modalities: model "sdxl" has no output modality; '
        'list "image" and/or "text"'
    ]


def test_a_model_naming_a_provider_that_is_not_configured():
    lines = load_lines(
        """
        [providers.local-sd]
        kind = "automatic1111"

        [[models]]
        id = "sdxl"
        provider = "local-sb"
        provider_model_id = "x"
        """
    )
    assert lines == [
        'limner.toml: models[0].provider: model "sdxl" names provider "local-sb", which is '
        'not configured (did you mean "local-sd"?); configured providers: local-sd, offline'
    ]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (
            "localhost",
            '"localhost" has no port; use HOST:PORT, e.g. "localhost:50051" '
            "(port 0 picks a free one)",
        ),
        (
            "localhost:",
            '"localhost:" has no port number after the colon; use HOST:PORT, e.g. '
            '"127.0.0.1:50051" (port 0 picks a free one)',
        ),
        (
            ":50051",
            '":50051" has no host; use HOST:PORT, e.g. "127.0.0.1:50051" (port 0 picks a free one)',
        ),
        ("127.0.0.1:70000", '"127.0.0.1:70000": port 70000 is out of range (0-65535)'),
        ("::1:50051", '"::1:50051": write an IPv6 address in brackets, e.g. "[::1]:50051"'),
        ("[::1]", '"[::1]" has no port; use [IPV6]:PORT, e.g. "[::1]:50051"'),
    ],
)
def test_an_address_needs_a_host_and_a_port(address, message, monkeypatch):
    assert failure(InvalidSettingError, None, address=address).lines == (f"--address: {message}",)
    monkeypatch.setenv("LIMNER_ADDRESS", address)
    assert failure(InvalidSettingError).lines == (f"LIMNER_ADDRESS: {message}",)


@pytest.mark.parametrize("address", ["127.0.0.1:0", "localhost:50051", "[::]:8080", "0.0.0.0:1"])
def test_good_addresses(address):
    assert Settings.load(None, address=address).address == address
    assert split_address(address)[1] == int(address.rsplit(":", 1)[1])


def test_bad_choices_name_the_allowed_values():
    lines = load_lines(
        """
        log_format = "yaml"
        log_level = "loud"

        [http]
        transport = "curl"
        """
    )
    assert lines == [
        'limner.toml: log_level: "loud" is not valid; expected "DEBUG", "INFO", "WARNING", '
        '"ERROR" or "CRITICAL"',
        'limner.toml: log_format: "yaml" is not valid; expected "text" or "json"',
        'limner.toml: http.transport: "curl" is not valid; expected "httpx" or "aiohttp"',
    ]


def test_log_level_is_case_insensitive():
    assert Settings.load(None, log_level="debug").log_level == "DEBUG"


def test_a_value_is_reported_from_the_source_that_gave_it(monkeypatch):
    path = write('[jobs]\ntimeout_s = "soon"\nmax_attempts = "many"\n')
    monkeypatch.setenv("LIMNER_JOBS__MAX_ATTEMPTS", "lots")
    error = failure(InvalidSettingError, path, log_format="xml")
    assert error.lines == (
        '--log-format: "xml" is not valid; expected "text" or "json"',
        "limner.toml: jobs.timeout_s: input should be a valid number, unable to parse string "
        'as a number (got "soon")',
        "LIMNER_JOBS__MAX_ATTEMPTS: input should be a valid integer, unable to parse string as "
        'an integer (got "lots")',
    )
    assert error.exit_code == ExitCode.INVALID_SETTING == 6


def test_a_provider_made_only_by_a_variable_needs_its_kind(monkeypatch):
    monkeypatch.setenv("LIMNER_PROVIDERS__OA__API_KEY", "sk-secret")
    error = failure(InvalidSettingError)
    assert error.lines == (
        'LIMNER_PROVIDERS__OA__API_KEY: providers.oa: missing required key "kind"',
    )
    assert "sk-secret" not in str(error)


def test_a_key_in_the_file_can_come_from_the_environment(monkeypatch):
    write('[providers.oa]\nkind = "openai"\n')
    monkeypatch.setenv("LIMNER_CONFIG_FILE", "limner.toml")
    monkeypatch.setenv("LIMNER_PROVIDERS__OA__API_KEY", "sk-secret")
    settings = Settings.load(None)
    key = settings.providers["oa"].api_key
    assert key is not None and key.get_secret_value() == "sk-secret"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://root:hunter2@db/limner",
            '"mysql://root:***@db/limner" is not a database URL Limner can use; use '
            "sqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DATABASE",
        ),
        (
            "postgresql://root:hunter2@db/limner",
            '"postgresql://root:***@db/limner": Limner talks to PostgreSQL through asyncpg; use '
            "postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DATABASE",
        ),
        (
            "limner.db",
            '"limner.db" is not a database URL Limner can use; use sqlite:///PATH or '
            "postgresql+asyncpg://USER:PASSWORD@HOST[:PORT]/DATABASE",
        ),
    ],
)
def test_a_bad_database_url_has_its_own_exit_code_and_hides_the_password(url, message, monkeypatch):
    monkeypatch.setenv("LIMNER_DATABASE_URL", url)
    error = failure(InvalidSettingError)
    assert error.lines == (f"LIMNER_DATABASE_URL: {message}",)
    assert error.exit_code == ExitCode.DATABASE_URL == 8
    assert "hunter2" not in str(error)


@pytest.mark.parametrize(
    "url",
    ["", "sqlite:///x.db", "sqlite+aiosqlite:///x.db", "postgresql+asyncpg://u:p@h:5432/d"],
)
def test_good_database_urls(url):
    assert Settings.load(None, database_url=url).database_url == url


def test_a_disabled_provider_is_still_configured():
    settings = Settings.load(
        None,
        providers={"offline": {"kind": "offline", "enabled": False}},
        models=[{"id": "m", "provider": "offline", "provider_model_id": "x"}],
    )
    assert settings.providers["offline"].enabled is False


# --- the file ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (
            'address = "127.0.0.1:1"\n[jobs\n',
            "limner.toml:2:6: not valid TOML: Expected ']' at the end of a table declaration",
        ),
        ("log_level = \n", "limner.toml:1:13: not valid TOML: Invalid value"),
        ("[a]\nx = 1\n[a]\n", "limner.toml:3:3: not valid TOML: Cannot declare ('a',) twice"),
        ('x = "unterminated\n', "limner.toml:1:18: not valid TOML: Illegal character '\\n'"),
    ],
)
def test_toml_syntax_errors_name_the_file_line_and_column(text, line):
    error = failure(ConfigSyntaxError, write(text))
    assert error.lines == (line,)
    assert error.exit_code == ExitCode.CONFIG_SYNTAX == 4


def test_a_file_that_is_not_utf8():
    Path("limner.toml").write_bytes(b'# ok\nname = "\xff"\n')
    assert failure(ConfigSyntaxError, Path("limner.toml")).lines == (
        "limner.toml:2: not valid TOML: not UTF-8 text",
    )


def test_a_missing_file(monkeypatch):
    error = failure(ConfigFileError, Path("missing.toml"))
    assert error.lines == ('configuration file "missing.toml" does not exist',)
    assert error.exit_code == ExitCode.CONFIG_FILE == 3
    monkeypatch.setenv("LIMNER_CONFIG_FILE", "gone.toml")
    assert failure(ConfigFileError).lines == (
        'configuration file "gone.toml" (named by LIMNER_CONFIG_FILE) does not exist',
    )


def test_a_directory_is_not_a_file():
    Path("conf").mkdir()
    assert failure(ConfigFileError, Path("conf")).lines == (
        'configuration file "conf" is a directory',
    )


# --- config check output -------------------------------------------------------------------


def test_effective_settings_mask_every_secret_and_read_back_as_toml(monkeypatch):
    write(
        """
        [[auth.api_keys]]
        key = "client-secret-1"
        workspace = "acme"

        [providers.oa]
        kind = "openai"
        api_key = "sk-provider-secret"
        base_url = "https://user:basic-secret@proxy.example/v1"
        extra_headers = { Authorization = "Bearer header-secret", "X-Title" = "My app" }

        [[models]]
        id = "gpt-image"
        provider = "oa"
        provider_model_id = "gpt-image-1"
        profile = { supports_edit = true, supported_sizes = ["1024x1024"] }
        """
    )
    monkeypatch.setenv("LIMNER_DATABASE_URL", "postgresql+asyncpg://limner:db-secret@db/limner")
    text = effective_toml(Settings.load(Path("limner.toml")))
    for secret in ("client-secret", "sk-provider", "basic-secret", "header-secret", "db-secret"):
        assert secret not in text
    document = tomllib.loads(text)
    assert document["database_url"] == "postgresql+asyncpg://limner:***@db/limner"
    assert document["auth"]["api_keys"] == [{"key": "**********", "workspace": "acme"}]
    provider = document["providers"]["oa"]
    assert provider["api_key"] == "**********"
    assert provider["base_url"] == "https://user:***@proxy.example/v1"
    assert provider["extra_headers"] == {"Authorization": "**********", "X-Title": "My app"}
    model = document["models"][0]
    assert model["profile"]["supported_sizes"] == ["1024x1024"]
    assert model["output_modalities"] == ["image"]
    assert document["jobs"]["timeout_s"] == 900.0


def test_unset_optional_settings_are_shown_as_comments():
    text = effective_toml(Settings.load(None))
    assert "# database_url" not in text  # "" is a value
    tomllib.loads(text)


def test_mask_url():
    assert mask_url("postgresql+asyncpg://u:p%40ss@h:5/d") == "postgresql+asyncpg://u:***@h:5/d"
    assert mask_url("sqlite:///x.db") == "sqlite:///x.db"
    assert mask_url("https://h/path?x=1") == "https://h/path?x=1"


# --- start-up checks and reporting ---------------------------------------------------------


def test_an_address_in_use():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AddressUnavailableError) as caught:
            check_address(f"127.0.0.1:{port}")
    assert caught.value.lines == (
        f"cannot listen on 127.0.0.1:{port}: the address is already in use",
        "choose another with --address or LIMNER_ADDRESS (port 0 picks a free one)",
    )
    assert caught.value.exit_code == ExitCode.ADDRESS_UNAVAILABLE == 10
    check_address("127.0.0.1:0")


def test_a_data_directory_that_cannot_be_made(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(DataDirError) as caught:
        prepare_data_dir(tmp_path / "file" / "data")
    assert caught.value.lines == (
        f'data directory "{tmp_path}/file/data" cannot be created: {os.strerror(errno.ENOTDIR)}',
    )
    with pytest.raises(DataDirError) as caught:
        prepare_data_dir(tmp_path / "file")
    assert caught.value.lines == (
        f'data directory "{tmp_path}/file" cannot be created: a file is in the way',
    )
    assert caught.value.exit_code == ExitCode.DATA_DIR == 7


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_data_directory_that_cannot_be_written(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        with pytest.raises(DataDirError) as caught:
            prepare_data_dir(locked)
    finally:
        locked.chmod(0o700)
    assert caught.value.lines == (
        f'data directory "{locked}" is not writable: {os.strerror(errno.EACCES)}',
    )


def test_reported_prints_the_lines_and_exits_with_the_code(capsys):
    with pytest.raises(SystemExit) as caught, reported():
        raise UnknownSettingError("one", "two")
    assert caught.value.code == ExitCode.UNKNOWN_SETTING
    assert capsys.readouterr().err == "limner: one\nlimner: two\n"


def test_reported_tells_unexpected_errors_in_two_lines(capsys):
    with pytest.raises(SystemExit) as caught, reported():
        raise KeyError("boom")
    assert caught.value.code == ExitCode.UNEXPECTED == 1
    assert capsys.readouterr().err == (
        "limner: unexpected error: KeyError: 'boom'\n"
        "limner: run again with --debug to see the traceback\n"
    )


def test_reported_shows_the_traceback_with_debug(capsys):
    with pytest.raises(SystemExit), reported(debug=True):
        raise DataDirError("data directory is gone")
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert err.endswith("limner: data directory is gone\n")


def test_grpc_bind_failures_are_address_errors(capsys):
    with pytest.raises(SystemExit) as caught, reported():
        raise RuntimeError(
            "Failed to bind to address 127.0.0.1:5; set GRPC_VERBOSITY=debug environment "
            "variable to see detailed error message."
        )
    assert caught.value.code == ExitCode.ADDRESS_UNAVAILABLE
    assert capsys.readouterr().err == "limner: cannot listen on 127.0.0.1:5: the bind failed\n"


def test_every_exit_code_is_documented():
    text = exit_codes_help()
    for code in ExitCode:
        assert f"\n{int(code):>3}  " in text
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for code in ExitCode:
        assert f"| {int(code)} |" in readme, f"README documents exit code {int(code)}"
