"""Filterable-fields worker: builds the indexes of a collection's declared fields, records the
set and drops the indexes of fields left out (es_core/collections/filterable.py)."""

from __future__ import annotations

from typing import Any

from es_core.collections.filterable import run_declaration
from es_core.domain import Progress
from es_core.tasks.model import Task
from es_workers.app import celery_app
from es_workers.runtime import WorkerContext, execute, run


async def _declare(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    return await run_declaration(ctx.pool, task, progress)


@celery_app.task(name="es.filterable_fields", acks_late=True, reject_on_worker_lost=True)
def declare_filterable_fields(task_id: str) -> str:
    return run(execute(task_id, _declare))
