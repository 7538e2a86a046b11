"""Categories switch worker: a category-tuned version's categories collection filled and the
item model's predictions pointed at it (the last step of a categories deploy_as_blue chain)."""

from __future__ import annotations

from typing import Any

from es_core.categories.switch import run_categories_switch
from es_core.domain import Progress
from es_core.tasks.model import Task
from es_workers.app import celery_app
from es_workers.runtime import WorkerContext, execute, run


async def _switch(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    return await run_categories_switch(
        ctx.pool, ctx.settings, ctx.plugin.get_search_index_info(), ctx.encoders, task, progress
    )


async def run_categories_switch_task(task_id: str) -> str:
    # The chain waiting for this task moves on after it (es_core.tasks.workflow).
    return await execute(task_id, _switch)


@celery_app.task(name="es.categories_switch", acks_late=True, reject_on_worker_lost=True)
def categories_switch(task_id: str) -> str:
    return run(run_categories_switch_task(task_id))
