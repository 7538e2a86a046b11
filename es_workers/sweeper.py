"""Re-sends tasks left pending (lost between commit and broker) or abandoned by a dead worker."""

from __future__ import annotations

from es_core.tasks.store import tasks_to_resend
from es_workers.app import celery_app
from es_workers.dispatch import dispatch
from es_workers.runtime import context, run


async def _sweep() -> int:
    ctx = await context()
    tasks = await tasks_to_resend(
        ctx.pool, ctx.settings.task_resend_after_seconds, ctx.settings.task_max_attempts
    )
    sent = 0
    for task in tasks:
        sent += await dispatch(ctx.pool, task)
    return sent


@celery_app.task(name="es.sweep", ignore_result=True)
def sweep() -> int:
    return run(_sweep())
