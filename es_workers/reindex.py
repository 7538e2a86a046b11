"""Reindex worker: the parent copies its model's categories (``es_core.reindex.categories``)
and plans key-range subtasks; each subtask copies its range; a last one builds the
destination's vector index (``es_core.storage.bulk_index``).

One Celery task, ``es.reindex``, runs both kinds of row (a subtask's params name its parent).
``python -m es_workers.reindex TASK_ID...`` runs reindex tasks here without a broker (a
parent's subtasks, then the one that builds its destination's index, run one after another in
this process): for operators, and for tests that kill a real worker process.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from es_core.domain import Progress
from es_core.reindex.categories import copy_categories
from es_core.reindex.copy_range import copy_range
from es_core.reindex.parent import index_subtask, is_index_subtask, plan_subtasks
from es_core.reindex.refetch import refetcher
from es_core.storage.bulk_index import build_vector_index
from es_core.tasks.model import Task, Waiting
from es_core.tasks.store import get_task
from es_workers.app import celery_app
from es_workers.dispatch import dispatch
from es_workers.runtime import Handler, WorkerContext, context, execute, run, task_owner

Send = Callable[[asyncpg.Pool, Task], Awaitable[object]]


def _handler(send: Send) -> Handler:
    async def handle(
        ctx: WorkerContext, task: Task, progress: Progress
    ) -> dict[str, Any] | Waiting:
        if task.parent_task_id is not None and is_index_subtask(task.params):
            return await build_vector_index(
                ctx.pool, ctx.settings, task.params["destination_collection_id"]
            )
        if task.parent_task_id is not None:
            return await copy_range(
                ctx.pool,
                ctx.encoders,
                task,
                owner=task_owner.get(),
                lease_seconds=ctx.settings.task_lease_seconds,
                batch_size=ctx.settings.reindex_batch_size,
                refetch=refetcher(ctx.loaders, ctx.preparer),
            )
        # The categories come along first: few, and done once the ranges are planned.
        categories = await copy_categories(
            ctx.pool,
            ctx.encoders,
            ctx.plugin.get_search_index_info(),
            task,
            batch_size=ctx.settings.reindex_batch_size,
            progress=progress,
        )
        if categories is None:
            return {"stopped": True}
        children, finished = await plan_subtasks(ctx.pool, ctx.settings, task)
        if finished is not None:
            # An empty source: the destination's index is built here, over no rows.
            await build_vector_index(
                ctx.pool, ctx.settings, task.params["destination_collection_id"]
            )
            return finished | {"categories_copied": categories}
        for child in children:
            await send(ctx.pool, child)
        return Waiting(
            {"subtasks": len(children), "categories_copied": categories},
            "waiting for its subtasks",
        )

    return handle


async def run_reindex_task(task_id: str, send: Send = dispatch) -> str:
    """Run one reindex row (parent or subtask); the runtime then settles the parent it belongs
    to (``es_core.tasks.workflow``)."""
    return await execute(task_id, _handler(send))


async def run_here(task_id: str) -> str:
    """Run a reindex and its subtasks in this process, one after another (no broker)."""
    queued: list[Task] = []

    async def keep(_: asyncpg.Pool, child: Task) -> None:
        queued.append(child)

    status = await run_reindex_task(task_id, keep)
    for child in queued:
        await run_reindex_task(child.task_id, keep)
    ctx = await context()
    # Once every range is copied, the parent waits for its index-building subtask.
    parent_id = (await get_task(ctx.pool, task_id)).parent_task_id or task_id
    index_task = await index_subtask(ctx.pool, parent_id)
    if index_task is not None and index_task.status == "pending":
        await run_reindex_task(index_task.task_id, keep)
    if queued:
        status = (await get_task(ctx.pool, task_id)).status
    return status


@celery_app.task(name="es.reindex", acks_late=True, reject_on_worker_lost=True)
def reindex(task_id: str) -> str:
    return run(run_reindex_task(task_id))


if __name__ == "__main__":
    for task_id in sys.argv[1:]:
        print(task_id, run(run_here(task_id)), flush=True)
