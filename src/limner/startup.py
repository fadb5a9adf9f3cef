"""Start-up failures an operator can read.

Every mistake that stops ``limner serve`` (or ``limner config check``) from starting is a
``StartupError``: one or two lines that say what is wrong and where (the file and line, the
``LIMNER_*`` variable, the flag), and an exit code of its class (``ExitCode``). The CLI
runs its commands inside :func:`reported`, which prints those lines to stderr, without a
traceback unless ``--debug``, and exits with the code.

The checks that need the outside world live here too: the listen address can be bound
(:func:`check_address`), the data directory can be written (:func:`prepare_data_dir`), and
the database can be reached and migrated (:func:`migrate_database`). ``App.start`` runs
them first, before it builds anything else.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from limner.persistence import Database


class ExitCode(IntEnum):
    """What ``limner`` exits with. Stable: scripts and supervisors may rely on them."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CONFIG_FILE = 3
    CONFIG_SYNTAX = 4
    UNKNOWN_SETTING = 5
    INVALID_SETTING = 6
    DATA_DIR = 7
    DATABASE_URL = 8
    DATABASE_UNAVAILABLE = 9
    ADDRESS_UNAVAILABLE = 10


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "stopped cleanly (or the configuration is valid)",
    ExitCode.UNEXPECTED: "unexpected error (a bug: run again with --debug for the traceback)",
    ExitCode.USAGE: "wrong command-line usage (unknown option, bad flag value)",
    ExitCode.CONFIG_FILE: "the configuration file does not exist or cannot be read",
    ExitCode.CONFIG_SYNTAX: "the configuration file is not valid TOML",
    ExitCode.UNKNOWN_SETTING: "unknown key in the configuration file or a LIMNER_* variable",
    ExitCode.INVALID_SETTING: (
        "invalid setting: a bad value or choice, an unknown provider kind, a model without "
        "output modalities or naming a provider that is not configured, an address without "
        "a port, unusable TLS files"
    ),
    ExitCode.DATA_DIR: "the data directory cannot be created or written",
    ExitCode.DATABASE_URL: "the database URL is not one Limner can use",
    ExitCode.DATABASE_UNAVAILABLE: "the database cannot be reached or migrated",
    ExitCode.ADDRESS_UNAVAILABLE: "the listen address cannot be bound (in use, not local)",
}


def exit_codes_help() -> str:
    """The exit-code table for ``limner --help`` (one line per code)."""
    lines = ["Exit codes:"]
    lines += [f"{int(code):>3}  {meaning}" for code, meaning in EXIT_CODE_MEANINGS.items()]
    return "\n".join(lines)


class StartupError(Exception):
    """A mistake that stops the server from starting. ``lines`` are complete sentences
    for stderr (at most a few); ``exit_code`` is the class's code."""

    exit_code: ExitCode = ExitCode.UNEXPECTED

    def __init__(self, *lines: str, exit_code: ExitCode | None = None) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines
        if exit_code is not None:
            self.exit_code = exit_code


class ConfigFileError(StartupError):
    exit_code = ExitCode.CONFIG_FILE


class ConfigSyntaxError(StartupError):
    exit_code = ExitCode.CONFIG_SYNTAX


class UnknownSettingError(StartupError):
    exit_code = ExitCode.UNKNOWN_SETTING


class InvalidSettingError(StartupError):
    exit_code = ExitCode.INVALID_SETTING


class DataDirError(StartupError):
    exit_code = ExitCode.DATA_DIR


class DatabaseUnavailableError(StartupError):
    exit_code = ExitCode.DATABASE_UNAVAILABLE


class AddressUnavailableError(StartupError):
    exit_code = ExitCode.ADDRESS_UNAVAILABLE


class SettingProblem(ValueError):
    """Raised by a settings validator: its message is the whole explanation, ``loc`` (when
    given) the key it is about, in place of where pydantic found it, and ``exit_code`` the
    class when it is not ``INVALID_SETTING``."""

    def __init__(
        self,
        message: str,
        *,
        loc: tuple[str | int, ...] | None = None,
        exit_code: ExitCode = ExitCode.INVALID_SETTING,
    ) -> None:
        super().__init__(message)
        self.loc = loc
        self.exit_code = exit_code


# --- secrets -------------------------------------------------------------------------------

_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*):(?P<password>[^@/\s]*)@")
MASK = "**********"


