"""API keys in PostgreSQL: created (of a token or of a client certificate), revoked, read by id
or by certificate, listed."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg

from es_core.api_keys.model import ApiKey, Role

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_COLUMNS = "key_id, secret_sha256, cert_sha256, role, app, description, create_time, revoke_time"


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        role=Role.parse(row["role"]),
        app=row["app"],
        description=row["description"],
        create_time=row["create_time"],
        revoke_time=row["revoke_time"],
        secret_sha256=bytes(row["secret_sha256"] or b""),
        cert_sha256=bytes(row["cert_sha256"] or b""),
    )


async def insert_key(
    conn: Conn, key_id: str, secret_sha256: bytes, role: Role, app: str, description: str
) -> ApiKey:
    row = await conn.fetchrow(
        f"INSERT INTO api_keys (key_id, secret_sha256, role, app, description)"
        f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
        key_id,
        secret_sha256,
        role.label,
        app,
        description,
    )
    assert row is not None
    return _key(row)


async def insert_certificate_key(
    conn: Conn, key_id: str, cert_sha256: bytes, role: Role, app: str, description: str
) -> ApiKey | None:
    """The new key; None when a live key of the same certificate exists already."""
    row = await conn.fetchrow(
        f"INSERT INTO api_keys (key_id, cert_sha256, role, app, description)"
        f" VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING RETURNING {_COLUMNS}",
        key_id,
        cert_sha256,
        role.label,
        app,
        description,
    )
    return None if row is None else _key(row)


async def get_live_key_of_certificate(conn: Conn, cert_sha256: bytes) -> ApiKey | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE cert_sha256 = $1 AND revoke_time IS NULL",
        cert_sha256,
    )
    return None if row is None else _key(row)


async def get_key(conn: Conn, key_id: str) -> ApiKey | None:
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1", key_id)
    return None if row is None else _key(row)


async def revoke_key(conn: Conn, key_id: str) -> ApiKey | None:
    """The key, revoked now (a key revoked before keeps its first revoke time); None if unknown."""
    row = await conn.fetchrow(
        f"UPDATE api_keys SET revoke_time = coalesce(revoke_time, now()) WHERE key_id = $1"
        f" RETURNING {_COLUMNS}",
        key_id,
    )
    return None if row is None else _key(row)


async def list_keys(conn: Conn, *, include_revoked: bool) -> list[ApiKey]:
    """Oldest first."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM api_keys WHERE $1 OR revoke_time IS NULL"
        " ORDER BY create_time, key_id",
        include_revoked,
    )
    return [_key(r) for r in rows]
