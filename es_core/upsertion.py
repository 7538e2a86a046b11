"""The upsertion job: split, encode in batches, write each batch in one transaction.

While a reindex fills a green collection, a write reaches it too (see
``es_core.collections.write_targets``): each batch is encoded once per model and written to
every target collection in the same transaction, oldest collection first.

Writes are ordered by the version each request was given when accepted: a write replayed or
restarted after a newer one leaves what the newer one wrote (see
``es_core.storage.item_rows``).

Items are prepared first (``es_core.ingest.prepare``: references read, texts cleaned and
split); an item that fails there, or that the model cannot encode, or whose rows the database
refuses, is reported with its stage and the rest of its batch is written."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np

from es_core.collections.write_targets import lock_for_write, write_targets
from es_core.config import Settings
from es_core.domain import Collection, Progress
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import EsError, FailedPrecondition, first_line
from es_core.ingest.cleaning import ItemsCleaner, TextCleaner
from es_core.ingest.prepare import Preparer
from es_core.item_input import ItemInput
from es_core.loaders.model import ItemFailure, Stage
from es_core.loaders.protocol import Fetcher
from es_core.splitter import split_text
from es_core.storage.content_hashes import content_hash, stored_vectors
from es_core.storage.item_rows import (
    AVERAGE_PART_ID,
    NO_PAYLOAD,
    UNVERSIONED,
    average_vector,
    delete_items,
    replace_items,
)
from es_core.tasks.results import MAX_FAILED_ITEMS_LISTED, MAX_SUPERSEDED_IDS_LISTED

log = logging.getLogger(__name__)
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


Reuse = Mapping[bytes, Any]


def build_rows(
    items: list[ItemInput],
    collection: Collection,
    registry: EncoderRegistry,
    settings: Settings,
    split: Split | None = None,
    use_given_vectors: bool = True,
    reuse: Reuse | None = None,
) -> list[tuple[Any, ...]]:
    """Encode the text parts of ``items`` in one call and lay out their table rows.

    A part with both a text and a vector keeps the given vector only in the collection the
    request named (``use_given_vectors``); another collection the write reaches encodes the
    text with its own model, since the given vector belongs to the named collection's model.

    An encoded part's row ends with the content hash of its text; a text whose hash is in
    ``reuse`` (vectors this collection's model already made, by hash) takes that vector, and a
    text met twice is encoded once. A given vector's row has no hash."""
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
    known: dict[bytes, Any] = dict(reuse or {})
    hashes: dict[str, bytes] = {}
    to_encode: dict[bytes, str] = {}
    for _, parts in layout:
        for _, text, vector in parts:
            if vector is None and text is not None:
                wanted = hashes.setdefault(text, content_hash(text))
                if wanted not in known:
                    to_encode.setdefault(wanted, text)
    if to_encode:
        encoded = registry.get(collection.model).encode_items(list(to_encode.values()))
        known.update(zip(to_encode, encoded, strict=True))
    rows: list[tuple[Any, ...]] = []
    for item, parts in layout:
        vectors = []
        for part_id, text, given in parts:
            digest: bytes | None = None
            if given is None:
                assert text is not None, "a part has a text or a vector"
                digest = hashes[text]
                vector = known[digest]
            else:
                vector = np.asarray(given, dtype=np.float32)
                if len(vector) != collection.model.dimensions:
                    raise FailedPrecondition(
                        f"item {item.object_id!r} part {part_id!r}: a vector of {len(vector)}"
                        f" values cannot go into collection {collection.collection_id!r}, whose"
                        f" model has {collection.model.dimensions} dimensions"
                    )
            vectors.append(vector)
            stored_text = text if item.store_text else None
            rows.append(
                (item.object_id, part_id, False, None, stored_text, vector, NO_PAYLOAD, digest)
            )
        average = average_vector(np.stack(vectors), collection.model.metric)
        rows.append((item.object_id, AVERAGE_PART_ID, True, None, None, average, item.payload))
    return rows


def reusable_hashes(items: list[ItemInput], use_given_vectors: bool) -> list[bytes]:
    """The content hashes of the parts ``build_rows`` would encode."""
    return [
        content_hash(p.text)
        for item in items
        for p in item.parts
        if p.text is not None and (p.vector is None or not use_given_vectors)
    ]


def splitter(settings: Settings, split: Split | None) -> Split:
    """``split`` (the plugin's items splitter), else the built-in sentence splitter."""
    if split is not None:
        return split
    return lambda text: split_text(
        text, max_words=settings.splitter_max_words, overlap_words=settings.splitter_overlap_words
    )


def encode_rows(
    items: list[ItemInput],
    collection: Collection,
    registry: EncoderRegistry,
    settings: Settings,
    use_given_vectors: bool = True,
    reuse: Reuse | None = None,
) -> tuple[list[tuple[Any, ...]], list[ItemFailure]]:
    """``build_rows`` for the batch; when the model fails on it, each item alone, so the items
    it cannot encode fail (stage encode) and the rest are written. An error every item meets
    (the inference server down, a vector that cannot fit) is the batch's and is raised."""
    try:
        return (
            build_rows(items, collection, registry, settings, None, use_given_vectors, reuse),
            [],
        )
    except EsError:
        raise
    except Exception as batch_error:
        if len(items) == 1:
            raise
        log.warning("encoding a batch failed (%s); encoding its items one by one", batch_error)
    rows: list[tuple[Any, ...]] = []
    failures: list[ItemFailure] = []
    for item in items:
        try:
            rows += build_rows(
                [item], collection, registry, settings, None, use_given_vectors, reuse
            )
        except EsError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {first_line(exc)}"
            failures.append(ItemFailure(item.object_id, Stage.ENCODE, reason))
    if len(failures) == len(items):
        raise RuntimeError(f"the model encoded none of {len(items)} items: {failures[0].reason}")
    return rows, failures


@dataclass
class WriteReport:
    """What happened to a batch: written, superseded by a newer write, or failed."""

    applied: list[str] = field(default_factory=list)
    superseded: list[str] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)

    def add(self, other: WriteReport) -> None:
        self.applied += other.applied
        self.superseded += other.superseded
        self.failures += other.failures