def mask_url(url: str) -> str:
    """``scheme://user:password@host`` with the password replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m.group('head')}:***@", url)


# --- the listen address --------------------------------------------------------------------


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) -> host, port. Raises ``ValueError`` with the
    message for the operator."""
    usage = 'use HOST:PORT, e.g. "127.0.0.1:50051" (port 0 picks a free one)'
    if address.startswith("["):
        host, found, port_text = address[1:].partition("]:")
        if not found:
            raise ValueError(f'"{address}" has no port; use [IPV6]:PORT, e.g. "[::1]:50051"')
    else:
        host, found, port_text = address.rpartition(":")
        if not found:
            example = f'"{address}:50051"' if address else '"127.0.0.1:50051"'
            raise ValueError(
                f'"{address}" has no port; use HOST:PORT, e.g. {example} (port 0 picks a free one)'
            )
        if ":" in host:
            raise ValueError(f'"{address}": write an IPv6 address in brackets, e.g. "[::1]:50051"')
    if not host:
        raise ValueError(f'"{address}" has no host; {usage}')
    if not port_text.isdigit():
        raise ValueError(f'"{address}" has no port number after the colon; {usage}')
    port = int(port_text)
    if port > 65535:
        raise ValueError(f'"{address}": port {port} is out of range (0-65535)')
    return host, port


def check_address(address: str) -> None:
    """Fails with ``AddressUnavailableError`` when the address cannot be listened on: the
    host does not resolve to a local address, or the port is taken. (gRPC would say only
    "Failed to bind".) Binds and closes a socket per resolved address, as gRPC does."""
    host, port = split_address(address)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise AddressUnavailableError(
            f'cannot listen on {address}: the host "{host}" does not resolve ({error.strerror})'
        ) from None
    if port == 0:
        return
    failures: list[OSError] = []
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as error:
                failures.append(error)
            else:
                return  # gRPC listens if any of the resolved addresses binds
    if not failures:
        return
    first = failures[0]
    if first.errno == errno.EADDRINUSE:
        reason = "the address is already in use"
    elif first.errno == errno.EADDRNOTAVAIL:
        reason = f'"{host}" is not an address of this machine'
    elif first.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied (ports below 1024 need privileges)"
    else:
        reason = first.strerror or str(first)
    raise AddressUnavailableError(
        f"cannot listen on {address}: {reason}",
        "choose another with --address or LIMNER_ADDRESS (port 0 picks a free one)",
    )


# --- the data directory --------------------------------------------------------------------


def prepare_data_dir(path: Path) -> None:
    """Creates the data directory and checks that files can be written in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise DataDirError(
            f'data directory "{path}" cannot be created: a file is in the way'
        ) from None
    except OSError as error:
        raise DataDirError(
            f'data directory "{path}" cannot be created: {error.strerror or error}'
        ) from None
    try:
        handle, probe = tempfile.mkstemp(dir=path, prefix=".limner-write-check-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        raise DataDirError(
            f'data directory "{path}" is not writable: {error.strerror or error}'
        ) from None


# --- the database --------------------------------------------------------------------------


async def migrate_database(database: Database) -> None:
    """``database.migrate()``; a database that cannot be reached (or migrated) is a
    ``DatabaseUnavailableError`` naming it, password masked."""
    try:
        await database.migrate()
    except Exception as error:
        reason = _first_line(getattr(error, "orig", None) or error)
        raise DatabaseUnavailableError(
            f"cannot open the database {mask_url(database.url)}: {reason}"
        ) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# --- reporting -----------------------------------------------------------------------------


def _classify(error: BaseException) -> StartupError | None:
    if isinstance(error, StartupError):
        return error
    if isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        return _classify(error.exceptions[0])
    # gRPC's own bind failure, when the port was taken after check_address looked.
    if isinstance(error, RuntimeError) and str(error).startswith("Failed to bind to address"):
        address = str(error).removeprefix("Failed to bind to address ").split(";", 1)[0]
        return AddressUnavailableError(f"cannot listen on {address}: the bind failed")
    return None


def _say(line: str) -> None:
    sys.stderr.write(f"limner: {line}\n")


@contextmanager
def reported(debug: bool = False) -> Iterator[None]:
    """Runs a command's body: a ``StartupError`` (or an unexpected exception) becomes its
    lines on stderr and ``SystemExit`` with its code; the traceback only with ``debug``."""
    try:
        yield
    except Exception as error:
        failure = _classify(error)
        if debug:
            traceback.print_exc()
        sys.stderr.flush()
        if failure is None:
            _say(f"unexpected error: {type(error).__name__}: {_first_line(error)}")
            if not debug:
                _say("run again with --debug to see the traceback")
            raise SystemExit(ExitCode.UNEXPECTED) from None
        for line in failure.lines:
            _say(line)
        raise SystemExit(failure.exit_code) from None
