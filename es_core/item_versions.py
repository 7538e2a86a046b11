"""The version of a write to items: fixed when its request is accepted, kept in its task.

One PostgreSQL sequence numbers every upsert and deletion, in the transaction that creates the
task row, so a write accepted later always has a larger version, whichever server process took
the request and however late a worker runs (or reruns) the task. Timestamps would not do:
``now()`` is a transaction's start time, ties are possible, and clocks of two hosts differ.
The version goes into the task's params after the row is created, outside the idempotency
digest: a request repeated with its idempotency key gets the first task and its version."""

from __future__ import annotations

import asyncpg

from es_core.storage.item_rows import UNVERSIONED
from es_core.tasks.model import Task
from es_core.tasks.store import merge_task_params


async def stamp_write_version(conn: asyncpg.Connection, task: Task) -> Task:
    """Give a newly created write task the next version, in the caller's transaction."""
    version = int(await conn.fetchval("SELECT nextval('item_write_versions')"))
    return await merge_task_params(conn, task.task_id, {"version": version})


def write_version(task: Task) -> int:
    """The version a write task writes at; tasks accepted before versions existed have none."""
    return int(task.params.get("version", UNVERSIONED))
