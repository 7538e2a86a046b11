"""Sending a committed task's wake-up through the injected sender (real PostgreSQL): a sent
task is marked sent; a sender that fails leaves the row unmarked for the sweeper to re-send,
and the caller is not failed for it."""

from __future__ import annotations

import uuid

import asyncpg
import pytest

from es_core.tasks import store
from es_core.tasks.model import Task
from es_core.tasks.sender import dispatch
from tests.integration.helpers import RecordingSender, unique_id

pytestmark = pytest.mark.integration


class BrokerDown:
    def send(self, task: Task) -> None:
        raise ConnectionError("the broker is not there")


async def _new_task(pool: asyncpg.Pool) -> Task:
    async with pool.acquire() as conn:
        task, _ = await store.create_task(conn, "upsertion", {"n": unique_id("p")})
    return task


async def _sent_time(pool: asyncpg.Pool, task_id: str) -> object:
    return await pool.fetchval("SELECT sent_time FROM tasks WHERE task_id = $1", uuid.UUID(task_id))


async def test_a_sent_task_is_marked_sent(pg_pool: asyncpg.Pool) -> None:
    task = await _new_task(pg_pool)
    sender = RecordingSender()
    assert await dispatch(pg_pool, sender, task) is True
    assert sender.sent == [task.task_id]
    assert await _sent_time(pg_pool, task.task_id) is not None


async def test_a_failed_send_leaves_the_row_for_the_sweeper(pg_pool: asyncpg.Pool) -> None:
    task = await _new_task(pg_pool)
    assert await dispatch(pg_pool, BrokerDown(), task) is False
    assert await _sent_time(pg_pool, task.task_id) is None
    await pg_pool.execute(
        "UPDATE tasks SET create_time = now() - interval '1 hour' WHERE task_id = $1",
        uuid.UUID(task.task_id),
    )
    resend = await store.tasks_to_resend(pg_pool, 600, 3)
    assert task.task_id in {t.task_id for t in resend}
