"""Categories collections in the catalogue: one blue categories collection per model, named
by ``categories_blue`` (apart from the items' ``blue_collection``), and the reads
PredictCategories and ListCategories make of it.

A categories collection is an ordinary collection of kind ``categories`` (see
``es_core.storage.catalog``): its table, ordered writes and tasks are the items' own."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.collections.write_targets import models_in_step
from es_core.domain import Collection, Model
from es_core.plugins.protocol import SearchIndexInfo
from es_core.storage.catalog import (
    DISTANCE_OPERATORS,
    create_collection,
    create_items_table,
    get_collection,
    get_model,
    postings_table,
    termstats_table,
    versions_table,
)
from es_core.storage.catalog import items_table as table_of
from es_core.storage.item_rows import head_rows

PREFIX = "categories/"


def categories_collection_id(model: Model) -> str:
    """The id of a model's categories collection (item collections are named by model ids,
    which the platform makes without "/")."""
    return PREFIX + model.model_id


async def blue_categories(conn: asyncpg.Connection, model: Model) -> Collection | None:
    """The model's blue categories collection; None when it has none."""
    collection_id = await conn.fetchval(
        "SELECT collection_id FROM categories_blue WHERE model_id = $1", model.model_id
    )
    if collection_id is None:
        return None
    return await get_collection(conn, collection_id, kind="categories")


async def ensure_blue_categories(
    conn: asyncpg.Connection, model: Model, index: SearchIndexInfo
) -> Collection:
    """The model's blue categories collection, created (blue at once, empty) when it has none,
    in the caller's transaction. The model row is locked so that two first writes create one.
    A categories collection dropped with its model's last item collection comes back to life
    under its id, with a new, empty table."""
    await conn.execute("SELECT 1 FROM models WHERE model_id = $1 FOR UPDATE", model.model_id)
    found = await blue_categories(conn, model)
    if found is not None:
        return found
    collection_id = categories_collection_id(model)
    dropped = await conn.fetchval(
        "SELECT table_name FROM collections WHERE collection_id = $1 AND delete_time IS NOT NULL"
        " FOR UPDATE",
        collection_id,
    )
    if dropped is None:
        collection = await create_collection(
            conn,
            collection_id,
            model,
            state="blue",
            hnsw_m=index.hnsw_m,
            hnsw_ef_construction=index.hnsw_ef_construction,
            kind="categories",
        )
    else:
        await conn.execute(
            "UPDATE collections SET state = 'blue', delete_time = NULL, create_time = now(),"
            " update_time = now(), hnsw_m = $2, hnsw_ef_construction = $3"
            " WHERE collection_id = $1",
            collection_id,
            index.hnsw_m,
            index.hnsw_ef_construction,
        )
        await create_items_table(conn, dropped, model, index.hnsw_m, index.hnsw_ef_construction)
        collection = await get_collection(conn, collection_id, kind="categories")
    await conn.execute(
        "INSERT INTO categories_blue (model_id, collection_id) VALUES ($1, $2)",
        model.model_id,
        collection.collection_id,
    )
    return collection


async def ensure_in_step(
    conn: asyncpg.Connection, model: Model, index: SearchIndexInfo
) -> Collection:
    """The model's blue categories collection (``ensure_blue_categories``) and, when the
    model's items are kept in step with other models' (a reindex into another model, the
    rollback target), those models' too: a category write then reaches each of them. The
    caller's transaction holds ``lock_for_write``, so the set cannot change meanwhile."""
    collection = await ensure_blue_categories(conn, model, index)
    in_step = await models_in_step(conn)
    if model.model_id in in_step:
        for model_id in in_step:
            if model_id != model.model_id:
                await ensure_blue_categories(conn, await get_model(conn, model_id), index)
    return collection


async def drop_model_categories(conn: asyncpg.Connection, model_id: str) -> list[str]:
    """Drop the model's categories collections (tables gone, catalogue rows kept as deleted,
    its blue pointer removed), in the caller's transaction; returns their ids. For a model no
    live item collection uses any more: nothing could read or keep them up to date."""
    ids = [
        r["collection_id"]
        for r in await conn.fetch(
            "SELECT collection_id FROM collections WHERE model_id = $1 AND kind = 'categories'"
            " AND delete_time IS NULL ORDER BY collection_id FOR UPDATE",
            model_id,
        )
    ]
    await conn.execute("DELETE FROM categories_blue WHERE model_id = $1", model_id)
    for collection_id in ids:
        collection = await get_collection(conn, collection_id, kind="categories")
        await conn.execute(
            f"DROP TABLE IF EXISTS {table_of(collection)}, {postings_table(collection)},"
            f" {termstats_table(collection)}, {versions_table(collection)}"
        )
        await conn.execute(
            "UPDATE collections SET state = 'retired', delete_time = now(), update_time = now()"
            " WHERE collection_id = $1",
            collection_id,
        )
    return ids


async def count_categories(
    conn: asyncpg.Connection, collection: Collection, adding: list[str]
) -> tuple[int, int]:
    """(categories held now, how many of ``adding`` are not among them)."""
    row = await conn.fetchrow(
        f"SELECT count(*) AS held, count(*) FILTER (WHERE object_id = ANY($1::text[])) AS known"
        f" FROM {table_of(collection)} WHERE {head_rows()}",
        adding,
    )
    return int(row["held"]), len(adding) - int(row["known"])


async def list_heads(
    conn: asyncpg.Connection, collection: Collection, after_id: str | None, limit: int
) -> list[tuple[str, dict[str, Any]]]:
    """(category id, head payload) in id order after ``after_id``, at most ``limit``."""
    rows = await conn.fetch(
        f"SELECT object_id, payload FROM {table_of(collection)} WHERE {head_rows()}"
        f" AND ($1::text IS NULL OR object_id > $1) ORDER BY object_id LIMIT $2",
        after_id,
        limit,
    )
    return [(r["object_id"], r["payload"]) for r in rows]


@dataclass(frozen=True)
class CategoryDistance:
    category_id: str
    distance: float
    payload: dict[str, Any]


async def nearest_categories(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    vector: npt.NDArray[np.float32],
    cap: int,
) -> list[CategoryDistance]:
    """Every category (the ``cap`` nearest, should there be more), nearest first, scored
    exactly: a sequential scan of a few thousand rows is what a softmax over all of them needs
    anyway. A category of several parts (written by hand) counts its nearest part."""
    op = DISTANCE_OPERATORS[collection.model.metric]
    t = table_of(collection)
    rows = await conn.fetch(
        f"SELECT s.object_id, s.distance, h.payload FROM ("
        f" SELECT p.object_id, min(p.vector {op} $1) AS distance FROM {t} p"
        f" WHERE p.user_id IS NULL AND NOT p.is_average GROUP BY p.object_id) s"
        f" JOIN {t} h ON h.object_id = s.object_id AND {head_rows('h')}"
        f" ORDER BY s.distance, s.object_id LIMIT $2",
        vector,
        cap,
    )
    return [CategoryDistance(r["object_id"], float(r["distance"]), r["payload"]) for r in rows]
