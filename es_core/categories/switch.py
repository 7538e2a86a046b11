"""The categories switch: a category-tuned version's own categories collection
(``categories/<version>``) filled with the categories an item model's predictions read now,
re-encoded by that version, and the item model's ``categories_blue`` row pointed at it.

A categories fine-tuning's deploy_as_blue runs it as the step of its chain after the
deployment (``es_core.serving.deploy_as_blue``), as a task of its own (kind
``categories_switch``): served through Triton, the worker that encodes must find the version
deployed. The task takes ids only, its source fixed when the chain creates it, so a replay
(a worker killed mid-copy, the task restarted) copies the same categories again: each is
written at its own version, so a replay writes none the destination already holds at that
version, and a newer write there stays. The copy and the pointer change share one
transaction holding ``lock_for_change``: no category write reaches only the old collection.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from es_core.categories.store import blue_categories, ensure_blue_categories
from es_core.collections.write_targets import lock_for_change
from es_core.config import Settings
from es_core.domain import Collection, Model, Progress
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition
from es_core.plugins.protocol import SearchIndexInfo
from es_core.reindex.categories import copy_all
from es_core.storage import catalog
from es_core.tasks.model import Task, TaskKind
from es_core.tasks.store import create_task

KIND: TaskKind = "categories_switch"


def switch_key(fine_tuning_task_id: str) -> str:
    """The idempotency key of a chain's categories switch: one per fine-tuning task."""
    return f"categories_switch/{fine_tuning_task_id}"


async def start_categories_switch(
    conn: asyncpg.Connection, fine_tuning_task_id: str, items_model_id: str, model_id: str
) -> tuple[Task, bool]:
    """The chain's switch task, created in the caller's transaction (or the one created
    before, found by its key); its source is what ``items_model_id``'s predictions read now."""
    items_model = await catalog.get_model(conn, items_model_id)
    source = await blue_categories(conn, items_model)
    if source is None:
        raise FailedPrecondition(f"model {items_model_id!r} has no categories collection any more")
    params = {
        "items_model_id": items_model_id,
        "model_id": model_id,
        "source_collection_id": source.collection_id,
        "fine_tuning_task_id": fine_tuning_task_id,
    }
    return await create_task(conn, KIND, params, idempotency_key=switch_key(fine_tuning_task_id))


async def run_categories_switch(
    pool: asyncpg.Pool,
    settings: Settings,
    index: SearchIndexInfo,
    encoders: EncoderRegistry,
    task: Task,
    progress: Progress,
) -> dict[str, Any]:
    """What the switch task's worker does (see the module)."""
    async with pool.acquire() as conn:
        items_model = await catalog.get_model(conn, str(task.params["items_model_id"]))
        model = await catalog.get_model(conn, str(task.params["model_id"]))
        source = await catalog.get_collection(
            conn, str(task.params["source_collection_id"]), kind="categories"
        )
    switched = await copy_and_point(
        pool, settings, index, encoders, items_model, source, model, progress
    )
    return {"stopped": True} if switched is None else switched


async def copy_and_point(
    pool: asyncpg.Pool,
    settings: Settings,
    index: SearchIndexInfo,
    encoders: EncoderRegistry,
    items_model: Model,
    source: Collection,
    model: Model,
    progress: Progress,
) -> dict[str, Any] | None:
    """Copy ``source`` into ``model``'s categories collection and point ``items_model``'s
    predictions at it; returns what was done, or None when ``progress`` said stop (nothing
    switched then). Refused when ``items_model``'s predictions read neither the source nor
    the destination any more (someone else switched them meanwhile)."""
    async with pool.acquire() as conn, conn.transaction():
        destination = await ensure_blue_categories(conn, model, index)
    async with pool.acquire() as conn, conn.transaction():
        await lock_for_change(conn)
        now = await blue_categories(conn, items_model)
        if now is None or now.collection_id not in (
            source.collection_id,
            destination.collection_id,
        ):
            raise FailedPrecondition(
                f"the predictions of model {items_model.model_id!r} read"
                f" {now.collection_id if now else 'no categories'} now, not"
                f" {source.collection_id}: not switched"
            )
        copied = await copy_all(
            pool,
            encoders,
            source,
            destination,
            batch_size=settings.reindex_batch_size,
            progress=progress,
        )
        if copied is None:
            return None
        await conn.execute(
            "UPDATE categories_blue SET collection_id = $2 WHERE model_id = $1",
            items_model.model_id,
            destination.collection_id,
        )
    return {
        "items_model_id": items_model.model_id,
        "previous_categories_collection_id": source.collection_id,
        "categories_collection_id": destination.collection_id,
        "categories_copied": copied,
    }
