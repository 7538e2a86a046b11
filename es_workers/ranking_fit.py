"""Ranking fit worker: learns a collection's fusion weights from its clicks (es_core.ranking.fit).

Runs on demand (RankingService.StartRankingFit) and every ``ES_RANKING_FIT_SECONDS_INTERVAL``
seconds for the blue collection (0 = never), when enough sessions were recorded on it since
the last fit and no fit is pending or running.
"""

from __future__ import annotations

import time
from typing import Any

from es_core.domain import Progress
from es_core.ranking.fit import fit_ranking
from es_core.ranking.manage import create_ranking_fit
from es_core.tasks.lookups import has_active, last_done
from es_core.tasks.model import Task
from es_workers.app import celery_app
from es_workers.dispatch import dispatch
from es_workers.runtime import WorkerContext, context, execute, run


async def _fit(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    outcome = await fit_ranking(
        ctx.pool, ctx.settings, task.params["collection_id"], task.task_id, progress, time.time()
    )
    return outcome.as_dict()


@celery_app.task(name="es.ranking_fit", acks_late=True, reject_on_worker_lost=True)
def ranking_fit(task_id: str) -> str:
    return run(execute(task_id, _fit))


async def _tick() -> bool:
    """Start a fit of the blue collection when enough new sessions wait and none runs."""
    ctx = await context()
    if ctx.settings.ranking_fit_seconds_interval <= 0:
        return False
    async with ctx.pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('es.ranking_fit_tick'))")
        blue = await conn.fetchval("SELECT collection_id FROM blue_collection")
        busy = await has_active(conn, "ranking_fit")
        last = await last_done(conn, "ranking_fit", "collection_id", blue)
        fresh = await conn.fetchval(
            "SELECT count(*) FROM sessions WHERE collection_id = $1 AND NOT irrelevant"
            " AND ($2::timestamptz IS NULL OR register_time > $2)",
            blue,
            last,
        )
        if blue is None or busy or fresh < ctx.settings.ranking_fit_min_sessions:
            return False
        task, _ = await create_ranking_fit(conn, blue, "", trigger="schedule")
    await dispatch(ctx.pool, task)
    return True


@celery_app.task(name="es.ranking_fit_tick")
def ranking_fit_tick() -> bool:
    return run(_tick())
