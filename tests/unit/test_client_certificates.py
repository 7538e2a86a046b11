"""Client certificates as identities, without a database: fingerprints and the PEM they are read
from, the local CA's client certificates, and the TLS files `es up --mtls` prepares."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from es_cli.local_tls import (
    ClientCertificate,
    ensure_client_certificate,
    ensure_local_tls,
    issue_client_certificate,
)
from es_cli.stack import Stack
from es_core.api_keys.model import (
    MAX_CERT_PEM_BYTES,
    ApiKey,
    Role,
    certificate_sha256,
    secret_matches,
)
from es_core.config import Settings
from es_core.errors import InvalidArgument


def _der_sha256(pem: bytes) -> bytes:
    der = x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).digest()


def test_the_fingerprint_is_the_sha256_of_the_leafs_der_bytes(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path / "tls", "127.0.0.1")
    client = ensure_client_certificate(tls)
    leaf = client.cert_file.read_bytes()
    digest = certificate_sha256(leaf)
    assert digest == _der_sha256(leaf) and len(digest) == 32
    assert certificate_sha256(leaf.decode()) == digest
    # A chain (leaf first, then its CA) names its leaf.
    assert certificate_sha256(leaf + tls.ca_file.read_bytes()) == digest
    assert certificate_sha256(tls.ca_file.read_bytes()) != digest


NOT_A_CERTIFICATE = [
    "",
    "  \n",
    "hello",
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    "-----BEGIN CERTIFICATE-----\nMIIB\n",
    "x" * (MAX_CERT_PEM_BYTES + 1),
]


@pytest.mark.parametrize("pem", NOT_A_CERTIFICATE)
def test_what_is_not_a_certificate_in_pem_is_refused_naming_the_field(pem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        certificate_sha256(pem)
    assert [v.field for v in caught.value.violations] == ["client_cert_pem"]
    with pytest.raises(InvalidArgument) as caught:
        certificate_sha256(pem.encode(), field="--client-cert")
    assert [v.field for v in caught.value.violations] == ["--client-cert"]


def test_a_private_key_is_not_a_certificate(tmp_path: Path) -> None:
    client = ensure_client_certificate(ensure_local_tls(tmp_path / "tls", "127.0.0.1"))
    with pytest.raises(InvalidArgument) as caught:
        certificate_sha256(client.key_file.read_bytes())
    assert caught.value.violations[0].field == "client_cert_pem"
    assert "PRIVATE KEY" not in caught.value.message


def test_no_secret_matches_a_key_of_a_certificate() -> None:
    key = ApiKey("0123456789abcdef", Role.ADMIN, cert_sha256=b"\x01" * 32)
    assert not secret_matches(key, "")
    assert not secret_matches(key, "anything")


def test_the_local_ca_signs_client_certificates_for_client_auth_only(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path / "tls", "127.0.0.1")
    assert tls.ca_key_file.stat().st_mode & 0o077 == 0
    client = ensure_client_certificate(tls)
    ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    made = x509.load_pem_x509_certificate(client.cert_file.read_bytes())
    made.verify_directly_issued_by(ca)
    usages = made.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not made.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert client.key_file.stat().st_mode & 0o077 == 0
    # Kept: a second call returns the same files, unchanged.
    before = client.cert_file.read_bytes()
    assert ensure_client_certificate(tls) == client
    assert client.cert_file.read_bytes() == before
    # Another one, for another caller: the same CA, another certificate.
    other = ClientCertificate(tmp_path / "other.pem", tmp_path / "other-key.pem")
    issue_client_certificate(tls, other, "someone else")
    x509.load_pem_x509_certificate(other.cert_file.read_bytes()).verify_directly_issued_by(ca)
    assert certificate_sha256(other.cert_file.read_bytes()) != certificate_sha256(before)


def test_a_tls_directory_from_before_the_ca_key_was_kept_gets_a_new_ca(tmp_path: Path) -> None:
    tls = ensure_local_tls(tmp_path / "tls", "127.0.0.1")
    old_client = ensure_client_certificate(tls).cert_file.read_bytes()
    old_ca = tls.ca_file.read_bytes()
    tls.ca_key_file.unlink()
    again = ensure_local_tls(tmp_path / "tls", "127.0.0.1")
    assert again.ca_key_file.exists() and again.ca_file.read_bytes() != old_ca
    # The client certificate the old CA signed went with it; a new one is made.
    assert ensure_client_certificate(again).cert_file.read_bytes() != old_client


def _prepare(settings: Settings, directory: Path) -> tuple[Stack, dict[str, str]]:
    stack = Stack(settings)
    env: dict[str, str] = {}
    stack._prepare_tls(env, directory)
    return stack, env


def test_es_up_mtls_makes_its_own_client_certificate_and_the_server_trusts_its_ca(
    tmp_path: Path,
) -> None:
    stack, env = _prepare(Settings(local_mtls=True), tmp_path / "tls")
    assert env["ES_TLS_CERT_FILE"] == str(tmp_path / "tls" / "server.pem")
    assert stack.tls_ca_file == str(tmp_path / "tls" / "ca.pem")
    assert stack.tls_client_cert_file == str(tmp_path / "tls" / "client.pem")
    assert stack.tls_client_key_file == str(tmp_path / "tls" / "client-key.pem")
    trusted = Path(env["ES_TLS_CLIENT_CA_FILE"]).read_bytes()
    assert trusted == Path(stack.tls_ca_file).read_bytes()


def test_an_operators_client_ca_is_trusted_beside_the_local_one(tmp_path: Path) -> None:
    theirs = ensure_local_tls(tmp_path / "theirs", "127.0.0.1").ca_file
    stack, env = _prepare(Settings(local_tls=True, tls_client_ca_file=theirs), tmp_path / "tls")
    trusted = x509.load_pem_x509_certificates(Path(env["ES_TLS_CLIENT_CA_FILE"]).read_bytes())
    expected = [theirs, Path(stack.tls_ca_file)]
    assert trusted == [x509.load_pem_x509_certificate(p.read_bytes()) for p in expected]
    assert Path(stack.tls_client_cert_file).exists()


def test_plain_tls_makes_no_client_certificate_and_plaintext_makes_nothing(
    tmp_path: Path,
) -> None:
    stack, env = _prepare(Settings(local_tls=True), tmp_path / "tls")
    assert "ES_TLS_CLIENT_CA_FILE" not in env and stack.tls_client_cert_file == ""
    assert not (tmp_path / "tls" / "client.pem").exists()
    stack, env = _prepare(Settings(), tmp_path / "none")
    assert env == {} and stack.tls_ca_file == "" and not (tmp_path / "none").exists()
    # A client CA without TLS is left to the server, which refuses it naming both settings.
    stack, env = _prepare(Settings(tls_client_ca_file=tmp_path / "ca.pem"), tmp_path / "none")
    assert env == {} and not (tmp_path / "none").exists()
