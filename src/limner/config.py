"""Reads the configuration strictly, and says where a mistake is.

``Settings.load`` calls :func:`load_settings`: command-line flags over ``LIMNER_*``
environment variables over the TOML file over defaults, as before, but

- every key in the file, every ``LIMNER_*`` variable and every flag must be a setting:
  a typo is an ``UnknownSettingError`` that names the key, where it came from and the
  closest setting (``limner.toml: unknown key "provders" (did you mean "providers"?)``).
  The check follows the settings classes, so a section added later is covered without
  doing anything;
- a bad value is an ``InvalidSettingError`` naming the key and its source;
- a missing or unreadable file is a ``ConfigFileError``, a file that is not TOML a
  ``ConfigSyntaxError`` with the file, line and column.

:func:`effective_toml` prints the settings in force, secrets masked (``limner config
check``).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsError

from limner.startup import (
    MASK,
    ConfigFileError,
    ConfigSyntaxError,
    ExitCode,
    InvalidSettingError,
    SettingProblem,
    UnknownSettingError,
    mask_url,
)

ENV_PREFIX = "LIMNER_"
CONFIG_FILE_VARIABLE = "LIMNER_CONFIG_FILE"
# LIMNER_* variables that are not server settings: the configuration file's name, and the
# ones the client and the project's own tooling read. Every other LIMNER_* variable must
# name a setting. A tool that reads a new LIMNER_* variable adds it here.
NOT_SETTINGS = frozenset(
    {
        CONFIG_FILE_VARIABLE,
        "LIMNER_API_KEY",  # limner generate
        "LIMNER_CA_CERT",  # limner generate and the client examples: TLS
        "LIMNER_CLIENT_CERT",
        "LIMNER_CLIENT_KEY",
        "LIMNER_ADDR",  # the Go and TypeScript client suites
        "LIMNER_TEST_TLS_ADDR",  # their TLS cases (tests/contract sets them)
        "LIMNER_TEST_MTLS_ADDR",
        "LIMNER_TEST_CA_CERT",
        "LIMNER_TEST_CLIENT_CERT",
        "LIMNER_TEST_CLIENT_KEY",
        "LIMNER_TEST_POSTGRES_URL",  # make test
        "LIMNER_REQUIRE_TOOLCHAINS",  # CI
        "LIMNER_UPDATE_GOLDEN",  # tests/unit
        "LIMNER_BENCH_PROFILE",  # bench/
        "LIMNER_BENCH_TRACING",
        "LIMNER_PG_DIR",  # scripts/start-postgres
        "LIMNER_PG_PORT",
    }
)

Loc = tuple[str | int, ...]
S = TypeVar("S", bound=BaseSettings)


# --- where the file is, and reading it -----------------------------------------------------


def config_path(config_file: Path | None) -> tuple[Path | None, str]:
    """The file to read (``config_file``, else ``LIMNER_CONFIG_FILE``) and how it was named
    (``""`` or the variable), for messages."""
    if config_file is not None:
        return config_file, ""
    named = os.environ.get(CONFIG_FILE_VARIABLE, "")
    return (Path(named), CONFIG_FILE_VARIABLE) if named else (None, "")


_TOML_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")


def read_config_file(path: Path, named_by: str = "") -> dict[str, Any]:
    """The file's TOML document; ``ConfigFileError`` / ``ConfigSyntaxError`` otherwise."""
    by = f" (named by {named_by})" if named_by else ""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigFileError(f'configuration file "{path}"{by} does not exist') from None
    except IsADirectoryError:
        raise ConfigFileError(f'configuration file "{path}"{by} is a directory') from None
    except OSError as error:
        raise ConfigFileError(
            f'configuration file "{path}"{by} cannot be read: {error.strerror or error}'
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigSyntaxError(f"{path}:{line}: not valid TOML: not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        match = _TOML_POSITION.search(message)
        if match is None:
            position = ""
        elif match.group(1):
            position = f":{match.group(1)}:{match.group(2)}"
        else:
            position = f":{text.count(chr(10)) + 1}"
        reason = message[: match.start()] if match else message
        raise ConfigSyntaxError(f"{path}{position}: not valid TOML: {reason}") from None


# --- the shape of the settings -------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """Strips ``Annotated`` and ``None`` from a union; a union of several types stays."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """Key -> annotation of a model's fields (names and string aliases)."""
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        keys[name] = field.annotation
        if isinstance(field.alias, str):
            keys[field.alias] = field.annotation
    return keys


def _container(annotation: Any) -> tuple[str, Any] | None:
    """``("list", item type)`` or ``("dict", value type)`` for collection annotations."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset, Sequence):
        return "list", args[0] if args else Any
    if origin in (dict, Mapping):
        return "dict", args[1] if len(args) == 2 else Any
    return None


def _open(model: type[BaseModel]) -> bool:
    return model.model_config.get("extra") == "allow"


def unknown_keys(annotation: Any, value: Any, loc: Loc = ()) -> Iterator[tuple[Loc, list[str]]]:
    """Every key in ``value`` (a document for ``annotation``) that is no setting: its
    location and the keys known at its level."""
    annotation = _unwrap(annotation)
    model = _model(annotation)
    if model is not None:
        if not isinstance(value, Mapping) or _open(model):
            return
        fields = _fields(model)
        for key, item in value.items():
            if key in fields:
                yield from unknown_keys(fields[key], item, (*loc, key))
            else:
                yield (*loc, key), list(fields)
        return
    container = _container(annotation)
    if container is None:
        return
    kind, inner = container
    if kind == "list" and isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from unknown_keys(inner, item, (*loc, index))
    elif kind == "dict" and isinstance(value, Mapping):
        for key, item in value.items():
            yield from unknown_keys(inner, item, (*loc, key))


def dotted(loc: Loc) -> str:
    """``providers.local-sd.kind``, ``models[0].profile``."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            text += f".{part}" if text else part
        else:
            text += f".{json.dumps(part)}" if text else json.dumps(part)
    return text


def _closest(key: str, known: list[str]) -> str | None:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return match[0] if match else None


def _unknown_in_document(annotation: Any, data: Any, label: str, root: Loc = ()) -> list[str]:
    lines = []
    for loc, known in unknown_keys(annotation, data, root):
        key, parent = loc[-1], loc[:-1]
        match = _closest(key, known) if isinstance(key, str) else None
        hint = f' (did you mean "{dotted((*parent, match))}"?)' if match else ""
        lines.append(f'{label}: unknown key "{dotted(loc)}"{hint}')
    return lines


# --- LIMNER_* variables --------------------------------------------------------------------


def _env_name(segments: Sequence[str | int]) -> str:
    return ENV_PREFIX + "__".join(str(s) for s in segments).upper()


def settings_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """The ``LIMNER_*`` variables that must be settings."""
    return {
        name: value
        for name, value in environ.items()
        if name.upper().startswith(ENV_PREFIX) and name.upper() not in NOT_SETTINGS
    }


def _variable_problems(
    cls: type[BaseModel], variables: Mapping[str, str]
) -> tuple[list[str], dict[str, Loc]]:
    """Unknown-key lines for the variables, and each known variable's location."""
    lines: list[str] = []
    locations: dict[str, Loc] = {}
    for name, value in sorted(variables.items()):
        segments = name[len(ENV_PREFIX) :].lower().split("__")
        annotation: Any = cls
        loc: Loc = ()
        problem = ""
        for index, segment in enumerate(segments):
            annotation = _unwrap(annotation)
            model = _model(annotation)
            container = _container(annotation)
            if model is not None and not _open(model):
                fields = _fields(model)
                if segment not in fields:
                    match = _closest(segment, list(fields))
                    suggestion = _env_name([*segments[:index], match]) if match else ""
                    hint = f' (did you mean "{suggestion}"?)' if match else ""
                    problem = f'{name}: unknown key "{dotted((*loc, segment))}"{hint}'
                    break
                annotation = fields[segment]
            elif container is not None and container[0] == "dict":
                annotation = container[1]
            elif model is None:
                problem = (
                    f'{name}: unknown key "{dotted((*loc, segment))}" ({dotted(loc)} has no keys)'
                )
                break
            loc = (*loc, segment)
        if problem:
            lines.append(problem)
            continue
        locations[name] = loc
        # A section or list given as JSON (LIMNER_AUTH__API_KEYS='[{"key": ...}]').
        if _model(_unwrap(annotation)) or _container(_unwrap(annotation)):
            try:
                document = json.loads(value)
            except ValueError:
                continue
            lines += _unknown_in_document(annotation, document, name, loc)
    return lines, locations


# --- loading -------------------------------------------------------------------------------


def _merge(base: dict[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _holds(document: Any, loc: Loc) -> bool:
    for part in loc:
        if isinstance(part, int) and isinstance(document, list | tuple):
            if part >= len(document):
                return False
            document = document[part]
        elif isinstance(part, str) and isinstance(document, Mapping):
            if part not in document:
                return False
            document = document[part]
        else:
            return False
    return True


@dataclass
class _Sources:
    """Where each value came from, for messages."""

    flags: Mapping[str, Any]
    variables: dict[str, Loc]
    file_label: str
    file_data: Mapping[str, Any]

    def label(self, loc: Loc) -> tuple[str, Loc]:
        """The source that gave ``loc`` (or its nearest parent), and the location to name
        after it (empty when the source's name says it all)."""
        for size in range(len(loc), 0, -1):
            at = loc[:size]
            if _holds(self.flags, at):
                return f"--{str(at[0]).replace('_', '-')}", loc[1:]
            for name, covered in self.variables.items():
                if at[: len(covered)] == covered:
                    return name, loc[len(covered) :]
            if self.file_label and _holds(self.file_data, at):
                return self.file_label, loc
        # Nothing holds the key itself (a required key no source gave): the variable that
        # made its section, if one did.
        for size in range(len(loc), 0, -1):
            for name, covered in self.variables.items():
                if covered[:size] == loc[:size]:
                    return name, loc
        return self.file_label or "settings", loc


def _quote(value: Any) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


_SECRET_KEY = re.compile(r"(?i)key|secret|password|token|database_url")


def _message(error: Any, loc: Loc) -> tuple[str, Loc]:
    """The sentence for one pydantic error, and the location it is about."""
    kind = error["type"]
    context = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return f'missing required key "{loc[-1]}"', loc[:-1]
    if kind == "literal_error":
        expected = str(context.get("expected", "")).replace("'", '"')
        return f"{_quote(value)} is not valid; expected {expected}", loc
    if kind == "value_error":
        return str(context.get("error") or error["msg"]), loc
    message = str(error["msg"])
    message = message[:1].lower() + message[1:]
    secret = any(isinstance(p, str) and _SECRET_KEY.search(p) for p in loc)
    if not secret and isinstance(value, str | int | float | bool) and len(str(value)) <= 60:
        message += f" (got {_quote(value)})"
    return message, loc


def _invalid(error: ValidationError, sources: _Sources) -> InvalidSettingError:
    lines = []
    code: ExitCode | None = None
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        loc: Loc = tuple(item["loc"])
        if isinstance(cause, SettingProblem):
            loc = cause.loc if cause.loc is not None else loc
            code = code or cause.exit_code
        code = code or ExitCode.INVALID_SETTING
        text, about = _message(item, loc)
        label, rest = sources.label(about)
        lines.append(f"{label}: {dotted(rest)}: {text}" if rest else f"{label}: {text}")
    return InvalidSettingError(*lines, exit_code=code)


def load_settings(cls: type[S], config_file: Path | None, overrides: Mapping[str, Any]) -> S:
    """Flags (``overrides``) > ``LIMNER_*`` variables > the TOML file > defaults, checked.
    Raises ``StartupError`` subclasses with lines for the operator."""
    path, named_by = config_path(config_file)
    file_data = read_config_file(path, named_by) if path is not None else {}
    file_label = str(path) if path is not None else ""

    problems = _unknown_in_document(cls, file_data, file_label) if path is not None else []
    variable_lines, variables = _variable_problems(cls, settings_variables(os.environ))
    problems += variable_lines
    for key, value in overrides.items():
        problems += _unknown_in_document(cls, {key: value}, f"--{key.replace('_', '-')}")
    if problems:
        raise UnknownSettingError(*problems)

    try:
        env_data = EnvSettingsSource(cls)()
    except SettingsError as error:
        raise InvalidSettingError(f"environment: {error}") from None
    merged = _merge(_merge(file_data, env_data), overrides)
    try:
        return cls.model_validate(merged)
    except ValidationError as error:
        sources = _Sources(overrides, variables, file_label, file_data)
        raise _invalid(error, sources) from None


# --- printing ------------------------------------------------------------------------------

_SECRET_ENTRY = re.compile(r"(?i)authorization|api[-_]?key|token|secret|password|cookie")


def _masked(value: Any, key: str = "") -> Any:
    if isinstance(value, Mapping):
        return {k: _masked(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, key) for v in value]
    if isinstance(value, str):
        if value and _SECRET_ENTRY.search(key):
            return MASK
        return mask_url(value)
    return value


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        items = ", ".join(
            f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items() if v is not None
        )
        return f"{{ {items} }}" if items else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value))


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping) and bool(value)


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _toml_table(lines: list[str], path: list[str], table: Mapping[str, Any], array: bool) -> None:
    plain = [(k, v) for k, v in table.items() if not _is_table(v) and not _is_table_array(v)]
    header = ".".join(_toml_key(p) for p in path)
    if array:
        lines += ["", f"[[{header}]]"]
    elif path and (plain or not table):
        lines += ["", f"[{header}]"]
    lines += [
        f"# {_toml_key(k)}: not set" if v is None else f"{_toml_key(k)} = {_toml_value(v)}"
        for k, v in plain
    ]
    for key, value in table.items():
        if _is_table(value):
            _toml_table(lines, [*path, key], value, array=False)
        elif _is_table_array(value):
            for item in value:
                _toml_table(lines, [*path, key], item, array=True)


def effective_toml(settings: BaseModel) -> str:
    """The settings in force as TOML, secrets masked (``SecretStr`` values, passwords in
    URLs, headers and keys that look like credentials)."""
    lines: list[str] = []
    _toml_table(lines, [], _masked(settings.model_dump(mode="json")), array=False)
    return "\n".join(lines).strip() + "\n"
