"""Session settings a caller holds on pooled connections (es_core.storage.db.hold_settings):
kept between the acquires that ask for them, reset for any other acquirer, and every other
session change still reset on release."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.storage.db import SessionSettings, acquire_holding, create_pool, hold_settings

pytestmark = pytest.mark.integration

HELD: SessionSettings = (("enable_seqscan", "off"), ("work_mem", "7MB"))
OTHER: SessionSettings = (("enable_seqscan", "off"),)


@pytest_asyncio.fixture
async def one(pg_server: EmbeddedPostgres, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool of one connection: every acquire gets the same one."""
    pool = await create_pool(settings, pg_server.dsn, role="search", max_size=1)
    yield pool
    await pool.close()


async def session(conn: asyncpg.Connection) -> tuple[str, str, int]:
    row = await conn.fetchrow(
        "SELECT current_setting('enable_seqscan') AS seqscan,"
        " current_setting('work_mem') AS work_mem, pg_backend_pid() AS pid"
    )
    assert row is not None
    return row["seqscan"], row["work_mem"], row["pid"]


async def test_held_settings_last_across_acquires_that_ask_for_them(
    one: asyncpg.Pool,
) -> None:
    async with acquire_holding(one, HELD) as conn:
        first = await session(conn)
    async with acquire_holding(one, HELD) as conn:
        # held from the last acquire: nothing set again
        assert conn._held == HELD
        again = await session(conn)
    assert first == again
    assert first[:2] == ("off", "7MB")


async def test_another_acquirer_gets_the_pool_defaults(one: asyncpg.Pool) -> None:
    async with acquire_holding(one, HELD) as conn:
        pid = (await session(conn))[2]
    async with one.acquire() as conn:
        assert await session(conn) == ("on", "4MB", pid)
    assert await one.fetchval("SELECT current_setting('work_mem')") == "4MB"
    # other settings wanted: the held ones are reset, the wanted ones set
    async with acquire_holding(one, HELD) as conn:
        pass
    async with acquire_holding(one, OTHER) as conn:
        assert await session(conn) == ("off", "4MB", pid)


async def test_a_failed_call_still_leaves_only_its_settings(one: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.DivisionByZeroError):
        async with acquire_holding(one, HELD) as conn:
            await conn.fetchval("SELECT 1 / 0")
    async with one.acquire() as conn:
        assert (await session(conn))[:2] == ("on", "4MB")
    with pytest.raises(RuntimeError):
        async with acquire_holding(one, HELD) as conn, conn.transaction():
            await conn.execute("SET LOCAL work_mem = '9MB'")
            raise RuntimeError("the caller failed inside a transaction")
    async with acquire_holding(one, HELD) as conn:
        assert (await session(conn))[:2] == ("off", "7MB")


async def test_other_session_changes_are_reset_on_release(one: asyncpg.Pool) -> None:
    async with acquire_holding(one, HELD) as conn:
        pass
    async with one.acquire() as conn:
        await conn.execute("SET work_mem = '9MB'")
        await conn.execute("SELECT pg_advisory_lock(424242)")
    async with one.acquire() as conn:
        assert (await session(conn))[:2] == ("on", "4MB")
        locks = await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert locks == 0


async def test_a_connection_outside_the_pools_gets_them_for_its_session(
    pg_server: EmbeddedPostgres,
) -> None:
    conn = await asyncpg.connect(pg_server.dsn)
    try:
        await hold_settings(conn, HELD)
        assert (await session(conn))[:2] == ("off", "7MB")
    finally:
        await conn.close()