def _result(counts: dict[str, int], superseded: list[str]) -> dict[str, Any]:
    """A write's stored result; the superseded ones are named only when there are any."""
    if not superseded:
        return counts
    return {
        **counts,
        "superseded_count": len(superseded),
        "superseded_object_ids": superseded[:MAX_SUPERSEDED_IDS_LISTED],
    }


def failures_result(failures: Sequence[ItemFailure]) -> dict[str, Any]:
    """The failed items of a write's result: their count and the first ones listed."""
    if not failures:
        return {}
    return {
        "failed_count": len(failures),
        "failed_items": [f.to_json() for f in failures[:MAX_FAILED_ITEMS_LISTED]],
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
    loader: Fetcher | None = None,
    cleaner: ItemsCleaner | None = None,
) -> dict[str, Any]:
    """Write ``items`` at ``version``, leaving those a newer write reached as they are (they
    are reported superseded) and reporting those that failed on the way (read by ``loader``
    when they are references, cleaned by ``cleaner``, split by ``split``); re-running it
    writes the same rows again.

    Batches are prepared and encoded while the batch before is written, so the database's
    work and the model's overlap; they are still written, and reported, in order."""
    preparer = Preparer(cleaner or TextCleaner(()), splitter(settings, split), settings)
    order = {item.object_id: i for i, item in enumerate(items)}
    report = WriteReport()
    written = 0
    size = write_batch_size(len(items), settings)
    writing: asyncio.Task[WriteReport] | None = None
    try:
        for start in range(0, len(items), size):
            batch = items[start : start + size]
            began = time.perf_counter()
            prepared = await preparer.items(batch, loader)
            report.failures += prepared.failures
            prepared_at = time.perf_counter()
            encoded = await encode_batch(pool, collection, prepared.items, registry, settings)
            _log_timings(len(batch), encoded, began, prepared_at, time.perf_counter())
            if writing is not None:
                report.add(await writing)
                writing = None
                written = start
                if not await progress(written / len(items), _upserted(written, len(items))):
                    return {**_upsertion_result(report, order), "stopped": True}
            writing = asyncio.create_task(_timed_store(pool, encoded, registry, settings, version))
        if writing is not None:
            report.add(await writing)
            writing = None
            if not await progress(1.0, _upserted(len(items), len(items))):
                return {**_upsertion_result(report, order), "stopped": True}
    finally:
        if writing is not None:  # the run failed while a batch was being written
            writing.cancel()
            with contextlib.suppress(BaseException):
                await writing
    return _upsertion_result(report, order)


