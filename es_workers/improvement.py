"""Improvement worker: drains the queue of sessions into per-user copies of item vectors.

Runs on demand (UseSessionsForImprovement creates a task) and every
``ES_IMPROVEMENT_SECONDS_INTERVAL`` seconds (the beat tick creates one when sessions wait).
A task a reindex created with ES_REINDEX_USER_COPIES=recompute rebuilds users' copies in its
destination instead (``es_core.improvement.recompute``).
"""

from __future__ import annotations

from typing import Any

from es_core.domain import Progress
from es_core.improvement.recompute import PARAM, recompute_user_copies
from es_core.improvement.run import improve_queued
from es_core.tasks.lookups import has_active
from es_core.tasks.model import Task
from es_core.tasks.store import create_task
from es_workers.app import celery_app
from es_workers.dispatch import dispatch
from es_workers.runtime import WorkerContext, context, execute, run


async def _improve(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    adjuster = ctx.plugin.get_vectors_adjuster()
    if PARAM in task.params:  # after a reindex with ES_REINDEX_USER_COPIES=recompute
        recomputed = await recompute_user_copies(
            ctx.pool, ctx.settings, ctx.encoders, task.params[PARAM], adjuster
        )
        return recomputed.as_dict()
    report = await improve_queued(ctx.pool, ctx.settings, ctx.encoders, adjuster)
    return report.as_dict()


@celery_app.task(name="es.improvement", acks_late=True, reject_on_worker_lost=True)
def improvement(task_id: str) -> str:
    return run(execute(task_id, _improve))


async def _tick() -> bool:
    """Start an improvement task when sessions wait and none is pending or running."""
    ctx = await context()
    async with ctx.pool.acquire() as conn, conn.transaction():
        # One tick at a time decides, so two beats never start two tasks for one backlog.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('es.improvement_tick'))")
        waiting = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM improvement_queue WHERE state = 'queued')"
        )
        busy = await has_active(conn, "improvement")
        if not waiting or busy:
            return False
        task, _ = await create_task(conn, "improvement", {"trigger": "schedule"})
    await dispatch(ctx.pool, task)
    return True


@celery_app.task(name="es.improvement_tick", ignore_result=True)
def improvement_tick() -> bool:
    return run(_tick())
