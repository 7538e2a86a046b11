"""Creating a green collection for a model version, and deleting a collection.

A collection's id is its model's id: one live collection per model version. A deleted
collection keeps its catalogue row (sessions recorded on it still name it) and loses its table;
creating the model's collection again brings the row back to life with a new, empty table.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg

from es_core.categories.store import drop_model_categories
from es_core.collections.write_targets import lock_for_change
from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.errors import AlreadyExists, FailedPrecondition, NotFound
from es_core.plugins.protocol import SearchIndexInfo
from es_core.serving.deploy import start_undeploy
from es_core.storage.catalog import (
    check_collection_id,
    create_collection,
    create_items_table,
    get_collection,
    items_table,
    postings_table,
    termstats_table,
    versions_table,
)
from es_core.tasks.lookups import cancel_reindexes_of
from es_core.tasks.model import Task

log = logging.getLogger(__name__)


async def create_green_collection(
    conn: asyncpg.Connection,
    model: Model,
    settings: Settings,
    index: SearchIndexInfo,
    *,
    reindex_task_id: str | None,
    field: str = "destination_model_id",
    vector_index: bool = True,
) -> Collection:
    """The model's new green collection, in the caller's transaction (which should hold
    ``lock_for_change`` when a reindex is to fill it, so writes start reaching it at once).

    Its HNSW index is built with the plugin's parameters (``index``); its vectors' dimensions,
    metric and aggregation are the model row's, which the plugin's models take from ``index``
    when they enter the catalogue. ``vector_index`` False (a reindex's bulk fill) leaves the
    HNSW index to be built once the rows are in: the collection is 'building' until then, and
    cannot become blue."""
    collection_id = model.model_id
    row = await conn.fetchrow(
        "SELECT delete_time, table_name FROM collections WHERE collection_id = $1 FOR UPDATE",
        collection_id,
    )
    if row is not None and row["delete_time"] is None:
        raise AlreadyExists.field_error(
            field,
            f"model {model.model_id!r} already has collection {collection_id!r}; delete it first",
        )
    task_uuid = None if reindex_task_id is None else uuid.UUID(reindex_task_id)
    if row is None:
        await create_collection(
            conn,
            collection_id,
            model,
            state="green",
            hnsw_m=index.hnsw_m,
            hnsw_ef_construction=index.hnsw_ef_construction,
            text_search_config=settings.text_search_config,
            vector_index=vector_index,
        )
    else:
        await conn.execute(
            "UPDATE collections SET state = 'green', delete_time = NULL, create_time = now(),"
            " update_time = now(), hnsw_m = $2, hnsw_ef_construction = $3, index_state = $4"
            " WHERE collection_id = $1",
            collection_id,
            index.hnsw_m,
            index.hnsw_ef_construction,
            "ready" if vector_index else "building",
        )
        await create_items_table(
            conn,
            row["table_name"],
            model,
            index.hnsw_m,
            index.hnsw_ef_construction,
            vector_index=vector_index,
        )
    await conn.execute(
        "UPDATE collections SET reindex_task_id = $2 WHERE collection_id = $1",
        collection_id,
        task_uuid,
    )
    return await get_collection(conn, collection_id)


async def delete_collection(
    conn: asyncpg.Connection, settings: Settings, collection_id: str
) -> list[Task]:
    """Drop a collection that is not blue, in one transaction; returns the tasks to send
    after commit (an undeploy of its model when no other live collection uses it).

    When no other live item collection uses its model, the model's categories collection is
    dropped too: PredictCategories and CategoryService reach categories only through an item
    collection of their model, so nothing could read it or keep it up to date. A later
    reindex into that model copies the categories of its source again.

    Deleting the rollback target ends the chance to roll back. Reindex tasks into or out of
    the collection are canceled; their subtasks stop at their next page."""
    check_collection_id(collection_id)
    async with conn.transaction():
        await lock_for_change(conn)
        alias = await conn.fetchrow(
            "SELECT collection_id, previous_collection_id FROM blue_collection"
        )
        try:
            collection = await get_collection(conn, collection_id)
        except NotFound as exc:
            raise NotFound.field_error("collection_id", exc.message) from None
        if alias is not None and alias["collection_id"] == collection_id:
            raise FailedPrecondition.field_error(
                "collection_id", "is the blue collection; switch blue to another one first"
            )
        if alias is not None and alias["previous_collection_id"] == collection_id:
            await conn.execute("UPDATE blue_collection SET previous_collection_id = NULL")
        await cancel_reindexes_of(
            conn,
            collection_id,
            collection.reindex_task_id,
            f"collection {collection_id!r} was deleted",
        )
        # A vector index build on the table would hold the DROP (and every write, behind the
        # alias lock) until it ends: it is canceled; its subtask fails, its reindex is canceled.
        await conn.execute(
            "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index"
            " WHERE relid = to_regclass($1)",
            items_table(collection),
        )
        await conn.execute(
            f"DROP TABLE IF EXISTS {items_table(collection)}, {postings_table(collection)},"
            f" {termstats_table(collection)}, {versions_table(collection)}"
        )
        await conn.execute(
            "UPDATE collections SET state = 'retired', delete_time = now(), update_time = now(),"
            " reindex_task_id = NULL WHERE collection_id = $1",
            collection_id,
        )
        still_used = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM collections WHERE model_id = $1 AND kind = 'items'"
            " AND delete_time IS NULL)",
            collection.model.model_id,
        )
        if still_used:
            return []
        await drop_model_categories(conn, collection.model.model_id)
        task = await _start_undeploy(conn, settings, collection.model.model_id)
        return [] if task is None else [task]


async def _start_undeploy(
    conn: asyncpg.Connection, settings: Settings, model_id: str
) -> Task | None:
    """The undeploy task for a model no live collection uses, created in the caller's
    transaction; None when it must stay deployed for now."""
    try:
        task, _ = await start_undeploy(conn, settings, model_id)
    except FailedPrecondition as exc:  # e.g. still encoding for a reindex: leave it deployed
        log.info("model %s stays deployed: %s", model_id, exc.message)
        return None
    return task