def write_batch_size(count: int, settings: Settings) -> int:
    """Items per batch for a write of ``count`` items: at most ``upsert_db_batch_size``, and a
    quarter of the write when that is at least ``upsert_min_pipeline_batch`` items, so that
    the encoding of one batch overlaps the writing of the one before."""
    quarter = -(-count // 4)
    wanted = max(settings.upsert_min_pipeline_batch, quarter)
    return max(1, min(settings.upsert_db_batch_size, wanted))


def _upserted(written: int, total: int) -> str:
    return f"upserted {written} of {total} items"


async def _timed_store(
    pool: asyncpg.Pool,
    encoded: Encoded,
    registry: EncoderRegistry,
    settings: Settings,
    version: int,
) -> WriteReport:
    began = time.perf_counter()
    try:
        return await store_batch(pool, encoded, registry, settings, version)
    finally:
        log.info(
            "upsert batch stored: %d items in %.3f s",
            len(encoded.items),
            time.perf_counter() - began,
        )


def _log_timings(
    count: int, encoded: Encoded, began: float, prepared_at: float, encoded_at: float
) -> None:
    """One line per batch: where its time went (read by bench.upsert from the worker's log)."""
    log.info(
        "upsert batch: %d items, %d texts encoded, %d reused; prepare %.3f s, encode %.3f s",
        count,
        encoded.encoded_texts,
        encoded.reused_texts,
        prepared_at - began,
        encoded_at - prepared_at,
    )


def _upsertion_result(report: WriteReport, order: dict[str, int]) -> dict[str, Any]:
    failures = sorted(report.failures, key=lambda f: order.get(f.object_id, len(order)))
    return {
        **_result({"upserted_count": len(report.applied)}, report.superseded),
        **failures_result(failures),
    }


InTransaction = Callable[[asyncpg.Connection, WriteReport], Awaitable[None]]


@dataclass
class Encoded:
    """A batch of prepared items encoded for the models of the collections a write reaches:
    each model's rows and the items it failed on."""

    collection: Collection
    items: list[ItemInput]
    by_model: dict[str, tuple[list[tuple[Any, ...]], list[ItemFailure]]] = field(
        default_factory=dict
    )
    encoded_texts: int = 0  # distinct texts sent to the models
    reused_texts: int = 0  # texts whose stored vector was taken instead

    async def cover(
        self,
        pool: asyncpg.Pool,
        targets: list[Collection],
        registry: EncoderRegistry,
        settings: Settings,
    ) -> None:
        """Encode for each target's model it is not yet encoded for, taking the vectors the
        target already holds for unchanged part texts (``stored_vectors``). Encoding is
        CPU-bound: it runs in a thread, keeping the event loop free for lease renewals and
        other pages.

        The stored vectors are read before the write's transaction: should the items change
        or go in between, what is written is still the encoding of the same text by the same
        model, and the write's own versions decide which write wins."""
        for target in targets:
            if self.items and target.model.model_id not in self.by_model:
                named = target.model.model_id == self.collection.model.model_id
                hashes = reusable_hashes(self.items, named)
                reuse = await stored_vectors(
                    pool, target, [item.object_id for item in self.items], hashes
                )
                self.reused_texts += sum(h in reuse for h in hashes)
                self.encoded_texts += len(set(hashes).difference(reuse))
                self.by_model[target.model.model_id] = await asyncio.to_thread(
                    encode_rows, self.items, target, registry, settings, named, reuse
                )

    def covers(self, targets: list[Collection]) -> bool:
        return not self.items or all(t.model.model_id in self.by_model for t in targets)


async def encode_batch(
    pool: asyncpg.Pool,
    collection: Collection,
    batch: list[ItemInput],
    registry: EncoderRegistry,
    settings: Settings,
) -> Encoded:
    """Prepared items encoded for every collection a write to ``collection`` reaches now."""
    async with pool.acquire() as conn:
        targets = await write_targets(conn, collection)
    encoded = Encoded(collection, batch)
    await encoded.cover(pool, targets, registry, settings)
    return encoded


async def store_batch(
    pool: asyncpg.Pool,
    encoded: Encoded,
    registry: EncoderRegistry,
    settings: Settings,
    version: int,
    then: InTransaction | None = None,
) -> WriteReport:
    """Write an encoded batch to every target in one transaction, and run ``then`` in it (an
    import's checkpoint). Should a target have appeared since it was encoded (a reindex
    started), encode for it too and write again. The report is the addressed collection's."""
    collection = encoded.collection
    while True:
        async with pool.acquire() as conn, conn.transaction():
            await lock_for_write(conn)
            targets = await write_targets(conn, collection)
            if encoded.covers(targets):
                # An item any model failed on is left out of every target, so they stay alike.
                failures = [f for _, fails in encoded.by_model.values() for f in fails]
                failed = {f.object_id for f in failures}
                ready = [item for item in encoded.items if item.object_id not in failed]
                reports = {}
                for target in targets:
                    rows = encoded.by_model[target.model.model_id][0] if ready else []
                    reports[target.collection_id] = await _store(
                        conn, target, rows, ready, version, settings
                    )
                report = reports[collection.collection_id]
                report.failures = list(dict.fromkeys(failures)) + report.failures
                if then is not None:
                    await then(conn, report)
                return report
        await encoded.cover(pool, targets, registry, settings)


async def _store(
    conn: asyncpg.Connection,
    target: Collection,
    rows: list[tuple[Any, ...]],
    items: list[ItemInput],
    version: int,
    settings: Settings,
) -> WriteReport:
    """Replace the items' rows; when the database refuses the batch, each item alone, so the
    items it refuses fail (stage store) and the rest are written."""
    sources = {item.object_id: item.source.to_json() for item in items if item.source}
    object_ids = [item.object_id for item in items]
    drop = settings.delete_user_copies_on_upsert
    if not object_ids:
        return WriteReport()
    try:
        outcome = await replace_items(
            conn, target, rows, object_ids, version=version, drop_user_copies=drop, sources=sources
        )
        return WriteReport(outcome.applied, outcome.superseded)
    except asyncpg.DataError as batch_error:
        log.warning("the database refused a batch (%s); writing its items one by one", batch_error)
    report = WriteReport()
    for object_id in object_ids:
        own = [row for row in rows if row[0] == object_id]
        try:
            outcome = await replace_items(
                conn,
                target,
                own,
                [object_id],
                version=version,
                drop_user_copies=drop,
                sources={k: v for k, v in sources.items() if k == object_id},
            )
        except asyncpg.DataError as exc:
            report.failures.append(ItemFailure(object_id, Stage.STORE, first_line(exc)))
            continue
        report.applied += outcome.applied
        report.superseded += outcome.superseded
    return report


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
