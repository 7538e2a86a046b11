"""Deployment worker: loads a model version's encoders into Triton, or unloads them."""

from __future__ import annotations

from typing import Any

from es_core.domain import Progress
from es_core.serving.deploy import run_deployment
from es_core.tasks.model import Task
from es_workers.app import celery_app
from es_workers.runtime import WorkerContext, execute, run


async def _deploy(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    return await run_deployment(ctx.pool, ctx.settings, ctx.plugin, task, progress)


@celery_app.task(name="es.deployment", acks_late=True, reject_on_worker_lost=True)
def deployment(task_id: str) -> str:
    return run(_run_deployment_task(task_id))


async def _run_deployment_task(task_id: str) -> str:
    # A deploy_as_blue chain may wait for this one: the runtime moves chains on after it.
    return await execute(task_id, _deploy)
