"""Whether an import fills its collection in bulk (rows first, the vector index at the end).

The rule: an import goes the bulk way when its collection is not read by default (neither the
blue collection nor the rollback target), no running reindex owns the collection's index, and
the import expects at least ``bulk_import_min_items`` items and more than the collection holds
(it at least doubles it: building the index again over everything costs less than inserting
that many rows one by one into the graph). Anything else takes the row path: readers of a
live collection never see it without its index.

A bulk import drops the collection's vector index when it starts (the collection is then
'building', which a switch refuses) and builds it when it ends, whether it ended well or not
(the rows it wrote stay, as on the row path). A worker killed mid-import leaves the collection
'building'; whoever takes the import over sees that and carries on in bulk.
"""

from __future__ import annotations

import asyncpg

from es_core.collections.write_targets import lock_for_change
from es_core.config import Settings
from es_core.domain import Collection
from es_core.storage.bulk_index import start_bulk_fill
from es_core.storage.catalog import get_collection
from es_core.storage.item_rows import count_originals
from es_core.tasks.lookups import task_status


async def begin_bulk_import(
    pool: asyncpg.Pool, settings: Settings, collection: Collection, expected: int | None
) -> bool:
    """Whether the import fills ``collection`` in bulk; when it starts to, its vector index is
    dropped now (under the alias lock: no switch or reindex start in between)."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_for_change(conn)
        current = await get_collection(conn, collection.collection_id, kind=None)
        if current.kind != "items":
            return False
        alias = await conn.fetchrow(
            "SELECT collection_id, previous_collection_id FROM blue_collection"
        )
        if alias is not None and current.collection_id in tuple(alias):
            return False
        if current.reindex_task_id is not None and current.index_state != "ready":
            if await task_status(conn, current.reindex_task_id) != "done":
                return False  # the reindex filling it builds the index at its end
        if current.index_state != "ready":
            return True  # an earlier run of this import started the bulk fill
        if expected is None or expected < settings.bulk_import_min_items:
            return False
        if expected <= await count_originals(conn, current):
            return False
        await start_bulk_fill(conn, current)
        return True
