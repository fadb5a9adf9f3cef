"""Certificates made at test time for the TLS tests: a test CA, a server certificate for
127.0.0.1 and localhost, a client certificate, and a second CA with its own client
certificate (for "signed by someone else"). All keys are unencrypted EC P-256 PEM files.

Importable from every test folder (pytest puts ``tests/`` on ``sys.path`` for its
conftest); the Go and TypeScript suites get the paths through environment variables.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TlsFiles:
    ca: Path  # the test CA: signed the server and the client certificates
    server_cert: Path  # for 127.0.0.1, ::1 and localhost
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed neither of the above
    other_client_cert: Path  # a client certificate signed by other_ca
    other_client_key: Path


@dataclass(frozen=True)
class _Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Limner tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _builder(subject: str, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey):
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _ca(common_name: str) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return _Issued(cert, key)


def _leaf(ca: _Issued, common_name: str, *, server: bool) -> _Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _builder(common_name, ca.cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.IPAddress(ipaddress.ip_address("::1")),
                ]
            ),
            critical=False,
        )
    return _Issued(builder.sign(ca.key, hashes.SHA256()), key)


def _write_cert(path: Path, cert: x509.Certificate) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> Path:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


def write_encrypted_key(path: Path, source: Path, passphrase: bytes = b"secret") -> Path:
    """``source``'s key, encrypted with a passphrase (which the server refuses)."""
    key = serialization.load_pem_private_key(source.read_bytes(), password=None)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    return path


def make_tls_files(directory: Path) -> TlsFiles:
    """Writes a fresh CA, server and client certificates and keys into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("Limner test CA")
    server = _leaf(ca, "localhost", server=True)
    client = _leaf(ca, "limner-test-client", server=False)
    other_ca = _ca("Some other CA")
    other_client = _leaf(other_ca, "someone-else", server=False)
    return TlsFiles(
        ca=_write_cert(directory / "ca.pem", ca.cert),
        server_cert=_write_cert(directory / "server.pem", server.cert),
        server_key=_write_key(directory / "server.key", server.key),
        client_cert=_write_cert(directory / "client.pem", client.cert),
        client_key=_write_key(directory / "client.key", client.key),
        other_ca=_write_cert(directory / "other-ca.pem", other_ca.cert),
        other_client_cert=_write_cert(directory / "other-client.pem", other_client.cert),
        other_client_key=_write_key(directory / "other-client.key", other_client.key),
    )
