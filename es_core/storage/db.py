"""Connection pool set-up: pgvector codecs, the HNSW scan settings every session needs, and
the budgets of a pool's role (its statement timeout, how long a request waits for a connection).
"""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any, Literal

import asyncpg
from asyncpg.pool import PoolAcquireContext
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

Role = Literal["api", "search", "worker"]
"""Who runs a pool's queries: the server's searches (filters callers write), the server's other
calls, or the workers' tasks. Each role has its own ES_DB_<ROLE>_STATEMENT_TIMEOUT_SECONDS."""


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


def statement_timeout_seconds(settings: Settings, role: Role) -> float:
    """The statement timeout of ``role``'s queries (0 = none)."""
    return {
        "api": settings.db_api_statement_timeout_seconds,
        "search": settings.db_search_statement_timeout_seconds,
        "worker": settings.db_worker_statement_timeout_seconds,
    }[role]


def server_settings(settings: Settings, role: Role = "api") -> dict[str, str]:
    """Session settings: iterative HNSW scans keep filtered searches from coming back short;
    the role's statement timeout cancels a statement that runs past it."""
    common = {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.ef_search": str(settings.hnsw_ef_search),
        "hnsw.max_scan_tuples": str(settings.hnsw_max_scan_tuples),
        "jit": "off",
        "statement_timeout": f"{round(statement_timeout_seconds(settings, role) * 1000)}ms",
    }
    if role != "search":
        return common
    return common | SEARCH_PLANNING


#: How searches are planned. A filter's values decide its plan: a selective term filter reads
#: its few matches through the payload index, a common one walks the HNSW index until enough
#: match. A generic plan (what a prepared statement switches to after five runs) would fix one
#: plan for every value, so each search is planned for its own values. Searches run many at
#: once, one per connection: parallel workers only take cores from the others.
SEARCH_PLANNING = {"plan_cache_mode": "force_custom_plan", "max_parallel_workers_per_gather": "0"}


class _BoundedAcquire(PoolAcquireContext):
    """Acquiring a connection, for at most the pool's acquire timeout: past it, Unavailable
    (the pool is busy: retry later) instead of a request that hangs behind others."""

    __slots__ = ()

    async def __aenter__(self) -> Any:
        try:
            return await super().__aenter__()
        except TimeoutError:
            raise _busy(self.timeout) from None

    def __await__(self) -> Generator[Any, None, Any]:
        try:
            return (yield from super().__await__())
        except TimeoutError:
            raise _busy(self.timeout) from None


def _busy(timeout: float | None) -> Unavailable:
    return Unavailable(
        f"the database is busy: no connection came free within {timeout:g} s; retry later"
    )


class BoundedPool(asyncpg.Pool):
    """An asyncpg pool whose every acquire (``pool.fetch`` and the like too) waits at most
    ``acquire_timeout`` seconds unless the caller gives its own timeout."""

    acquire_timeout: float = 5.0

    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        return _BoundedAcquire(self, self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    settings: Settings, dsn: str, *, role: Role = "api", max_size: int | None = None
) -> asyncpg.Pool:
    """A pool whose connections speak pgvector and JSON, with ``role``'s statement timeout and
    ES_DB_ACQUIRE_TIMEOUT_SECONDS; the vector extension must exist."""
    await ensure_extension(dsn)
    pool = BoundedPool(
        dsn,
        min_size=min(settings.db_pool_min_size, max_size or settings.db_pool_max_size),
        max_size=max_size or settings.db_pool_max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=_init_connection,
        connect=connect_or_unavailable,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        server_settings=server_settings(settings, role),
    )
    pool.acquire_timeout = settings.db_acquire_timeout_seconds
    return await pool


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
