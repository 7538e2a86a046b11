"""Bulk fills: a collection's rows first, its HNSW vector index once at the end.

Inserting a row into an HNSW index costs a graph search (milliseconds for 384 dimensions);
building the index over rows already loaded costs a fraction of that per row. A collection
that nobody reads while it fills (a reindex's green destination, a large import into a
collection that is neither blue nor the rollback target) is therefore filled without its
vector index (``index_state`` 'building') and indexed once, by ``build_vector_index``.

The build is CREATE INDEX CONCURRENTLY: writes that reach the collection meanwhile (every
write to the blue collection reaches a reindex's destination too) go on, they are not held
behind it. An interrupted concurrent build leaves an invalid index, which the next build
drops first; the collection stays 'building' (or 'failed') until a build ends, and only a
'ready' collection can become blue.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection
from es_core.storage.catalog import (
    get_collection,
    vector_index_name,
    vector_index_sql,
)
from es_core.storage.db import quote_ident

log = logging.getLogger(__name__)


async def vector_index_valid(conn: asyncpg.Connection | asyncpg.Pool, table_name: str) -> bool:
    """Whether the table's HNSW index exists and is valid (a finished build)."""
    return bool(
        await conn.fetchval(
            "SELECT coalesce((SELECT indisvalid FROM pg_index WHERE indexrelid ="
            " to_regclass($1)), false)",
            quote_ident(vector_index_name(table_name)),
        )
    )


async def start_bulk_fill(conn: asyncpg.Connection, collection: Collection) -> None:
    """Drop the collection's vector index and mark it 'building', in the caller's transaction:
    for a collection no default search reads (the caller checks), about to be filled in bulk."""
    await conn.execute(
        f"DROP INDEX IF EXISTS {quote_ident(vector_index_name(collection.table_name))}"
    )
    await conn.execute(
        "UPDATE collections SET index_state = 'building', update_time = now()"
        " WHERE collection_id = $1",
        collection.collection_id,
    )


async def mark_index_failed(conn: asyncpg.Connection, collection_id: str) -> None:
    """A bulk fill that ended badly before its index was built: the collection is 'failed'
    (never switched to) until a restart of the fill builds it."""
    await conn.execute(
        "UPDATE collections SET index_state = 'failed', update_time = now()"
        " WHERE collection_id = $1 AND index_state = 'building'",
        collection_id,
    )


async def mark_index_building(conn: asyncpg.Connection, collection_id: str) -> None:
    """A restarted fill: a 'failed' collection is 'building' again."""
    await conn.execute(
        "UPDATE collections SET index_state = 'building', update_time = now()"
        " WHERE collection_id = $1 AND index_state = 'failed'",
        collection_id,
    )


async def build_vector_index(
    pool: asyncpg.Pool, settings: Settings, collection_id: str
) -> dict[str, Any]:
    """Build the collection's HNSW index (if it has none yet), ANALYZE the table and mark the
    collection 'ready'. Safe to run again after an interruption. Returns what it did."""
    async with pool.acquire() as conn:
        collection = await get_collection(conn, collection_id)
        table, name = collection.table_name, vector_index_name(collection.table_name)
        started = time.perf_counter()
        built = False
        # The session's settings only (the pool resets them when the connection goes back).
        await conn.execute("SET statement_timeout = 0")
        await conn.execute(
            "SELECT set_config('maintenance_work_mem', $1, false),"
            " set_config('max_parallel_maintenance_workers', $2, false)",
            settings.index_build_maintenance_work_mem.replace(" ", ""),
            str(settings.index_build_parallel_workers),
        )
        if not await vector_index_valid(conn, table):
            # Left invalid by an interrupted concurrent build: it must go before a new one.
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(name)}")
            await conn.execute(
                vector_index_sql(
                    table,
                    collection.model,
                    collection.hnsw_m,
                    collection.hnsw_ef_construction,
                    concurrently=True,
                )
            )
            built = True
        await conn.execute(f"ANALYZE {quote_ident(table)}")
        await conn.execute(
            "UPDATE collections SET index_state = 'ready', update_time = now()"
            " WHERE collection_id = $1",
            collection_id,
        )
    seconds = time.perf_counter() - started
    log.info(
        "collection %s: vector index %s in %.1f s",
        collection_id,
        "built" if built else "kept",
        seconds,
    )
    return {"index_built": built, "index_seconds": round(seconds, 3)}
