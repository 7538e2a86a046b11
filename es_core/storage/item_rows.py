"""Reading and writing item rows of one collection table."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.domain import Collection
from es_core.storage.catalog import items_table

ROW_COLUMNS = ["object_id", "part_id", "is_average", "user_id", "text", "vector", "payload"]
AVERAGE_PART_ID = ""


@dataclass(frozen=True)
class PartRow:
    part_id: str
    text: str | None
    vector: list[float] | None


@dataclass(frozen=True)
class StoredItem:
    object_id: str
    payload: dict[str, Any]
    parts: list[PartRow]
    user_id: str | None
    update_time: datetime


def average_vector(vectors: npt.NDArray[np.float32], metric: str) -> npt.NDArray[np.float32]:
    """The item's summary vector; unit length again under cosine so distances stay comparable."""
    mean = vectors.mean(axis=0)
    if metric == "cosine":
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            mean = mean / norm
    return np.asarray(mean, dtype=np.float32)


async def lock_heads(
    conn: asyncpg.Connection, collection: Collection, object_ids: list[str]
) -> None:
    """Lock the items' head rows, in object_id order, until the transaction ends.

    Every writer of an item locks its head first, and in the same order, so two writers of
    overlapping batches (or a writer and a reindex page) wait for each other instead of
    deadlocking; the statement that follows sees what the other one committed."""
    await conn.execute(
        f"SELECT 1 FROM {items_table(collection)} WHERE object_id = ANY($1::text[])"
        f" AND is_average AND user_id IS NULL ORDER BY object_id FOR UPDATE",
        object_ids,
    )


async def replace_items(
    conn: asyncpg.Connection,
    collection: Collection,
    rows: list[tuple[Any, ...]],
    object_ids: list[str],
    *,
    drop_user_copies: bool = True,
) -> None:
    """Drop the originals of ``object_ids`` (and, by default, users' improved copies of them,
    which were learnt from the old content) and write ``rows`` instead: one transaction."""
    async with conn.transaction():
        await lock_heads(conn, collection, object_ids)
        await conn.execute(
            f"DELETE FROM {items_table(collection)} WHERE object_id = ANY($1::text[])"
            f" AND (user_id IS NULL OR $2)",
            object_ids,
            drop_user_copies,
        )
        await conn.copy_records_to_table(collection.table_name, records=rows, columns=ROW_COLUMNS)
        await refresh_lexical(conn, collection, object_ids)


async def refresh_lexical(
    conn: asyncpg.Connection, collection: Collection, object_ids: list[str]
) -> None:
    """Recount the items' BM25 postings and term statistics from their stored original parts
    (none when they are gone), in the caller's transaction."""
    await conn.execute(
        "SELECT es_lexical_refresh($1, $2::text::regconfig, $3::text[])",
        collection.table_name,
        collection.text_search_config,
        object_ids,
    )


async def delete_items(
    conn: asyncpg.Connection, collection: Collection, object_ids: list[str]
) -> int:
    """Remove the items and every user's copy of them; returns the number of items removed."""
    async with conn.transaction():
        await lock_heads(conn, collection, object_ids)
        result = await conn.fetchval(
            f"WITH gone AS (DELETE FROM {items_table(collection)} WHERE object_id = ANY($1::text[])"
            f" RETURNING object_id, is_average, user_id)"
            f" SELECT count(*) FROM gone WHERE is_average AND user_id IS NULL",
            object_ids,
        )
        await refresh_lexical(conn, collection, object_ids)
    return int(result)


async def get_items(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    object_ids: list[str],
    *,
    include_vectors: bool,
) -> list[StoredItem]:
    """The original items in the order asked for; missing ids are simply absent."""
    vector_column = "vector" if include_vectors else "NULL::vector"
    rows = await conn.fetch(
        f"SELECT object_id, part_id, is_average, text, {vector_column} AS vector, payload,"
        f" update_time FROM {items_table(collection)}"
        f" WHERE object_id = ANY($1::text[]) AND user_id IS NULL ORDER BY object_id, row_id",
        object_ids,
    )
    by_id: dict[str, StoredItem] = {}
    for row in rows:
        item = by_id.get(row["object_id"])
        if item is None:
            item = StoredItem(row["object_id"], row["payload"], [], None, row["update_time"])
            by_id[row["object_id"]] = item
        if not row["is_average"]:
            vector = None if row["vector"] is None else row["vector"].to_list()
            item.parts.append(PartRow(row["part_id"], row["text"], vector))
    return [by_id[i] for i in object_ids if i in by_id]


async def count_originals(conn: asyncpg.Connection | asyncpg.Pool, collection: Collection) -> int:
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {items_table(collection)} WHERE is_average AND user_id IS NULL"
        )
    )
