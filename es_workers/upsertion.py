"""Upsertion worker: writes items into a collection; deletions run on the same queue. The
collection may be a categories collection (CategoryService's writes are these same tasks)."""

from __future__ import annotations

from typing import Any

from es_core.domain import Progress
from es_core.item_input import ItemInput
from es_core.item_versions import write_version
from es_core.storage.catalog import get_collection
from es_core.tasks.model import Task
from es_core.upsertion import run_deletion, run_upsertion
from es_workers.app import celery_app
from es_workers.runtime import WorkerContext, execute, run


async def _upsert(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        collection = await get_collection(conn, task.params["collection_id"], kind=None)
    items = [ItemInput.from_json(item) for item in task.params["items"]]
    return await run_upsertion(
        ctx.pool,
        collection,
        items,
        ctx.encoders,
        ctx.settings,
        progress,
        ctx.plugin.get_items_splitter().split,
        version=write_version(task),
        loader=ctx.loaders,
        cleaner=ctx.plugin.get_items_cleaner(),
    )


async def _delete(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    async with ctx.pool.acquire() as conn:
        collection = await get_collection(conn, task.params["collection_id"], kind=None)
    return await run_deletion(
        ctx.pool, collection, task.params["object_ids"], version=write_version(task)
    )


@celery_app.task(name="es.upsertion", acks_late=True, reject_on_worker_lost=True)
def upsertion(task_id: str) -> str:
    return run(execute(task_id, _upsert))


@celery_app.task(name="es.deletion", acks_late=True, reject_on_worker_lost=True)
def deletion(task_id: str) -> str:
    return run(execute(task_id, _delete))
