"""The reindex step that brings a model's categories along: when the destination's model is
not the source's, the source model's blue categories are re-encoded by the destination's
model into its blue categories collection (created when missing), so that whichever of the
two collections is blue, PredictCategories answers from the same categories.

The parent reindex task runs it before it plans its ranges. It first creates the
destination's categories collection under ``lock_for_change``: category writes in flight
finish first, and every later one reaches both collections (``write_targets``). It then
copies the categories page by page, each category at the version of the write that wrote it
(``replace_items``): a newer write or deletion that reached the destination meanwhile is left
as it is, and a replay (a worker killed mid-copy, the task taken over or restarted) writes
the same rows again. Categories are few (``ES_CATEGORIES_MAX_PER_COLLECTION``, 10,000 by
default), so one task copies them all.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from es_core.categories.store import blue_categories, ensure_blue_categories
from es_core.collections.write_targets import lock_for_change
from es_core.domain import Collection, Progress
from es_core.encoders.registry import EncoderRegistry
from es_core.plugins.protocol import SearchIndexInfo
from es_core.reindex.pages import SourceItem, build_destination_rows, next_page_ids, read_items
from es_core.storage.catalog import get_collection
from es_core.storage.item_rows import ROW_COLUMNS, count_originals, replace_items
from es_core.tasks.model import Task


async def categories_to_copy(
    pool: asyncpg.Pool, index: SearchIndexInfo, parent: Task
) -> tuple[Collection, Collection] | None:
    """(source model's blue categories, destination model's blue categories, created when
    missing); None when the models are the same or the source model has no categories."""
    async with pool.acquire() as conn, conn.transaction():
        source_items = await get_collection(conn, parent.params["resolved_source_collection_id"])
        destination_items = await get_collection(conn, parent.params["destination_collection_id"])
        if source_items.model.model_id == destination_items.model.model_id:
            return None
        await lock_for_change(conn)
        source = await blue_categories(conn, source_items.model)
        if source is None:
            return None
        destination = await ensure_blue_categories(conn, destination_items.model, index)
    return source, destination


async def copy_categories(
    pool: asyncpg.Pool,
    registry: EncoderRegistry,
    index: SearchIndexInfo,
    parent: Task,
    *,
    batch_size: int,
    progress: Progress,
) -> int | None:
    """Copy the categories (see the module); returns how many were written, or None when the
    task was told to stop (``progress`` said so)."""
    pair = await categories_to_copy(pool, index, parent)
    if pair is None:
        return 0
    source, destination = pair
    return await copy_all(
        pool, registry, source, destination, batch_size=batch_size, progress=progress
    )


async def copy_all(
    pool: asyncpg.Pool,
    registry: EncoderRegistry,
    source: Collection,
    destination: Collection,
    *,
    batch_size: int,
    progress: Progress,
) -> int | None:
    """Every category of ``source`` re-encoded by ``destination``'s model and written there at
    its own version; returns how many were written, or None when ``progress`` said stop. A
    category fine-tuning fills the trained model's categories collection with it too."""
    total = max(1, await count_originals(pool, source))
    copied = seen = 0
    after: str | None = None
    while ids := await next_page_ids(pool, source, after, None, batch_size):
        items = await read_items(pool, source, ids)
        # Encoding is CPU-bound: keep the loop free for the lease heartbeat meanwhile.
        rows = await asyncio.to_thread(build_destination_rows, items, destination, registry)
        copied += await _write(pool, destination, items, rows)
        seen += len(ids)
        after = ids[-1]
        message = f"copying categories into {destination.collection_id}: {seen} of {total}"
        if not await progress(0.0, message):
            return None
    return copied


async def _write(
    pool: asyncpg.Pool,
    destination: Collection,
    items: list[SourceItem],
    rows: dict[str, list[tuple[Any, ...]]],
) -> int:
    """Write the page's categories, each at its own version: one transaction per version, so
    each takes its items' locks in id order, as every writer does."""
    by_version: dict[int, list[str]] = {}
    for item in items:
        if item.object_id in rows:
            by_version.setdefault(item.version, []).append(item.object_id)
    written = 0
    for version, object_ids in sorted(by_version.items()):
        # The copy's rows carry the source's update time and version; replace_items sets its own.
        records = [row[: len(ROW_COLUMNS)] for i in object_ids for row in rows[i]]
        async with pool.acquire() as conn, conn.transaction():
            outcome = await replace_items(conn, destination, records, object_ids, version=version)
        written += len(outcome.applied)
    return written
