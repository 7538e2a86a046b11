"""Sending a task's wake-up: the seam between a committed task row and whatever runs it.

The process that runs a use case injects its ``TaskSender`` (the server and the workers send
through the broker, ``es_broker``); es_core never knows which."""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import asyncpg

from es_core.tasks.model import Task
from es_core.tasks.store import mark_sent

log = logging.getLogger(__name__)


class TaskSender(Protocol):
    def send(self, task: Task) -> None:
        """Publish the wake-up of ``task``, whose row is committed (blocking; may raise)."""


def message_name(kind: str) -> str:
    """The name a worker registers a kind's task under."""
    return f"es.{kind}"


async def dispatch(pool: asyncpg.Pool, sender: TaskSender, task: Task) -> bool:
    """Send after the row is committed; a failure leaves the row for the sweeper to re-send."""
    try:
        await asyncio.to_thread(sender.send, task)
    except Exception:  # the broker may be down; the row is safe and the sweeper will retry
        log.warning("could not send task %s now; the sweeper will", task.task_id, exc_info=True)
        return False
    await mark_sent(pool, task.task_id)
    return True
