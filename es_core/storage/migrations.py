"""Versioned SQL migrations, applied in order at start under an advisory lock."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process that migrates.
MIGRATION_LOCK_KEY = 0x45535F4D4947


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every file named NNNN_name.sql, in version order."""
    found = []
    for entry in resources.files("es_core.storage").joinpath("migrations").iterdir():
        if entry.name.endswith(".sql"):
            version, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(version), name, entry.read_text(encoding="utf-8")))
    return sorted(found)


@dataclass(frozen=True)
class MigrationState:
    """One migration file, and when it was applied (None: pending)."""

    version: int
    name: str
    # sha256 of the file's text, as it is now: what an operator compares across installs.
    checksum: str
    applied_time: datetime | None


def checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode("utf-8")).hexdigest()


async def migration_states(conn: asyncpg.Connection) -> list[MigrationState]:
    """Every migration file in version order, with its applied time when it was applied; a
    database never migrated has them all pending (and is left as it is)."""
    applied: dict[int, datetime] = {}
    if await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        rows = await conn.fetch("SELECT version, applied_time FROM schema_migrations")
        applied = {r["version"]: r["applied_time"] for r in rows}
    return [
        MigrationState(version, name, checksum(sql), applied.get(version))
        for version, name, sql in available_migrations()
    ]


async def migrate(conn: asyncpg.Connection, *, below: int | None = None) -> list[int]:
    """Apply what is missing (only the versions under ``below``, when given: a database as an
    older release left it); return the versions applied now. Safe to run from many processes."""
    applied_now: list[int] = []
    # A migration (or the wait for another process's) may take longer than the pool role's
    # statement timeout; RESET gives the connection its own back.
    await conn.execute("SET statement_timeout = 0")
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_time timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for version, name, sql in available_migrations():
            if version in done or (below is not None and version >= below):
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", version, name
                )
            log.info("applied migration %04d_%s", version, name)
            applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        await conn.execute("RESET statement_timeout")
    return applied_now


class SchemaNotReady(RuntimeError):
    """Migrations this release needs were not applied in time (migrate_on_start is off)."""


async def wait_for_schema(
    conn: asyncpg.Connection, timeout_s: float, *, poll_s: float = 2.0
) -> None:
    """Return once every migration of this release is applied (by `es migrate` or another
    process); raise SchemaNotReady naming the pending ones after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        pending = [s for s in await migration_states(conn) if s.applied_time is None]
        if not pending:
            return
        if time.monotonic() >= deadline:
            names = ", ".join(f"{s.version:04d}_{s.name}" for s in pending)
            raise SchemaNotReady(
                f"{len(pending)} migration(s) pending after {timeout_s:.0f} s: {names};"
                " run `es migrate` (ES_MIGRATE_ON_START is false)"
            )
        log.info("waiting for %d pending migration(s): run `es migrate`", len(pending))
        await asyncio.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
