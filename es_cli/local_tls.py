"""A local CA, a server certificate it signs (``es up --tls``), and client certificates it signs
(``es up --mtls``: mutual TLS).

Made once per data directory and kept there (``tls/``): clients trust ``ca.pem``; the server
presents ``server.pem``. The server's certificate names localhost, 127.0.0.1, ::1 and the
configured gRPC host. The CA's key (``ca.key``) stays beside them to sign client certificates:
``client.pem`` for ``es up``'s own readiness probe and the operator, and any more a test or an
operator asks ``issue_client_certificate`` for. Private keys are written readable by their
owner only."""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 825
CLIENT_CERT = "client.pem"
CLIENT_KEY = "client-key.pem"


@dataclass(frozen=True)
class LocalTls:
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_key_file: Path


@dataclass(frozen=True)
class ClientCertificate:
    cert_file: Path
    key_file: Path


def ensure_local_tls(directory: Path, host: str) -> LocalTls:
    """The CA and server files in ``directory``; made when missing (kept when present). A
    directory made before the CA's key was kept gets a new CA and server certificate."""
    files = LocalTls(
        directory / "ca.pem",
        directory / "server.pem",
        directory / "server.key",
        directory / "ca.key",
    )
    if all(f.exists() for f in (files.ca_file, files.cert_file, files.key_file, files.ca_key_file)):
        return files
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Embedding Studio local CA")])
    ca = (
        _builder(ca_name, ca_name, ca_key.public_key(), CA_DAYS)
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
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Embedding Studio server")])
    server = (
        _builder(server_name, ca_name, server_key.public_key(), SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName(_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    _write_private(files.ca_key_file, ca_key)
    files.ca_file.write_bytes(ca.public_bytes(pem))
    files.cert_file.write_bytes(server.public_bytes(pem))
    _write_private(files.key_file, server_key)
    # A client certificate an earlier CA signed is of no use any more.
    for stale in (CLIENT_CERT, CLIENT_KEY):
        (directory / stale).unlink(missing_ok=True)
    return files


def ensure_client_certificate(tls: LocalTls) -> ClientCertificate:
    """``client.pem`` and ``client-key.pem`` beside the CA: made when missing (kept when
    present), for ``es up``'s readiness probe and for the operator's own tools."""
    directory = tls.ca_file.parent
    client = ClientCertificate(directory / CLIENT_CERT, directory / CLIENT_KEY)
    if not (client.cert_file.exists() and client.key_file.exists()):
        issue_client_certificate(tls, client, "Embedding Studio operator")
    return client


def issue_client_certificate(tls: LocalTls, files: ClientCertificate, name: str) -> None:
    """A new client certificate of common name ``name``, signed by the local CA, written to
    ``files`` (over what was there)."""
    ca = x509.load_pem_x509_certificate(tls.ca_file.read_bytes())
    ca_key = serialization.load_pem_private_key(tls.ca_key_file.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{tls.ca_key_file} is not the local CA's EC key")
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        _builder(subject, ca.subject, key.public_key(), CLIENT_DAYS)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(files.key_file, key)
    files.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePublicKey, days: int
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _names(host: str) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ]
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        if host and host != "localhost":
            names.append(x509.DNSName(host))
        return names
    if not address.is_unspecified and not address.is_loopback:
        names.append(x509.IPAddress(address))
    return names


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
