"""The upsertion job: split, encode in batches, write each batch in one transaction.

While a reindex fills a green collection, a write reaches it too (see
``es_core.collections.write_targets``): each batch is encoded once per model and written to
every target collection in the same transaction, oldest collection first.

Writes are ordered by the version each request was given when accepted: a write replayed or
restarted after a newer one leaves what the newer one wrote (see
``es_core.storage.item_rows``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import numpy as np

from es_core.collections.write_targets import lock_for_write, write_targets
from es_core.config import Settings
from es_core.domain import Collection, Progress
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition
from es_core.item_input import ItemInput
from es_core.splitter import split_text
from es_core.storage.item_rows import (
    AVERAGE_PART_ID,
    NO_PAYLOAD,
    UNVERSIONED,
    WriteOutcome,
    average_vector,
    delete_items,
    replace_items,
)
from es_core.tasks.results import MAX_SUPERSEDED_IDS_LISTED

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
    use_given_vectors: bool = True,
) -> list[tuple[Any, ...]]:
    """Encode every text part of ``items`` in one call and lay out their table rows.

    A part with both a text and a vector keeps the given vector only in the collection the
    request named (``use_given_vectors``); another collection the write reaches encodes the
    text with its own model, since the given vector belongs to the named collection's model."""
    layout = [
        (
            item,
            [
                (part_id, text, None if text is not None and not use_given_vectors else vector)
                for part_id, text, vector in _parts_of(item, settings, split)
            ],
        )
        for item in items
    ]
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
                if len(vector) != collection.model.dimensions:
                    raise FailedPrecondition(
                        f"item {item.object_id!r} part {part_id!r}: a vector of {len(vector)}"
                        f" values cannot go into collection {collection.collection_id!r}, whose"
                        f" model has {collection.model.dimensions} dimensions"
                    )
            vectors.append(vector)
            rows.append((item.object_id, part_id, False, None, text, vector, NO_PAYLOAD))
        average = average_vector(np.stack(vectors), collection.model.metric)
        rows.append((item.object_id, AVERAGE_PART_ID, True, None, None, average, item.payload))
    return rows


def _result(counts: dict[str, int], superseded: list[str]) -> dict[str, Any]:
    """A write's stored result; the superseded ones are named only when there are any."""
    if not superseded:
        return counts
    return {
        **counts,
        "superseded_count": len(superseded),
        "superseded_object_ids": superseded[:MAX_SUPERSEDED_IDS_LISTED],
    }


async def run_upsertion(
    pool: asyncpg.Pool,
    collection: Collection,
    items: list[ItemInput],
    registry: EncoderRegistry,
    settings: Settings,
    progress: Progress,
    split: Split | None = None,
    *,
    version: int = UNVERSIONED,
) -> dict[str, Any]:
    """Write ``items`` at ``version``, leaving those a newer write reached as they are (they
    are reported superseded); re-running it writes the same rows again."""
    written = 0
    upserted = 0
    superseded: list[str] = []
    size = settings.upsert_db_batch_size
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        outcome = await _write_batch(pool, collection, batch, registry, settings, split, version)
        upserted += len(outcome.applied)
        superseded += outcome.superseded
        written += len(batch)
        if not await progress(written / len(items), f"upserted {written} of {len(items)} items"):
            return {**_result({"upserted_count": upserted}, superseded), "stopped": True}
    return _result({"upserted_count": upserted}, superseded)


async def _write_batch(
    pool: asyncpg.Pool,
    collection: Collection,
    batch: list[ItemInput],
    registry: EncoderRegistry,
    settings: Settings,
    split: Split | None,
    version: int,
) -> WriteOutcome:
    """Encode for every target's model, then write all targets in one transaction. Encoding
    happens outside it; should a target appear meanwhile (a reindex started), encode for it too
    and write again. The outcome is the addressed collection's."""
    rows_by_model: dict[str, list[tuple[Any, ...]]] = {}
    object_ids = [item.object_id for item in batch]
    async with pool.acquire() as conn:
        targets = await write_targets(conn, collection)
    while True:
        for target in targets:
            if target.model.model_id not in rows_by_model:
                # Encoding is CPU-bound: keep the event loop free for lease renewals meanwhile.
                rows_by_model[target.model.model_id] = await asyncio.to_thread(
                    build_rows,
                    batch,
                    target,
                    registry,
                    settings,
                    split,
                    target.model.model_id == collection.model.model_id,
                )
        async with pool.acquire() as conn, conn.transaction():
            await lock_for_write(conn)
            targets = await write_targets(conn, collection)
            if any(t.model.model_id not in rows_by_model for t in targets):
                continue
            outcomes = {
                target.collection_id: await replace_items(
                    conn,
                    target,
                    rows_by_model[target.model.model_id],
                    object_ids,
                    version=version,
                    drop_user_copies=settings.delete_user_copies_on_upsert,
                )
                for target in targets
            }
            return outcomes[collection.collection_id]


async def run_deletion(
    pool: asyncpg.Pool,
    collection: Collection,
    object_ids: list[str],
    *,
    version: int = UNVERSIONED,
) -> dict[str, Any]:
    """Delete from every target collection in one transaction, leaving the items a newer write
    reached (reported superseded); counts are the addressed collection's."""
    async with pool.acquire() as conn, conn.transaction():
        await lock_for_write(conn)
        outcomes = {
            target.collection_id: await delete_items(conn, target, object_ids, version=version)
            for target in await write_targets(conn, collection)
        }
    addressed = outcomes[collection.collection_id]
    counts = {
        "deleted_count": addressed.removed,
        "missing_count": len(addressed.applied) - addressed.removed,
    }
    return _result(counts, addressed.superseded)
