"""Fine-tuning worker: trains, evaluates and registers a model version from a session batch
(and, with deploy_as_blue, starts promoting it)."""

from __future__ import annotations

from typing import Any

from es_core.categories.fine_tuning import TARGET, run_category_fine_tuning
from es_core.domain import Progress
from es_core.fine_tuning.run import run_fine_tuning
from es_core.plugins.registry import load_categories_plugin
from es_core.serving.deploy_as_blue import Promotion
from es_core.tasks.model import Task, Waiting
from es_workers.app import celery_app
from es_workers.runtime import WorkerContext, execute, run


async def _fine_tune(
    ctx: WorkerContext, task: Task, progress: Progress
) -> dict[str, Any] | Waiting:
    if task.params.get("target") == TARGET:
        categories_plugin = load_categories_plugin(ctx.settings)
        result = await run_category_fine_tuning(
            ctx.pool, ctx.settings, ctx.plugin, categories_plugin, ctx.encoders, task, progress
        )
    else:
        result = await run_fine_tuning(
            ctx.pool, ctx.settings, ctx.plugin, ctx.encoders, task, progress
        )
    if result.get("promotion") and Promotion.of(result["promotion"]).waiting:
        # deploy_as_blue and the gate passed: the task waits for its chain (es_core.tasks.workflow).
        return Waiting(result, "promoting its model")
    return result


async def run_fine_tuning_task(task_id: str) -> str:
    """Train and register; a version promoted as blue then starts its chain at once (the
    runtime moves chains on after the run)."""
    return await execute(task_id, _fine_tune)


@celery_app.task(name="es.fine_tuning", acks_late=True, reject_on_worker_lost=True)
def fine_tuning(task_id: str) -> str:
    return run(run_fine_tuning_task(task_id))
