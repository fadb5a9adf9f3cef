"""The server's TLS files are read and checked at start: every problem is one
``TlsConfigError`` line naming the file and the setting, raised before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_certs import TlsFiles, make_tls_files, write_encrypted_key

from limner.api.tls import TlsConfigError, server_tls
from limner.app import App
from limner.settings import Settings, TlsSettings


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def error_for(**files: Path | None) -> str:
    with pytest.raises(TlsConfigError) as raised:
        server_tls(TlsSettings(**files))
    message = str(raised.value)
    assert "\n" not in message, "one line"
    assert message.startswith("TLS: ")
    return message


def test_no_tls_settings_means_plaintext() -> None:
    assert server_tls(TlsSettings()) is None


def test_a_certificate_and_its_key_give_tls(certs: TlsFiles) -> None:
    tls = server_tls(TlsSettings(cert_file=certs.server_cert, key_file=certs.server_key))
    assert tls is not None and not tls.client_auth
    assert str(certs.server_cert) in tls.description


def test_a_client_ca_turns_on_client_certificates(certs: TlsFiles) -> None:
    tls = server_tls(
        TlsSettings(cert_file=certs.server_cert, key_file=certs.server_key, client_ca_file=certs.ca)
    )
    assert tls is not None and tls.client_auth
    assert "mTLS" in tls.description


def test_settings_come_from_the_environment(
    certs: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMNER_TLS__CERT_FILE", str(certs.server_cert))
    monkeypatch.setenv("LIMNER_TLS__KEY_FILE", str(certs.server_key))
    monkeypatch.setenv("LIMNER_TLS__CLIENT_CA_FILE", str(certs.ca))
    tls = Settings.load(None).tls
    assert (tls.cert_file, tls.key_file, tls.client_ca_file) == (
        certs.server_cert,
        certs.server_key,
        certs.ca,
    )


def test_a_certificate_without_a_key(certs: TlsFiles) -> None:
    message = error_for(cert_file=certs.server_cert)
    assert "LIMNER_TLS__CERT_FILE is set but" in message
    assert "LIMNER_TLS__KEY_FILE is not" in message


def test_a_key_without_a_certificate(certs: TlsFiles) -> None:
    message = error_for(key_file=certs.server_key)
    assert "LIMNER_TLS__KEY_FILE is set but" in message


def test_a_client_ca_without_a_server_certificate(certs: TlsFiles) -> None:
    message = error_for(client_ca_file=certs.ca)
    assert "LIMNER_TLS__CLIENT_CA_FILE is set but the server has no certificate" in message


def test_a_missing_certificate_file(certs: TlsFiles, tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    message = error_for(cert_file=missing, key_file=certs.server_key)
    assert message == (
        f"TLS: the server certificate {missing} (tls.cert_file / LIMNER_TLS__CERT_FILE) "
        "does not exist"
    )


def test_a_missing_key_file(certs: TlsFiles, tmp_path: Path) -> None:
    message = error_for(cert_file=certs.server_cert, key_file=tmp_path / "nope.key")
    assert "the server private key" in message and "does not exist" in message


def test_a_missing_client_ca_file(certs: TlsFiles, tmp_path: Path) -> None:
    message = error_for(
        cert_file=certs.server_cert, key_file=certs.server_key, client_ca_file=tmp_path / "ca"
    )
    assert "the client CA file" in message and "LIMNER_TLS__CLIENT_CA_FILE" in message


def test_an_unreadable_key(certs: TlsFiles, tmp_path: Path) -> None:
    message = error_for(cert_file=certs.server_cert, key_file=tmp_path)
    assert "is a directory, not a PEM file" in message


def test_a_key_that_belongs_to_another_certificate(certs: TlsFiles) -> None:
    message = error_for(cert_file=certs.server_cert, key_file=certs.client_key)
    assert message == (
        f"TLS: the private key {certs.client_key} (tls.key_file / LIMNER_TLS__KEY_FILE) does "
        f"not belong to the certificate {certs.server_cert} (tls.cert_file / "
        "LIMNER_TLS__CERT_FILE): use the key the certificate was issued for"
    )


def test_an_encrypted_key(certs: TlsFiles, tmp_path: Path) -> None:
    encrypted = write_encrypted_key(tmp_path / "encrypted.key", certs.server_key)
    message = error_for(cert_file=certs.server_cert, key_file=encrypted)
    assert "is encrypted with a passphrase" in message


def test_swapped_files(certs: TlsFiles) -> None:
    message = error_for(cert_file=certs.server_key, key_file=certs.server_cert)
    assert "holds no PEM certificate (it holds a private key: are the files swapped?)" in message


def test_not_pem_at_all(certs: TlsFiles, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    assert "holds no PEM certificate" in error_for(cert_file=junk, key_file=certs.server_key)
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    assert "is empty" in error_for(cert_file=empty, key_file=certs.server_key)
    assert "holds no PEM private key" in error_for(cert_file=certs.server_cert, key_file=junk)
    message = error_for(cert_file=certs.server_cert, key_file=certs.server_key, client_ca_file=junk)
    assert "the client CA file" in message and "holds no PEM certificate" in message


def test_a_damaged_certificate(certs: TlsFiles, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged.pem"
    lines = certs.server_cert.read_text().splitlines()
    damaged.write_text("\n".join([lines[0], lines[1][:20] + "AAAA" + lines[1][24:], *lines[2:]]))
    message = error_for(cert_file=damaged, key_file=certs.server_key)
    assert "holds a certificate that cannot be parsed" in message


async def test_the_server_stops_before_building_anything(certs: TlsFiles, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = Settings.load(
        None,
        address="127.0.0.1:0",
        data_dir=data_dir,
        tls={"cert_file": certs.server_cert, "key_file": certs.client_key},
    )
    app = App(settings)
    with pytest.raises(TlsConfigError, match="does not belong to the certificate"):
        await app.start()
    assert not data_dir.exists(), "nothing was created"
    await app.stop(grace_s=0)
