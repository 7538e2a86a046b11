"""Re-sends tasks left pending (lost between commit and broker) or abandoned by a dead worker,
settles reindex parents whose subtasks ended (also those the sweeper itself failed), moves
deploy_as_blue chains on, folds the BM25 statistics deltas of live collections, and keeps the
MLflow aliases blue/rollback on what serves.

One pass runs at a time across all workers: a pass holds the "sweeper" lease lock, which a
crashed sweeper loses when its lease runs out."""

from __future__ import annotations

from es_core.lexical.bm25 import compact_live_statistics
from es_core.locks import hold
from es_core.tasks import workflow
from es_core.tasks.store import tasks_to_resend
from es_workers.app import celery_app
from es_workers.dispatch import dispatch
from es_workers.runtime import context, run

SWEEPER_LOCK = "sweeper"


async def _sweep() -> int:
    ctx = await context()
    lease = max(30.0, 3 * ctx.settings.sweeper_interval_seconds)
    async with hold(ctx.pool, SWEEPER_LOCK, lease) as lock:
        if lock is None:
            return 0  # another worker is sweeping now
        tasks = await tasks_to_resend(
            ctx.pool, ctx.settings.task_resend_after_seconds, ctx.settings.task_max_attempts
        )
        sent = 0
        for task in tasks:
            sent += await dispatch(ctx.pool, task)
        for started in await workflow.sweep(
            ctx.pool, ctx.settings, ctx.plugin.get_search_index_info()
        ):
            sent += await dispatch(ctx.pool, started)
        await compact_live_statistics(ctx.pool)
        await ctx.aliases.follow(ctx.pool)  # after a deploy_as_blue switch, or a missed move
        return sent


@celery_app.task(name="es.sweep", ignore_result=True)
def sweep() -> int:
    return run(_sweep())
