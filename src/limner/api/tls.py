"""TLS for the gRPC port: reads the ``[tls]`` files once, at start, and turns them into
``grpc.ssl_server_credentials``.

Every problem with those files (missing, unreadable, not PEM, an encrypted key, a key that
belongs to another certificate, a client CA file without a certificate) raises
``TlsConfigError`` with a one-line message that names the file and the setting, before the
server builds anything else. The standard library's ``ssl`` module checks the files, so a
bad certificate is reported at start rather than as a failed handshake on the first call.
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

from limner.settings import TlsSettings
from limner.startup import ExitCode, StartupError

_SETTINGS = {
    "cert_file": "tls.cert_file / LIMNER_TLS__CERT_FILE",
    "key_file": "tls.key_file / LIMNER_TLS__KEY_FILE",
    "client_ca_file": "tls.client_ca_file / LIMNER_TLS__CLIENT_CA_FILE",
}


class TlsConfigError(StartupError):
    """A TLS setting is incomplete, or names a file that cannot be used. The message is one
    self-explanatory line (which setting, which file, what is wrong); ``limner serve``
    prints it as it is and exits with ``INVALID_SETTING``."""

    exit_code = ExitCode.INVALID_SETTING


@dataclass(frozen=True)
class ServerTls:
    """The server's TLS credentials and a description for the start-up log."""

    credentials: grpc.ServerCredentials
    client_auth: bool
    description: str


def server_tls(settings: TlsSettings) -> ServerTls | None:
    """Reads and checks the files; ``None`` when TLS is not configured (plaintext)."""
    cert_file, key_file, ca_file = settings.cert_file, settings.key_file, settings.client_ca_file
    if cert_file is None and key_file is None:
        if ca_file is not None:
            raise TlsConfigError(
                f"TLS: {_SETTINGS['client_ca_file']} is set but the server has no certificate: "
                f"set {_SETTINGS['cert_file']} and {_SETTINGS['key_file']} too"
            )
        return None
    if cert_file is None or key_file is None:
        given, missing = (
            ("cert_file", "key_file") if key_file is None else ("key_file", "cert_file")
        )
        raise TlsConfigError(
            f"TLS: {_SETTINGS[given]} is set but {_SETTINGS[missing]} is not: "
            "the server needs both its certificate and its private key"
        )

    cert = _read(cert_file, "the server certificate", "cert_file")
    key = _read(key_file, "the server private key", "key_file")
    _check_certificates(cert, cert_file, "the server certificate", "cert_file")
    _check_key(key, key_file)
    _check_pair(cert_file, key_file)

    client_ca: bytes | None = None
    if ca_file is not None:
        client_ca = _read(ca_file, "the client CA file", "client_ca_file")
        _check_certificates(client_ca, ca_file, "the client CA file", "client_ca_file")

    credentials = grpc.ssl_server_credentials(
        [(key, cert)],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )
    description = (
        f"TLS with certificate {cert_file}; clients must present a certificate signed by "
        f"{ca_file} (mTLS)"
        if ca_file is not None
        else f"TLS with certificate {cert_file}"
    )
    return ServerTls(credentials, client_auth=client_ca is not None, description=description)


def _read(path: Path, what: str, setting: str) -> bytes:
    where = f"{what} {path} ({_SETTINGS[setting]})"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TlsConfigError(f"TLS: {where} does not exist") from None
    except IsADirectoryError:
        raise TlsConfigError(f"TLS: {where} is a directory, not a PEM file") from None
    except PermissionError:
        raise TlsConfigError(
            f"TLS: {where} cannot be read: permission denied for this user"
        ) from None
    except OSError as error:
        raise TlsConfigError(f"TLS: {where} cannot be read: {error.strerror or error}") from None
    if not data.strip():
        raise TlsConfigError(f"TLS: {where} is empty")
    return data


def _check_certificates(data: bytes, path: Path, what: str, setting: str) -> None:
    """At least one PEM certificate, and every one of them parses."""
    where = f"{what} {path} ({_SETTINGS[setting]})"
    text = data.decode("ascii", errors="replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        hint = (
            " (it holds a private key: are the files swapped?)"
            if "PRIVATE KEY-----" in text
            else ""
        )
        raise TlsConfigError(f"TLS: {where} holds no PEM certificate{hint}")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    pem = "".join(block + "-----END CERTIFICATE-----\n" for block in _certificate_blocks(text))
    try:
        context.load_verify_locations(cadata=pem)
    except ssl.SSLError as error:
        raise TlsConfigError(
            f"TLS: {where} holds a certificate that cannot be parsed ({_reason(error)})"
        ) from None


def _certificate_blocks(text: str) -> list[str]:
    blocks = []
    for part in text.split("-----END CERTIFICATE-----")[:-1]:
        start = part.find("-----BEGIN CERTIFICATE-----")
        if start >= 0:
            blocks.append(part[start:])
    return blocks


def _check_key(data: bytes, path: Path) -> None:
    where = f"the server private key {path} ({_SETTINGS['key_file']})"
    text = data.decode("ascii", errors="replace")
    if "ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text:
        raise TlsConfigError(
            f"TLS: {where} is encrypted with a passphrase; give the server an unencrypted key "
            "(e.g. openssl pkey -in encrypted.key -out server.key) and protect the file instead"
        )
    if "PRIVATE KEY-----" not in text:
        hint = (
            " (it holds a certificate: are the files swapped?)"
            if "CERTIFICATE-----" in text
            else ""
        )
        raise TlsConfigError(f"TLS: {where} holds no PEM private key{hint}")


def _check_pair(cert_file: Path, key_file: Path) -> None:
    """The key must be the certificate's: OpenSSL loads both and compares them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)

    def no_passphrase() -> str:
        raise TlsConfigError(
            f"TLS: the server private key {key_file} ({_SETTINGS['key_file']}) is encrypted "
            "with a passphrase; give the server an unencrypted key"
        )

    try:
        context.load_cert_chain(cert_file, key_file, password=no_passphrase)
    except ssl.SSLError as error:
        reason = error.reason or ""
        if reason in {"KEY_VALUES_MISMATCH", "NO_CERTIFICATE_ASSIGNED"}:
            raise TlsConfigError(
                f"TLS: the private key {key_file} ({_SETTINGS['key_file']}) does not belong to "
                f"the certificate {cert_file} ({_SETTINGS['cert_file']}): use the key the "
                "certificate was issued for"
            ) from None
        raise TlsConfigError(
            f"TLS: the private key {key_file} ({_SETTINGS['key_file']}) cannot be loaded with "
            f"the certificate {cert_file}; is it a valid PEM private key? (OpenSSL: "
            f"{_reason(error)})"
        ) from None
    except OSError as error:  # the files changed since they were read
        raise TlsConfigError(
            f"TLS: {error.filename or cert_file} cannot be read: {error.strerror or error}"
        ) from None


def _reason(error: ssl.SSLError) -> str:
    """OpenSSL's reason, e.g. ``KEY_VALUES_MISMATCH`` -> ``key values mismatch``."""
    reason = error.reason or re.sub(
        r"^\[\w+\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(error.args[-1]) if error.args else ""
    )
    return (reason or "unknown error").lower().replace("_", " ")
