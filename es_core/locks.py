"""Named locks as leases in the ``locks`` table, kept alive by a heartbeat.

A holder renews its lease while it works; one that dies stops renewing, and once the lease
runs out anyone may take the lock. A crash therefore blocks the others for at most one lease,
never for ever. Times come from the database clock, so holders on other machines agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeAlias

import asyncpg

log = logging.getLogger(__name__)

Executor: TypeAlias = asyncpg.Connection | asyncpg.Pool


def new_owner() -> str:
    """An owner name unique to this call, readable in the table: host, pid and a nonce."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


async def acquire(conn: Executor, name: str, owner: str, lease_seconds: float) -> bool:
    """Take the lock if it is free, expired, or already this owner's; one statement.

    Two callers racing for a free lock cannot both win: the loser's insert meets the winner's
    row and its update finds the lease neither expired nor its own.
    """
    taken = await conn.fetchval(
        "INSERT INTO locks (name, owner, expires_at)"
        " VALUES ($1, $2, clock_timestamp() + make_interval(secs => $3))"
        " ON CONFLICT (name) DO UPDATE SET owner = EXCLUDED.owner,"
        " expires_at = EXCLUDED.expires_at"
        " WHERE locks.expires_at < clock_timestamp() OR locks.owner = EXCLUDED.owner"
        " RETURNING true",
        name,
        owner,
        lease_seconds,
    )
    return bool(taken)


async def renew(conn: Executor, name: str, owner: str, lease_seconds: float) -> bool:
    """Extend the lease; False when the lock is no longer this owner's (taken over or released)."""
    renewed = await conn.fetchval(
        "UPDATE locks SET expires_at = clock_timestamp() + make_interval(secs => $3)"
        " WHERE name = $1 AND owner = $2 RETURNING true",
        name,
        owner,
        lease_seconds,
    )
    return bool(renewed)


async def release(conn: Executor, name: str, owner: str) -> bool:
    """Give the lock up; False when it was not this owner's any more."""
    released = await conn.fetchval(
        "DELETE FROM locks WHERE name = $1 AND owner = $2 RETURNING true", name, owner
    )
    return bool(released)


async def holder(conn: Executor, name: str) -> str | None:
    """The owner whose lease is current, or None when the lock is free or expired."""
    owner: str | None = await conn.fetchval(
        "SELECT owner FROM locks WHERE name = $1 AND expires_at >= clock_timestamp()", name
    )
    return owner


@dataclass
class HeldLock:
    """A lock this process holds; ``lost`` is set if a renewal fails (the work should stop)."""

    name: str
    owner: str
    lost: asyncio.Event = field(default_factory=asyncio.Event)


async def heartbeat(pool: asyncpg.Pool, lock: HeldLock, lease_seconds: float) -> None:
    """Renew every third of the lease until cancelled or the lock is lost."""
    while True:
        await asyncio.sleep(lease_seconds / 3)
        try:
            still_ours = await renew(pool, lock.name, lock.owner, lease_seconds)
        except (OSError, asyncpg.PostgresError):
            log.warning("could not renew lock %s; will retry", lock.name, exc_info=True)
            continue
        if not still_ours:
            log.warning("lock %s was taken over; stopping its heartbeat", lock.name)
            lock.lost.set()
            return


@contextlib.asynccontextmanager
async def hold(
    pool: asyncpg.Pool, name: str, lease_seconds: float, owner: str = ""
) -> AsyncIterator[HeldLock | None]:
    """Hold ``name`` for the block with a heartbeat; yields None when someone else holds it."""
    owner = owner or new_owner()
    if not await acquire(pool, name, owner, lease_seconds):
        yield None
        return
    lock = HeldLock(name, owner)
    beat = asyncio.create_task(heartbeat(pool, lock, lease_seconds))
    try:
        yield lock
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
        await release(pool, name, owner)
