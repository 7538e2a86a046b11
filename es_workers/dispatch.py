"""Sending the wake-up for a task row: the message carries the task id and nothing else."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from es_core.tasks.model import QUEUE_FOR_KIND, Task
from es_core.tasks.store import mark_sent

log = logging.getLogger(__name__)


def task_name(kind: str) -> str:
    return f"es.{kind}"


def send(task: Task) -> None:
    from es_workers.app import celery_app

    celery_app.send_task(task_name(task.kind), args=[task.task_id], queue=QUEUE_FOR_KIND[task.kind])


async def dispatch(pool: asyncpg.Pool, task: Task) -> bool:
    """Send after the row is committed; a failure leaves the row for the sweeper to re-send."""
    try:
        await asyncio.to_thread(send, task)
    except Exception:  # the broker may be down; the row is safe and the sweeper will retry
        log.warning("could not send task %s now; the sweeper will", task.task_id, exc_info=True)
        return False
    await mark_sent(pool, task.task_id)
    return True
