"""Reading and writing item rows of one collection table.

Writes are ordered: each carries the version its request was given when accepted, and an
item's rows are replaced or removed only by a write at least as new as the latest one applied
to it (kept, with deletions' tombstones, in the collection's versions table)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.domain import Collection
from es_core.loaders.model import SourceSpec
from es_core.storage.catalog import items_table, versions_table
from es_core.storage.content_hashes import HASH_COLUMN

ROW_COLUMNS = ["object_id", "part_id", "is_average", "user_id", "text", "vector", "payload"]
AVERAGE_PART_ID = ""
#: Where an item's content was read from (a loader's source spec as JSON), on its head row;
#: NULL for an item sent inline.
SOURCE_COLUMN = "source"
#: The payload column of every row but an item's head (its original average row): the payload
#: is stored once per item, on the head, and read from there by searches and filters.
NO_PAYLOAD: dict[str, Any] = {}


def head_rows(alias: str = "") -> str:
    """The SQL condition picking items' head rows (of the table aliased ``alias``): one per
    item, the original's average row, which alone holds the item's payload."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}is_average AND {prefix}user_id IS NULL"


#: The version of writes accepted before writes had versions, and of the rows they wrote.
UNVERSIONED = 0


@dataclass(frozen=True)
class PartRow:
    part_id: str
    text: str | None
    vector: list[float] | None


@dataclass(frozen=True)
class WriteOutcome:
    """What a versioned write did to the items it named."""

    applied: list[str]  # written or deleted at the write's version, in the order named
    superseded: list[str]  # left alone: a newer write had already reached them
    removed: int = 0  # a deletion's applied items that existed until then


@dataclass(frozen=True)
class StoredItem:
    object_id: str
    payload: dict[str, Any]
    parts: list[PartRow]
    user_id: str | None
    update_time: datetime
    version: int  # of the write that wrote it (0: written before writes had versions)
    source: SourceSpec | None = None  # where its content was read from; None when inline


def average_vector(vectors: npt.NDArray[np.float32], metric: str) -> npt.NDArray[np.float32]:
    """The item's summary vector; unit length again under cosine so distances stay comparable."""
    mean = vectors.mean(axis=0)
    if metric == "cosine":
        norm = float(np.linalg.norm(mean))
        if norm > 0:
            mean = mean / norm
    return np.asarray(mean, dtype=np.float32)


async def claim_versions(
    conn: asyncpg.Connection,
    collection: Collection,
    versions: dict[str, int],
    *,
    deleted: bool,
) -> set[str]:
    """Record each item's write (``versions``: its version by object id) as the latest one
    unless a newer write already reached it; returns the ids claimed.

    Each item's versions row is locked until the transaction ends, in object_id order, even
    when the write loses or the item has no rows yet: two writers of one item take turns, and
    the second sees what the first committed. An equal version is the same request again (a
    replay of its task), which may write again."""
    ids = sorted(versions)
    rows = await conn.fetch(
        f"INSERT INTO {versions_table(collection)} AS v (object_id, version, deleted)"
        f" SELECT id, version, $3 FROM unnest($1::text[], $2::bigint[]) AS w(id, version)"
        f" ORDER BY id"
        f" ON CONFLICT (object_id) DO UPDATE"
        f" SET version = EXCLUDED.version, deleted = EXCLUDED.deleted"
        f" WHERE v.version <= EXCLUDED.version RETURNING object_id",
        ids,
        [versions[i] for i in ids],
        deleted,
    )
    return {r["object_id"] for r in rows}


async def lock_heads(
    conn: asyncpg.Connection, collection: Collection, object_ids: list[str]
) -> None:
    """Lock the items' head rows, in object_id order, until the transaction ends.

    Every writer of an item locks its head (after its versions row), and in the same order, so
    two writers of overlapping batches (or a writer and a reindex page, which locks the
    source's heads FOR SHARE) wait for each other instead of deadlocking; the statement that
    follows sees what the other one committed."""
    await conn.execute(
        f"SELECT 1 FROM {items_table(collection)} WHERE object_id = ANY($1::text[])"
        f" AND {head_rows()} ORDER BY object_id FOR UPDATE",
        object_ids,
    )


