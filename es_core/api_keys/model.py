"""Roles, keys as stored, and what proves a key: a bearer token or a client certificate.

A token is ``es_<key_id>_<secret>``: the key id finds the row, and only a SHA-256 of the secret
is stored. The secret is 32 random bytes, so a plain hash (no salt, no slow KDF) is enough: no
dictionary or brute force reaches a 256-bit secret, and a leaked table gives no usable token.

A key of a client certificate has no token: the SHA-256 of the certificate's DER bytes (its
fingerprint) finds the row when a caller presents it over mutual TLS."""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from es_core.errors import InvalidArgument

TOKEN_PREFIX = "es"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")
_APP = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_DESCRIPTION_CHARS = 256
# A client certificate in PEM is a few kilobytes; a chain of several, a few more.
MAX_CERT_PEM_BYTES = 64 * 1024


class Role(enum.IntEnum):
    """What a key may call; each role includes the ones below it."""

    SEARCH = 1  # search, suggest, the clickstream
    WRITE = 2  # upserts, deletes, imports, phrases
    ADMIN = 3  # fine-tuning, deployment, collections, tasks, keys

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, label: str, field: str = "role") -> Role:
        try:
            return cls[label.upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise InvalidArgument.field_error(field, f"must be one of {names}") from None


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: never its secret."""

    key_id: str
    role: Role
    app: str = ""  # "" = every app; else only this app's sessions
    description: str = ""
    create_time: datetime | None = None
    revoke_time: datetime | None = None
    secret_sha256: bytes = b""  # b"" for a key of a client certificate
    cert_sha256: bytes = b""  # the certificate's fingerprint; b"" for a key of a token

    @property
    def revoked(self) -> bool:
        return self.revoke_time is not None


@dataclass(frozen=True)
class IssuedKey:
    """A new key and the one token that proves it; the token is shown once and never stored."""

    key: ApiKey
    token: str


def new_key_id() -> str:
    return secrets.token_hex(8)


def new_token() -> tuple[str, str, bytes]:
    """(key id, token, SHA-256 of the secret) for a new key."""
    key_id = new_key_id()
    secret = secrets.token_urlsafe(32)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}", hash_secret(secret)


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def split_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed token, else None."""
    prefix, _, rest = token.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != TOKEN_PREFIX or not _KEY_ID.match(key_id) or not secret:
        return None
    return key_id, secret


def secret_matches(key: ApiKey, secret: str) -> bool:
    """Compared in constant time, so the time taken says nothing about how much matched. A key
    of a certificate has no secret: no token matches it."""
    return bool(key.secret_sha256) and hmac.compare_digest(key.secret_sha256, hash_secret(secret))


def certificate_sha256(pem: str | bytes, field: str = "client_cert_pem") -> bytes:
    """The fingerprint of the first certificate in ``pem`` (a chain starts with its leaf): the
    SHA-256 of its DER bytes (``openssl x509 -noout -fingerprint -sha256`` shows the same
    digest, in upper case with colons)."""
    data = pem.encode() if isinstance(pem, str) else pem
    if not data.strip():
        raise InvalidArgument.field_error(field, "must be a certificate in PEM")
    if len(data) > MAX_CERT_PEM_BYTES:
        raise InvalidArgument.field_error(
            field, f"must be at most {MAX_CERT_PEM_BYTES} bytes of PEM"
        )
    try:
        certificate = x509.load_pem_x509_certificate(data)
    except ValueError:
        raise InvalidArgument.field_error(
            field, "must be a certificate in PEM (-----BEGIN CERTIFICATE-----)"
        ) from None
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).digest()


def fingerprint_text(digest: bytes) -> str:
    """A fingerprint as people compare it: lowercase hex."""
    return digest.hex()


def check_app(app: str, field: str = "app") -> None:
    """ "" (every app) or a short name of letters, digits and ``_.:-``."""
    if app and not _APP.match(app):
        raise InvalidArgument.field_error(
            field, "must be at most 64 letters, digits or _.:- characters"
        )


def check_key_id(key_id: str, field: str = "key_id") -> None:
    if not _KEY_ID.match(key_id):
        raise InvalidArgument.field_error(field, "must be the 16 hex digits of a key id")


def check_description(description: str, field: str = "description") -> None:
    if len(description) > MAX_DESCRIPTION_CHARS or "\x00" in description:
        raise InvalidArgument.field_error(
            field, f"must be at most {MAX_DESCRIPTION_CHARS} characters, without NUL"
        )
