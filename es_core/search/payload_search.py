"""Items by payload alone: filtered, sorted, paged, and counted. Reads one head row per item."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.domain import Collection
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.filters.model import Filter
from es_core.page_tokens import PageTokens
from es_core.search.keyset import SortKey, cursor_key, payload_sort_key
from es_core.search.query import PayloadQuery
from es_core.storage.catalog import items_table
from es_core.storage.item_rows import head_rows

HEADS = head_rows()


@dataclass(frozen=True)
class PayloadHit:
    object_id: str
    payload: dict[str, Any]
    update_time: datetime


async def payload_search(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    query: PayloadQuery,
    tokens: PageTokens,
) -> tuple[list[PayloadHit], str]:
    scope = query.scope(collection.collection_id)
    params = SqlParams()
    where = [
        compile_filter(query.filter, params, "payload", declared=collection.filterable_fields),
        HEADS,
    ]
    if query.sort is None:
        key, casts = SortKey([("object_id", False)]), ["text"]
    else:
        key, casts = payload_sort_key(query.sort, params)
    if query.page_token:
        after = cursor_key(tokens.decode(query.page_token, scope), casts)
        where.append(key.after(after, casts, params))
    key_columns = ", ".join(f"{expr} AS k{i}" for i, (expr, _) in enumerate(key.columns))
    rows = await conn.fetch(
        f"SELECT object_id, payload, update_time, {key_columns} FROM {items_table(collection)}"
        f" WHERE {' AND '.join(where)} ORDER BY {key.order_by()}"
        f" LIMIT {params.add(query.limit + 1)}::int",
        *params.values,
    )
    hits = [PayloadHit(r["object_id"], r["payload"], r["update_time"]) for r in rows[: query.limit]]
    next_token = ""
    if len(rows) > query.limit:
        last = rows[query.limit - 1]
        cursor = {"k": [last[f"k{i}"] for i in range(len(casts))], "col": collection.collection_id}
        next_token = tokens.encode(cursor, scope)
    return hits, next_token


async def count_items(
    conn: asyncpg.Connection | asyncpg.Pool, collection: Collection, filter: Filter | None
) -> int:
    params = SqlParams()
    where = compile_filter(filter, params, "payload", declared=collection.filterable_fields)
    return int(
        await conn.fetchval(
            f"SELECT count(*) FROM {items_table(collection)} WHERE {HEADS} AND ({where})",
            *params.values,
        )
    )


async def head_vector(
    conn: asyncpg.Connection | asyncpg.Pool, collection: Collection, object_id: str
) -> npt.NDArray[np.float32] | None:
    """The item's average vector (what "items like this one" starts from), or None."""
    vector = await conn.fetchval(
        f"SELECT vector FROM {items_table(collection)} WHERE object_id = $1 AND {HEADS}", object_id
    )
    return None if vector is None else np.asarray(vector.to_numpy(), dtype=np.float32)
