"""Declarations of filterable fields as the API and a bulk worker make them: the task recorded
(``create_declaration``), then run by the worker runtime itself (``es_workers.runtime.execute``
over the Celery task's handler), in this process and on the test's pool."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from es_core.collections.filterable import create_declaration
from es_core.collections.listing import CollectionInfo, describe
from es_core.config import Settings
from es_core.domain import FilterableField
from es_core.encoders.registry import EncoderRegistry
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.storage.catalog import get_collection
from es_core.tasks import store
from es_core.tasks.model import Task
from es_workers import runtime
from es_workers.filterable_fields import _declare


async def run_task(pool: asyncpg.Pool, task_id: str, settings: Settings | None = None) -> Task:
    """The task run as a bulk worker runs it; its row once the run ended."""
    settings = settings or Settings()
    plugin = TextMiniLMPlugin(settings)
    encoders = EncoderRegistry(plugin.get_inference_client_factory().create, batch_size=8)
    previous = runtime._context
    runtime._context = runtime.WorkerContext(settings, pool, encoders, plugin)
    try:
        await runtime.execute(task_id, _declare)
    finally:
        runtime._context = previous
    return await store.get_task(pool, task_id)


async def start(
    pool: asyncpg.Pool,
    collection_id: str,
    fields: Sequence[FilterableField],
    idempotency_key: str = "",
) -> Task:
    """The pending task of a declaration, as SetFilterableFields records it."""
    async with pool.acquire() as conn:
        started = await create_declaration(
            conn, collection_id, fields, idempotency_key=idempotency_key
        )
    return started.task


async def declare(
    pool: asyncpg.Pool, collection_id: str, fields: Sequence[FilterableField]
) -> CollectionInfo:
    """A declaration recorded and run to its end, which must be done; the collection then."""
    task = await run_task(pool, (await start(pool, collection_id, fields)).task_id)
    assert task.status == "done", (task.status, task.error)
    async with pool.acquire() as conn:
        collection = await get_collection(conn, str(task.params["resolved_collection_id"]))
        return await describe(conn, collection)
