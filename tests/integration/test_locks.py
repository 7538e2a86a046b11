"""Lease locks on a real PostgreSQL: exclusion, renewal, release, and takeover after a holder
died and its lease ran out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time

import asyncpg
import pytest

from es_cli.embedded import EmbeddedPostgres
from es_core import locks
from tests.integration.helpers import unique_id

pytestmark = pytest.mark.integration


async def test_a_held_lock_is_refused_to_others_until_released(pg_pool: asyncpg.Pool) -> None:
    name = unique_id("lock")
    assert await locks.acquire(pg_pool, name, "a", 30)
    assert not await locks.acquire(pg_pool, name, "b", 30)
    assert await locks.holder(pg_pool, name) == "a"
    assert await locks.acquire(pg_pool, name, "a", 30)  # the holder may take it again
    assert not await locks.release(pg_pool, name, "b")  # not b's to release
    assert await locks.release(pg_pool, name, "a")
    assert await locks.holder(pg_pool, name) is None
    assert await locks.acquire(pg_pool, name, "b", 30)


async def test_many_racing_for_a_free_lock_exactly_one_wins(pg_pool: asyncpg.Pool) -> None:
    name = unique_id("lock")
    won = await asyncio.gather(*(locks.acquire(pg_pool, name, f"o{i}", 30) for i in range(8)))
    assert sum(won) == 1
    assert await locks.holder(pg_pool, name) == f"o{won.index(True)}"


async def test_an_expired_lease_is_taken_over_and_the_old_holder_cannot_renew(
    pg_pool: asyncpg.Pool,
) -> None:
    name = unique_id("lock")
    assert await locks.acquire(pg_pool, name, "dead", 0.3)
    assert not await locks.acquire(pg_pool, name, "next", 30)
    await asyncio.sleep(0.5)  # "dead" stopped renewing
    assert await locks.holder(pg_pool, name) is None
    assert await locks.acquire(pg_pool, name, "next", 30)
    assert not await locks.renew(pg_pool, name, "dead", 30)
    assert not await locks.release(pg_pool, name, "dead")
    assert await locks.holder(pg_pool, name) == "next"


async def test_renewal_keeps_a_lock_past_its_first_lease(pg_pool: asyncpg.Pool) -> None:
    name = unique_id("lock")
    assert await locks.acquire(pg_pool, name, "a", 0.4)
    for _ in range(3):
        await asyncio.sleep(0.2)
        assert await locks.renew(pg_pool, name, "a", 0.4)
    assert not await locks.acquire(pg_pool, name, "b", 30)


async def test_hold_heartbeats_and_releases(pg_pool: asyncpg.Pool) -> None:
    name = unique_id("lock")
    async with locks.hold(pg_pool, name, 0.3, owner="a") as held:
        assert held is not None
        await asyncio.sleep(0.8)  # past two leases: the heartbeat renewed it
        assert not held.lost.is_set()
        assert not await locks.acquire(pg_pool, name, "b", 30)
        async with locks.hold(pg_pool, name, 30, owner="b") as other:
            assert other is None
    assert await locks.holder(pg_pool, name) is None


async def test_hold_notices_a_takeover(pg_pool: asyncpg.Pool) -> None:
    name = unique_id("lock")
    async with locks.hold(pg_pool, name, 0.3, owner="a") as held:
        assert held is not None
        # Someone forces the lock away (as if a's heartbeat had stalled past its lease).
        await pg_pool.execute("UPDATE locks SET owner = 'b' WHERE name = $1", name)
        await asyncio.wait_for(held.lost.wait(), timeout=5)
    assert await locks.holder(pg_pool, name) == "b"  # a's release did not take b's lock


async def test_a_killed_holder_process_loses_the_lock_when_its_lease_runs_out(
    pg_server: EmbeddedPostgres, pg_pool: asyncpg.Pool
) -> None:
    """A real process takes the lock with a heartbeat and is SIGKILLed: the lock stays taken
    until the lease runs out, then another owner gets it."""
    name = unique_id("lock")
    script = textwrap.dedent(
        f"""
        import asyncio, asyncpg, sys
        from es_core import locks

        async def main():
            pool = await asyncpg.create_pool({pg_server.dsn!r}, min_size=1, max_size=2)
            async with locks.hold(pool, {name!r}, 1.0, owner="doomed") as held:
                assert held is not None
                print("held", flush=True)
                await asyncio.sleep(3600)

        asyncio.run(main())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, env={**os.environ}
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"held"
        await asyncio.sleep(1.5)  # longer than one lease: only the heartbeat keeps it
        assert await locks.holder(pg_pool, name) == "doomed"
        assert not await locks.acquire(pg_pool, name, "heir", 30)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = time.monotonic()
        while not await locks.acquire(pg_pool, name, "heir", 30):
            assert time.monotonic() - killed_at < 5, "the dead holder's lease never ran out"
            await asyncio.sleep(0.05)
        assert time.monotonic() - killed_at < 1.0 + 0.5
    finally:
        if process.poll() is None:
            process.kill()
    assert await locks.holder(pg_pool, name) == "heir"
