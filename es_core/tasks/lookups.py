"""What the rest of the library asks of the tasks table, and the few writes it makes there, so
that every statement on ``tasks`` lives in this package (``store`` holds a task's own life:
create, claim, progress, finish, cancel, restart)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TypeAlias

import asyncpg

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_ACTIVE = "status IN ('pending', 'processing', 'waiting')"


def done_sql(task_id_column: str) -> str:
    """A SQL condition true when the task ``task_id_column`` names is done (for statements on
    other tables that must see it)."""
    return (
        f"EXISTS (SELECT 1 FROM tasks t WHERE t.task_id = {task_id_column} AND t.status = 'done')"
    )


async def task_status(conn: Conn, task_id: str | uuid.UUID) -> str | None:
    """The task's status; None when there is no such task."""
    status: str | None = await conn.fetchval(
        "SELECT status FROM tasks WHERE task_id = $1::uuid", str(task_id)
    )
    return status


async def has_active(conn: Conn, kind: str) -> bool:
    """Whether a task of ``kind`` is pending or running."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM tasks WHERE kind = $1 AND {_ACTIVE})", kind
        )
    )


async def active_with_param(conn: Conn, kind: str, name: str, value: str) -> str | None:
    """The newest pending or running task of ``kind`` whose param ``name`` is ``value``."""
    task_id = await conn.fetchval(
        f"SELECT task_id FROM tasks WHERE kind = $1 AND {_ACTIVE} AND params ->> $2 = $3"
        " ORDER BY create_time DESC LIMIT 1",
        kind,
        name,
        value,
    )
    return None if task_id is None else str(task_id)


async def models_being_deployed(conn: Conn) -> set[str]:
    """Models a pending or running deployment task is deploying."""
    rows = await conn.fetch(
        f"SELECT DISTINCT params ->> 'model_id' AS model_id FROM tasks WHERE kind = 'deployment'"
        f" AND {_ACTIVE} AND params ->> 'action' = 'deploy'"
    )
    return {str(r["model_id"]) for r in rows}


async def last_done(conn: Conn, kind: str, name: str, value: str | None) -> datetime | None:
    """When the newest done task of ``kind`` with param ``name`` = ``value`` was created."""
    created: datetime | None = await conn.fetchval(
        "SELECT max(create_time) FROM tasks WHERE kind = $1 AND status = 'done'"
        " AND params ->> $2 = $3",
        kind,
        name,
        value,
    )
    return created


async def waiting(conn: Conn, kind: str) -> list[str]:
    """Tasks of ``kind`` waiting for their subtasks or chain, oldest first (the sweeper moves
    them on)."""
    rows = await conn.fetch(
        "SELECT task_id FROM tasks WHERE kind = $1 AND status = 'waiting' ORDER BY create_time",
        kind,
    )
    return [str(r["task_id"]) for r in rows]


async def lock(conn: asyncpg.Connection, task_id: str) -> asyncpg.Record | None:
    """The task's kind, status, params and result, its row locked until the transaction ends;
    None when there is no such task."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT kind, status, params, result FROM tasks WHERE task_id = $1 FOR UPDATE",
        uuid.UUID(task_id),
    )
    return row


async def children(conn: Conn, parent_task_id: str) -> list[asyncpg.Record]:
    """The reindex subtasks of a parent, in range order: id, status, progress, result, params
    and error of each."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT task_id, status, progress, result, params, error FROM tasks WHERE kind = 'reindex'"
        " AND parent_task_id = $1 ORDER BY (params ->> 'range_index')::int",
        uuid.UUID(parent_task_id),
    )
    return rows


async def set_waiting_progress(
    conn: asyncpg.Connection, task_id: str, progress: float, message: str
) -> None:
    """Progress of a waiting task, which its subtasks move on (it holds no lease to report
    with); a task that no longer waits is left as it is."""
    await conn.execute(
        "UPDATE tasks SET progress = $2, progress_message = $3, update_time = now()"
        " WHERE task_id = $1 AND status = 'waiting'",
        uuid.UUID(task_id),
        progress,
        message,
    )


async def cancel_reindexes_of(
    conn: asyncpg.Connection, collection_id: str, reindex_task_id: str | None, error: str
) -> None:
    """Cancel every pending or running reindex that reads or fills ``collection_id`` (and the
    one that filled it), with ``error`` as the reason."""
    await conn.execute(
        "UPDATE tasks SET status = 'canceled', finish_time = now(), update_time = now(),"
        " lease_owner = NULL, lease_expires_at = NULL, error = $2"
        f" WHERE kind = 'reindex' AND {_ACTIVE}"
        " AND (task_id = $3 OR params ->> 'destination_collection_id' = $1"
        "      OR params ->> 'resolved_source_collection_id' = $1"
        "      OR (parent_task_id IS NOT NULL AND params ->> 'source_collection_id' = $1))",
        collection_id,
        error,
        None if reindex_task_id is None else uuid.UUID(reindex_task_id),
    )
