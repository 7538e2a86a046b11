"""Connection pool set-up: pgvector codecs, the HNSW scan settings every session needs, and
the budgets of a pool's role (its statement timeout, how long a request waits for a connection).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
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
    return {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.ef_search": str(settings.hnsw_ef_search),
        "hnsw.max_scan_tuples": str(settings.hnsw_max_scan_tuples),
        "jit": "off",
        "statement_timeout": f"{round(statement_timeout_seconds(settings, role) * 1000)}ms",
    }


SessionSettings = tuple[tuple[str, str], ...]
"""Session settings a caller holds on a pooled connection: (name, value) pairs, constants of
the code (never user input)."""

# The settings the task acquiring a connection wants it to hold (``acquire_holding``).
_WANTED: ContextVar[SessionSettings | None] = ContextVar("es_session_settings", default=None)


class SessionConnection(asyncpg.Connection):
    """A pooled connection that may keep session settings across releases: a caller that
    changes no session state but a few settings (``hold_settings``) spares the round trip that
    sets them and the one that resets them (asyncpg's RESET ALL on release) on every acquire.
    The next acquirer that does not ask for the same settings gets the connection reset
    first (``_reset_unless_wanted``); any other release resets it as asyncpg does."""

    __slots__ = ("_held", "_keep")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The settings applied on top of the pool's own, and whether this acquire keeps them.
        self._held: SessionSettings | None = None
        self._keep = False

    async def hold_settings(self, wanted: SessionSettings) -> None:
        """Apply ``wanted`` for the session unless the connection holds them already, and
        keep them when it goes back to the pool. The caller must change no other session
        state while it holds the connection."""
        if self._held != wanted:
            await self.execute(_set_session(wanted))
            self._held = wanted
        self._keep = True

    async def reset_session(self) -> None:
        """asyncpg's reset (the pool has rolled back any open transaction already)."""
        self._held = None
        await self.execute(self.get_reset_query())


def _set_session(settings: SessionSettings) -> str:
    return "SELECT " + ", ".join(f"set_config('{n}', '{v}', false)" for n, v in settings)


async def hold_settings(conn: asyncpg.Connection, wanted: SessionSettings) -> None:
    """Session settings for what ``conn`` runs next: held across releases on the pools of
    ``create_pool`` (``SessionConnection``), set for the session on any other connection (its
    pool's reset, if any, undoes them)."""
    hold = getattr(conn, "hold_settings", None)
    if hold is not None:
        await hold(wanted)
    else:
        await conn.execute(_set_session(wanted))


@asynccontextmanager
async def acquire_holding(
    pool: asyncpg.Pool, wanted: SessionSettings
) -> AsyncIterator[asyncpg.Connection]:
    """A connection of ``pool`` holding ``wanted`` (one that holds them already is not reset
    between this acquire and the last)."""
    token: Token[SessionSettings | None] | None = _WANTED.set(wanted)
    try:
        async with pool.acquire() as conn:
            _WANTED.reset(token)  # type: ignore[arg-type]
            token = None
            await hold_settings(conn, wanted)
            yield conn
    finally:
        if token is not None:
            _WANTED.reset(token)


async def _reset_unless_wanted(conn: Any) -> None:
    """The pool's ``setup``: a connection holding settings its new acquirer did not ask for
    is reset first."""
    held = conn._held
    if held is not None and held != _WANTED.get():
        await conn.reset_session()


async def _reset_unless_kept(conn: Any) -> None:
    """The pool's ``reset``: asyncpg's, unless this acquire held its settings
    (``SessionConnection.hold_settings``)."""
    keep, conn._keep = conn._keep, False
    if not keep:
        await conn.reset_session()


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
        setup=_reset_unless_wanted,
        reset=_reset_unless_kept,
        connect=connect_or_unavailable,
        loop=None,
        connection_class=SessionConnection,
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
