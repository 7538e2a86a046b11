"""The workers' sender: follow-up tasks and the sweeper's re-sends go through the workers' own
Celery application."""

from __future__ import annotations

import asyncpg

from es_broker.celery_sender import CelerySender
from es_core.tasks import sender
from es_core.tasks.model import Task


async def dispatch(pool: asyncpg.Pool, task: Task) -> bool:
    """``es_core.tasks.sender.dispatch`` through the workers' application."""
    from es_workers.app import celery_app

    return await sender.dispatch(pool, CelerySender(celery_app), task)
