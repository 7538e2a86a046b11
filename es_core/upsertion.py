"""The upsertion job: split, encode in batches, write each batch in one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import numpy as np

from es_core.config import Settings
from es_core.encoders.registry import EncoderRegistry
from es_core.items import ItemInput
from es_core.splitter import split_text
from es_core.storage.catalog import Collection
from es_core.storage.items import AVERAGE_PART_ID, average_vector, delete_items, replace_items

# Called between batches: (fraction done, message) -> False when the task should stop.
Progress = Callable[[float, str], Awaitable[bool]]


Split = Callable[[str], list[str]]


def _parts_of(
    item: ItemInput, settings: Settings, split: Split | None = None
) -> list[tuple[str, str | None, Any]]:
    """(part id, text to encode or None, given vector or None) for each part. A whole text is
    cut by ``split`` (the plugin's items splitter), else by the built-in sentence splitter."""
    if item.text is not None:
        chunks = (
            split(item.text)
            if split is not None
            else split_text(
                item.text,
                max_words=settings.splitter_max_words,
                overlap_words=settings.splitter_overlap_words,
            )
        )
        return [(str(i), chunk, None) for i, chunk in enumerate(chunks)]
    return [(p.part_id, p.text, p.vector) for p in item.parts]


def build_rows(
    items: list[ItemInput],
    collection: Collection,
    registry: EncoderRegistry,
    settings: Settings,
    split: Split | None = None,
) -> list[tuple[Any, ...]]:
    """Encode every text part of ``items`` in one call and lay out their table rows."""
    layout = [(item, _parts_of(item, settings, split)) for item in items]
    texts = [text for _, parts in layout for _, text, vector in parts if vector is None]
    encoded = (
        registry.get(collection.model).encode_items([t for t in texts if t is not None])
        if texts
        else np.zeros((0, collection.model.dimensions), dtype=np.float32)
    )
    rows: list[tuple[Any, ...]] = []
    next_encoded = 0
    for item, parts in layout:
        vectors = []
        for part_id, text, given in parts:
            if given is None:
                vector = encoded[next_encoded]
                next_encoded += 1
            else:
                vector = np.asarray(given, dtype=np.float32)
            vectors.append(vector)
            rows.append((item.object_id, part_id, False, None, text, vector, item.payload))
        average = average_vector(np.stack(vectors), collection.model.metric)
        rows.append((item.object_id, AVERAGE_PART_ID, True, None, None, average, item.payload))
    return rows


async def run_upsertion(
    pool: asyncpg.Pool,
    collection: Collection,
    items: list[ItemInput],
    registry: EncoderRegistry,
    settings: Settings,
    progress: Progress,
    split: Split | None = None,
) -> dict[str, Any]:
    """Write ``items``; re-running it writes the same rows again (idempotent by object_id)."""
    written = 0
    size = settings.upsert_db_batch_size
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        # Encoding is CPU-bound: keep the event loop free for lease renewals meanwhile.
        rows = await asyncio.to_thread(build_rows, batch, collection, registry, settings, split)
        async with pool.acquire() as conn:
            await replace_items(
                conn,
                collection,
                rows,
                [item.object_id for item in batch],
                drop_user_copies=settings.delete_user_copies_on_upsert,
            )
        written += len(batch)
        if not await progress(written / len(items), f"upserted {written} of {len(items)} items"):
            return {"upserted_count": written, "stopped": True}
    return {"upserted_count": written}


async def run_deletion(
    pool: asyncpg.Pool, collection: Collection, object_ids: list[str]
) -> dict[str, Any]:
    async with pool.acquire() as conn:
        deleted = await delete_items(conn, collection, object_ids)
    return {"deleted_count": deleted, "missing_count": len(object_ids) - deleted}
