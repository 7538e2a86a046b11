"""The key use cases behind KeyService and ``es keys``: create (the token shown once, or a
client certificate registered), revoke, list. They take only a pool: the ``es keys`` command
runs them with nothing else of a server."""

from __future__ import annotations

from es_core.api_keys import store
from es_core.api_keys.model import (
    ApiKey,
    IssuedKey,
    Role,
    certificate_sha256,
    check_app,
    check_description,
    check_key_id,
    new_key_id,
    new_token,
)
from es_core.api_keys.store import Conn
from es_core.errors import AlreadyExists, NotFound


async def create_key(conn: Conn, role: Role, app: str = "", description: str = "") -> IssuedKey:
    check_app(app)
    check_description(description)
    key_id, token, secret_sha256 = new_token()
    key = await store.insert_key(conn, key_id, secret_sha256, role, app, description)
    return IssuedKey(key, token)


async def register_certificate(
    conn: Conn,
    certificate_pem: str | bytes,
    role: Role,
    app: str = "",
    description: str = "",
    field: str = "client_cert_pem",
) -> ApiKey:
    """A key proved by a client certificate (its fingerprint is stored, no token is made): a
    caller presenting it over mutual TLS, with no bearer token, gets ``role`` and ``app``."""
    check_app(app)
    check_description(description)
    fingerprint = certificate_sha256(certificate_pem, field)
    key = await store.insert_certificate_key(
        conn, new_key_id(), fingerprint, role, app, description
    )
    if key is None:
        raise AlreadyExists.field_error(
            field, "this certificate is registered already; revoke its key first"
        )
    return key


async def revoke_key(conn: Conn, key_id: str) -> ApiKey:
    """Revoked keys stay listed (with their revoke time); servers refuse them within
    ``auth_cache_seconds``."""
    check_key_id(key_id)
    key = await store.revoke_key(conn, key_id)
    if key is None:
        raise NotFound.field_error("key_id", f"key {key_id!r} does not exist")
    return key


async def list_keys(conn: Conn, *, include_revoked: bool = False) -> list[ApiKey]:
    return await store.list_keys(conn, include_revoked=include_revoked)
