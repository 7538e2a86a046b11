"""``es migrate``: apply the database migrations (``--status``: list them, change nothing).

Server and workers migrate at start as well (under the same advisory lock); a deployment runs
this first, once, so that they start on a ready schema."""

from __future__ import annotations

import argparse
import asyncio

import asyncpg

from es_core.config import Settings
from es_core.storage.migrations import MigrationState, migrate, migration_states


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--status",
        action="store_true",
        help="list applied and pending migrations with their checksums; apply nothing",
    )


def run_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.postgres_dsn:
        print("es migrate: ES_POSTGRES_DSN is not set: name the database to migrate")
        return 1
    dsn = settings.postgres_dsn
    try:
        if args.status:
            states = asyncio.run(_states(dsn))
            print(format_states(states))
            return 0
        applied = asyncio.run(_migrate(dsn))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"es migrate: cannot reach the database: {type(exc).__name__}: {exc}")
        return 1
    print(f"applied {len(applied)} migration(s)" + (f": {_names(applied)}" if applied else ""))
    return 0


def format_states(states: list[MigrationState]) -> str:
    lines = [f"{'VERSION':<8} {'NAME':<32} {'STATUS':<8} {'APPLIED':<26} CHECKSUM (sha256)"]
    for s in states:
        status = "applied" if s.applied_time else "pending"
        when = s.applied_time.isoformat(timespec="seconds") if s.applied_time else "-"
        lines.append(f"{s.version:04d}     {s.name:<32} {status:<8} {when:<26} {s.checksum}")
    pending = sum(1 for s in states if s.applied_time is None)
    lines.append(f"{len(states) - pending} applied, {pending} pending")
    return "\n".join(lines)


def _names(versions: list[int]) -> str:
    return ", ".join(f"{v:04d}" for v in versions)


async def _states(dsn: str) -> list[MigrationState]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migration_states(conn)
    finally:
        await conn.close()


async def _migrate(dsn: str) -> list[int]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()