async def _take_items(
    conn: asyncpg.Connection,
    collection: Collection,
    object_ids: list[str],
    version: int,
    *,
    deleted: bool,
) -> tuple[list[str], list[str]]:
    """Claim the items for a write at ``version`` and lock the heads of those it may change;
    returns (those ids, the superseded ones), each in the order named, without repeats."""
    named = list(dict.fromkeys(object_ids))
    claimed = await claim_versions(conn, collection, dict.fromkeys(named, version), deleted=deleted)
    applied = [i for i in named if i in claimed]
    await lock_heads(conn, collection, applied)
    return applied, [i for i in named if i not in claimed]


async def replace_items(
    conn: asyncpg.Connection,
    collection: Collection,
    rows: list[tuple[Any, ...]],
    object_ids: list[str],
    *,
    version: int = UNVERSIONED,
    drop_user_copies: bool = True,
    sources: dict[str, dict[str, Any]] | None = None,
) -> WriteOutcome:
    """For each of ``object_ids`` no newer write reached: drop its originals (and, by default,
    users' improved copies of it, which were learnt from the old content) and write its
    ``rows`` instead, at ``version``, with the item's ``sources`` entry (where its content was
    read from) on its head. One transaction; the others are left as they are.

    A row is the values of ``ROW_COLUMNS``, optionally followed by the content hash of the
    text its vector was encoded from (``es_core.storage.content_hashes``)."""
    async with conn.transaction():
        applied, superseded = await _take_items(
            conn, collection, object_ids, version, deleted=False
        )
        await conn.execute(
            f"DELETE FROM {items_table(collection)} WHERE object_id = ANY($1::text[])"
            f" AND (user_id IS NULL OR $2)",
            applied,
            drop_user_copies,
        )
        taken = set(applied)
        sources = sources or {}
        width = len(ROW_COLUMNS)
        records = [
            (
                *row[:width],
                version,
                sources.get(row[0]) if row[2] and row[3] is None else None,
                row[width] if len(row) > width else None,
            )
            for row in rows
            if row[0] in taken
        ]
        if records:
            await conn.copy_records_to_table(
                collection.table_name,
                records=records,
                columns=[*ROW_COLUMNS, "version", SOURCE_COLUMN, HASH_COLUMN],
            )
        await refresh_lexical(conn, collection, applied)
    return WriteOutcome(applied, superseded)


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
    conn: asyncpg.Connection,
    collection: Collection,
    object_ids: list[str],
    *,
    version: int = UNVERSIONED,
) -> WriteOutcome:
    """Remove the items no newer write reached, with every user's copy of them, and leave a
    tombstone at ``version`` for each (so an older upsert replayed later cannot bring one
    back). Every row of a claimed item is older than ``version``: its versions row says so."""
    async with conn.transaction():
        applied, superseded = await _take_items(conn, collection, object_ids, version, deleted=True)
        removed = await conn.fetchval(
            f"WITH gone AS (DELETE FROM {items_table(collection)} WHERE object_id = ANY($1::text[])"
            f" RETURNING object_id, is_average, user_id)"
            f" SELECT count(*) FROM gone WHERE {head_rows()}",
            applied,
        )
        await refresh_lexical(conn, collection, applied)
    return WriteOutcome(applied, superseded, int(removed))


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
        f" update_time, version, source FROM {items_table(collection)}"
        f" WHERE object_id = ANY($1::text[]) AND user_id IS NULL ORDER BY object_id, row_id",
        object_ids,
    )
    heads = {r["object_id"]: r for r in rows if r["is_average"]}
    parts: dict[str, list[PartRow]] = {}
    for row in rows:
        if not row["is_average"]:
            vector = None if row["vector"] is None else row["vector"].to_list()
            parts.setdefault(row["object_id"], []).append(
                PartRow(row["part_id"], row["text"], vector)
            )
    return [
        StoredItem(
            i,
            heads[i]["payload"],
            parts.get(i, []),
            None,
            heads[i]["update_time"],
            heads[i]["version"],
            None if heads[i]["source"] is None else SourceSpec.from_json(heads[i]["source"]),
        )
        for i in dict.fromkeys(object_ids)
        if i in heads
    ]


async def count_originals(conn: asyncpg.Connection | asyncpg.Pool, collection: Collection) -> int:
    return int(
        await conn.fetchval(f"SELECT count(*) FROM {items_table(collection)} WHERE {head_rows()}")
    )
