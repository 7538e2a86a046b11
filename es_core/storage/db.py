"""Connection pool set-up: pgvector codecs and the HNSW scan settings every session needs."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from pgvector.asyncpg import register_vector

from es_core.config import Settings
from es_core.errors import Unavailable, connection_reason

# What asyncpg raises when PostgreSQL is down, starting, stopping or full, or the connection
# was lost under a query; connecting also raises OSError (refused, no socket, timed out).
CONNECTION_ERRORS = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await register_vector(conn)
    # Binary format, so COPY can write payloads too; version byte 1 precedes the JSON text.
    await conn.set_type_codec(
        "jsonb", encoder=_dump_jsonb, decoder=_load_jsonb, schema="pg_catalog", format="binary"
    )


def _dump_jsonb(value: object) -> bytes:
    return b"\x01" + json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _load_jsonb(data: bytes) -> object:
    return json.loads(data[1:])


def server_settings(settings: Settings) -> dict[str, str]:
    """Session settings: iterative HNSW scans keep filtered searches from coming back short."""
    return {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.ef_search": str(settings.hnsw_ef_search),
        "hnsw.max_scan_tuples": str(settings.hnsw_max_scan_tuples),
        "jit": "off",
    }


async def create_pool(settings: Settings, dsn: str, *, max_size: int | None = None) -> asyncpg.Pool:
    """A pool whose connections speak pgvector and JSON; the vector extension must exist."""
    await ensure_extension(dsn)
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.db_pool_min_size,
        max_size=max_size or settings.db_pool_max_size,
        init=_init_connection,
        connect=connect_or_unavailable,
        server_settings=server_settings(settings),
    )
    assert pool is not None
    return pool


async def connect_or_unavailable(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """``asyncpg.connect`` for the pool: a database that cannot be reached is ``Unavailable``
    with a short reason and no address (the server answers UNAVAILABLE, so callers retry)
    rather than a bare OSError."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except (OSError, *CONNECTION_ERRORS) as exc:
        raise database_unavailable(exc) from exc


def database_unavailable(error: BaseException) -> Unavailable:
    """The Unavailable error for a database that could not be reached or was lost: a short
    reason (``Connection refused``, ``terminating connection due to administrator command``),
    never the address."""
    return Unavailable(
        f"the database cannot be reached now ({connection_reason(error)}); retry later"
    )


async def ensure_extension(dsn: str) -> None:
    """pgvector's types must exist before a pooled connection can register their codecs."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except asyncpg.UniqueViolationError:
        pass  # two processes created it at the same moment
    finally:
        await conn.close()


def quote_ident(name: str) -> str:
    """Quote an identifier the project generated itself (table names); never user input."""
    if not name.replace("_", "").isalnum() or not name.isascii():
        raise ValueError(f"unsafe identifier {name!r}")
    return '"' + name + '"'
