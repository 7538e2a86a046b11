"""Every state change of a task, as single SQL statements that are safe under concurrency."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from typing import Any

import asyncpg

from es_core.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from es_core.observability.task_origin import with_origin
from es_core.page_tokens import PageTokens
from es_core.pagination import time_cursor, time_page
from es_core.tasks.model import Task, TaskKind, TaskStatus

log = logging.getLogger(__name__)

_COLUMNS = (
    "task_id, kind, status, parent_task_id, params, result, progress, progress_message, error,"
    " attempts, idempotency_key, create_time, update_time, start_time, finish_time"
)


def _task(row: asyncpg.Record) -> Task:
    return Task(
        task_id=str(row["task_id"]),
        kind=row["kind"],
        status=row["status"],
        parent_task_id=None if row["parent_task_id"] is None else str(row["parent_task_id"]),
        params=row["params"],
        result=row["result"],
        progress=row["progress"],
        progress_message=row["progress_message"],
        error=row["error"],
        attempts=row["attempts"],
        idempotency_key=row["idempotency_key"],
        create_time=row["create_time"],
        update_time=row["update_time"],
        start_time=row["start_time"],
        finish_time=row["finish_time"],
    )


def _digest(params: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def parse_task_id(task_id: str, field: str = "task_id") -> uuid.UUID:
    try:
        return uuid.UUID(task_id)
    except (ValueError, AttributeError):
        raise InvalidArgument.field_error(field, "must be a task id (a UUID)") from None


def check_idempotency_key(idempotency_key: str) -> None:
    """A key a request may carry: empty (none) or at most 256 characters."""
    if len(idempotency_key) > 256:
        raise InvalidArgument.field_error("idempotency_key", "must be at most 256 characters")


async def create_task(
    conn: asyncpg.Connection,
    kind: TaskKind,
    params: dict[str, Any],
    *,
    idempotency_key: str = "",
    parent_task_id: str | None = None,
) -> tuple[Task, bool]:
    """Insert a pending task, in the caller's transaction; returns (task, created). A subtask
    names the task that waits for it in ``parent_task_id``.

    A repeated idempotency key with the same params (and parent) returns the first task
    (created=False); with other params it is ALREADY_EXISTS, so a key can never silently mean
    two things.
    """
    check_idempotency_key(idempotency_key)
    # The parent counts in the digest as it did when it was a param (databases migrate so).
    digest = _digest(
        params if parent_task_id is None else {**params, "parent_task_id": parent_task_id}
    )
    key = idempotency_key or None
    row = await conn.fetchrow(
        f"INSERT INTO tasks"
        f" (task_id, kind, status, params, params_digest, idempotency_key, parent_task_id)"
        f" VALUES ($1, $2, 'pending', $3, $4, $5, $6)"
        f" ON CONFLICT (kind, idempotency_key) DO NOTHING RETURNING {_COLUMNS}",
        uuid.uuid4(),
        kind,
        with_origin(params),
        digest,
        key,
        None if parent_task_id is None else parse_task_id(parent_task_id, "parent_task_id"),
    )
    if row is not None:
        task = _task(row)
        log.info("task %s (%s) created", task.task_id, kind)
        return task, True
    existing = await conn.fetchrow(
        f"SELECT {_COLUMNS}, params_digest FROM tasks WHERE kind = $1 AND idempotency_key = $2",
        kind,
        key,
    )
    assert existing is not None
    if existing["params_digest"] != digest:
        raise AlreadyExists.field_error(
            "idempotency_key", "was already used for a different request"
        )
    return _task(existing), False


async def merge_task_params(conn: asyncpg.Connection, task_id: str, extra: dict[str, Any]) -> Task:
    """Add what the request resolved (e.g. which batch) to a task's params; the idempotency
    digest stays that of the request as sent."""
    row = await conn.fetchrow(
        f"UPDATE tasks SET params = params || $2::jsonb, update_time = now()"
        f" WHERE task_id = $1 RETURNING {_COLUMNS}",
        parse_task_id(task_id),
        extra,
    )
    if row is None:
        raise NotFound.field_error("task_id", f"task {task_id} does not exist")
    return _task(row)


async def get_task(conn: asyncpg.Connection | asyncpg.Pool, task_id: str) -> Task:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM tasks WHERE task_id = $1", parse_task_id(task_id)
    )
    if row is None:
        raise NotFound.field_error("task_id", f"task {task_id} does not exist")
    return _task(row)


async def list_tasks(
    conn: asyncpg.Connection | asyncpg.Pool,
    tokens: PageTokens,
    *,
    page_size: int,
    page_token: str,
    kind: TaskKind | None = None,
    statuses: list[TaskStatus] | None = None,
) -> tuple[list[Task], str]:
    """Newest first, keyset-paged on (create_time, task_id)."""
    scope = {"kind": kind, "statuses": sorted(statuses or [])}
    after_time, after_id = time_cursor(tokens, page_token, scope)
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM tasks"
        " WHERE ($1::text IS NULL OR kind = $1)"
        " AND (cardinality($2::text[]) = 0 OR status = ANY($2::text[]))"
        " AND ($3::timestamptz IS NULL OR (create_time, task_id) < ($3, $4::uuid))"
        " ORDER BY create_time DESC, task_id DESC LIMIT $5",
        kind,
        list(statuses or []),
        after_time,
        None if after_id is None else parse_task_id(after_id, "page_token"),
        page_size + 1,
    )
    return time_page(
        [_task(r) for r in rows], page_size, lambda t: (t.create_time, t.task_id), scope, tokens
    )


async def mark_sent(conn: asyncpg.Connection | asyncpg.Pool, task_id: str) -> None:
    await conn.execute(
        "UPDATE tasks SET sent_time = now() WHERE task_id = $1", parse_task_id(task_id)
    )


async def claim_task(
    conn: asyncpg.Connection | asyncpg.Pool, task_id: str, owner: str, lease_seconds: float
) -> Task | None:
    """Take a pending task (or one whose lease ran out) for this worker; None if not ours to run."""
    row = await conn.fetchrow(
        f"UPDATE tasks SET status = 'processing', attempts = attempts + 1, lease_owner = $2,"
        f" lease_expires_at = now() + make_interval(secs => $3), update_time = now(),"
        f" start_time = coalesce(start_time, now())"
        f" WHERE task_id = $1 AND (status = 'pending'"
        f"   OR (status = 'processing' AND lease_expires_at < now()))"
        f" RETURNING {_COLUMNS}",
        parse_task_id(task_id),
        owner,
        lease_seconds,
    )
    return None if row is None else _task(row)


async def renew_lease(
    conn: asyncpg.Connection | asyncpg.Pool, task_id: str, owner: str, lease_seconds: float
) -> bool:
    """Keep the task ours while it runs; False once it was canceled or taken over."""
    status = await conn.fetchval(
        "UPDATE tasks SET lease_expires_at = now() + make_interval(secs => $3)"
        " WHERE task_id = $1 AND lease_owner = $2 AND status = 'processing' RETURNING status",
        parse_task_id(task_id),
        owner,
        lease_seconds,
    )
    return bool(status == "processing")


async def report_progress(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    owner: str,
    progress: float,
    message: str,
    lease_seconds: float,
    result: dict[str, Any] | None = None,
) -> bool:
    """Write progress and renew the lease; False when the task was canceled or taken from us."""
    status = await conn.fetchval(
        "UPDATE tasks SET progress = $3, progress_message = $4, update_time = now(),"
        " lease_expires_at = now() + make_interval(secs => $5),"
        " result = CASE WHEN $6::jsonb IS NULL THEN result ELSE $6::jsonb END"
        " WHERE task_id = $1 AND lease_owner = $2 AND status = 'processing' RETURNING status",
        parse_task_id(task_id),
        owner,
        max(0.0, min(1.0, progress)),
        message,
        lease_seconds,
        result,
    )
    return bool(status == "processing")


async def finish_task(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    owner: str,
    status: TaskStatus,
    *,
    result: dict[str, Any] | None = None,
    error: str = "",
) -> bool:
    """Record the outcome if this worker still holds the task."""
    done = await conn.fetchval(
        "UPDATE tasks SET status = $3, error = $4, finish_time = now(), update_time = now(),"
        " progress = CASE WHEN $3 = 'done' THEN 1 ELSE progress END,"
        " result = coalesce($5::jsonb, result), lease_owner = NULL, lease_expires_at = NULL"
        " WHERE task_id = $1 AND lease_owner = $2 AND status = 'processing' RETURNING true",
        parse_task_id(task_id),
        owner,
        status,
        error,
        result,
    )
    return bool(done)


async def start_waiting(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    owner: str,
    result: dict[str, Any],
    message: str,
) -> bool:
    """The task now waits for the tasks it started (its subtasks, or its chain's steps): no
    lease, so the sweeper does not re-send it; ``es_core.tasks.workflow`` ends it. False when
    this worker no longer held it."""
    waiting = await conn.fetchval(
        "UPDATE tasks SET status = 'waiting', lease_owner = NULL, lease_expires_at = NULL,"
        " result = $3, progress_message = $4, update_time = now()"
        " WHERE task_id = $1 AND lease_owner = $2 AND status = 'processing' RETURNING true",
        parse_task_id(task_id),
        owner,
        result,
        message,
    )
    return bool(waiting)


async def update_waiting(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    *,
    status: TaskStatus = "waiting",
    progress: float | None = None,
    message: str | None = None,
    result: dict[str, Any] | None = None,
    error: str = "",
) -> bool:
    """Move on a waiting task (it has no lease to check): its progress, its result and, with a
    final ``status``, its end. False when it no longer waits (it was canceled, or already
    settled)."""
    updated = await conn.fetchval(
        "UPDATE tasks SET status = $2, error = $3, result = coalesce($4::jsonb, result),"
        " progress = CASE WHEN $2 = 'done' THEN 1 ELSE coalesce($5, progress) END,"
        " progress_message = coalesce($6, progress_message), update_time = now(),"
        " finish_time = CASE WHEN $2 = 'waiting' THEN finish_time ELSE now() END"
        " WHERE task_id = $1 AND status = 'waiting' RETURNING true",
        parse_task_id(task_id),
        status,
        error,
        result,
        None if progress is None else max(0.0, min(1.0, progress)),
        message,
    )
    return bool(updated)


async def _transition(
    conn: asyncpg.Connection | asyncpg.Pool,
    task_id: str,
    changes: str,
    allowed_from: tuple[str, ...],
    verb: str,
) -> Task:
    """Apply ``changes`` if the task is in one of ``allowed_from``; else FAILED_PRECONDITION."""
    row = await conn.fetchrow(
        f"UPDATE tasks SET {changes}, update_time = now()"
        f" WHERE task_id = $1 AND status = ANY($2::text[]) RETURNING {_COLUMNS}",
        parse_task_id(task_id),
        list(allowed_from),
    )
    if row is None:
        task = await get_task(conn, task_id)
        raise FailedPrecondition.field_error(
            "task_id",
            f"task is {task.status}; only {' or '.join(allowed_from)} tasks can be {verb}",
        )
    return _task(row)


async def cancel_task(conn: asyncpg.Connection | asyncpg.Pool, task_id: str) -> Task:
    """Stop a task: a running worker sees it at its next progress report and stops there."""
    return await _transition(
        conn,
        task_id,
        "status = 'canceled', finish_time = now(), lease_owner = NULL, lease_expires_at = NULL",
        ("pending", "processing", "waiting"),
        "canceled",
    )


async def restart_task(conn: asyncpg.Connection | asyncpg.Pool, task_id: str) -> Task:
    """Put a failed or canceled task back in the queue with its attempts counted afresh."""
    return await _transition(
        conn,
        task_id,
        "status = 'pending', attempts = 0, error = '', progress = 0, progress_message = '',"
        " finish_time = NULL, sent_time = NULL",
        ("failed", "canceled"),
        "restarted",
    )


async def tasks_to_resend(
    conn: asyncpg.Connection | asyncpg.Pool, resend_after_seconds: float, max_attempts: int
) -> list[Task]:
    """Pending tasks never sent or sent long ago, and processing ones whose holder went quiet.

    A processing task whose lease ran out after its last allowed attempt is failed here instead.
    """
    await conn.execute(
        "UPDATE tasks SET status = 'failed', error = 'worker lost ' || attempts || ' times',"
        " finish_time = now(), update_time = now(), lease_owner = NULL"
        " WHERE status = 'processing' AND lease_expires_at < now() AND attempts >= $1",
        max_attempts,
    )
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM tasks"
        " WHERE (status = 'pending' AND ("
        "        (sent_time IS NULL AND create_time < now() - interval '5 seconds')"
        "        OR sent_time < now() - make_interval(secs => $1)))"
        "    OR (status = 'processing' AND lease_expires_at < now())"
        " ORDER BY create_time LIMIT 1000",
        resend_after_seconds,
    )
    return [_task(r) for r in rows]
