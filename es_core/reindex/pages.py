"""One page of a reindex: read items from the source, re-encode them, write them guarded.

The write runs in one transaction that locks the source items' head rows FOR SHARE (in
object_id order, as writers lock them) and re-checks them. An item is written only if it is
still in the source with the update time that was read, not yet in the destination, and not
deleted there by a newer write:

- an item deleted meanwhile is not brought back (the deletion reached both collections);
- an item changed meanwhile is read and encoded again (a write that saw the destination
  wrote it there too, and is then skipped as present);
- an item already in the destination (an earlier attempt of this page, or a write) is kept,
  and so is a newer deletion's tombstone there.

The copy keeps the version of the write that wrote the item, and records it in the
destination's versions table, so a write older than it replayed later leaves it alone there
too. So a page can be written any number of times; an item is never lost, doubled or made
stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition
from es_core.storage.catalog import items_table
from es_core.storage.content_hashes import HASH_COLUMN, content_hash
from es_core.storage.item_rows import (
    AVERAGE_PART_ID,
    NO_PAYLOAD,
    ROW_COLUMNS,
    SOURCE_COLUMN,
    average_vector,
    claim_versions,
    head_rows,
    refresh_lexical,
)

# Parts encoded here keep their text's hash, so a later upsert of the same text reuses them.
COPY_COLUMNS = [*ROW_COLUMNS, "update_time", "version", SOURCE_COLUMN, HASH_COLUMN]


@dataclass(frozen=True)
class SourcePart:
    part_id: str
    text: str | None
    vector: npt.NDArray[np.float32]


@dataclass(frozen=True)
class SourceItem:
    """An original item as the source holds it (users' copies are not reindexed)."""

    object_id: str
    update_time: datetime
    version: int
    payload: dict[str, Any]
    parts: list[SourcePart] = field(default_factory=list)
    source: dict[str, Any] | None = None  # where its content was read from (a SourceSpec)
    keep_text: bool = True  # False: the copy stores vectors only (its text stays at the source)


@dataclass
class PageOutcome:
    copied: int = 0
    already_present: int = 0
    gone: int = 0
    changed: list[str] = field(default_factory=list)


async def next_page_ids(
    conn: asyncpg.Connection | asyncpg.Pool,
    source: Collection,
    after: str | None,
    until: str | None,
    limit: int,
) -> list[str]:
    """The next ``limit`` item ids in (after, until], in key order.

    The bounds are written into the SQL only when present, so every page is an index range
    scan (a generic plan for "$1 IS NULL OR object_id > $1" would read the whole table)."""
    conditions = ["is_average", "user_id IS NULL"]
    values: list[object] = []
    if after is not None:
        values.append(after)
        conditions.append(f"object_id > ${len(values)}")
    if until is not None:
        values.append(until)
        conditions.append(f"object_id <= ${len(values)}")
    values.append(limit)
    rows = await conn.fetch(
        f"SELECT object_id FROM {items_table(source)} WHERE {' AND '.join(conditions)}"
        f" ORDER BY object_id LIMIT ${len(values)}",
        *values,
    )
    return [r["object_id"] for r in rows]


async def read_items(
    conn: asyncpg.Connection | asyncpg.Pool, source: Collection, object_ids: list[str]
) -> list[SourceItem]:
    """The items that exist, with their parts in stored order."""
    rows = await conn.fetch(
        f"SELECT object_id, part_id, is_average, text, vector, payload, update_time, version,"
        f" source FROM {items_table(source)} WHERE object_id = ANY($1::text[]) AND user_id IS NULL"
        f" ORDER BY object_id, row_id",
        object_ids,
    )
    heads: dict[str, SourceItem] = {}
    parts: dict[str, list[SourcePart]] = {}
    for r in rows:
        if r["is_average"]:
            heads[r["object_id"]] = SourceItem(
                r["object_id"], r["update_time"], r["version"], r["payload"], [], r["source"]
            )
        else:
            vector = np.asarray(r["vector"].to_numpy(), dtype=np.float32)
            parts.setdefault(r["object_id"], []).append(SourcePart(r["part_id"], r["text"], vector))
    return [
        SourceItem(
            h.object_id, h.update_time, h.version, h.payload, parts.get(h.object_id, []), h.source
        )
        for h in heads.values()
    ]


def build_destination_rows(
    items: list[SourceItem], destination: Collection, registry: EncoderRegistry
) -> dict[str, list[tuple[Any, ...]]]:
    """Each item's rows for the destination: text parts encoded by its model in one call.

    A part with only a vector (given by the user, no text) cannot be re-encoded: it is copied
    as it is when the dimensions match, and fails the reindex clearly when they do not."""
    model = destination.model
    texts = [p.text for item in items for p in item.parts if p.text is not None]
    encoded = (
        registry.get(model).encode_items(texts)
        if texts
        else np.zeros((0, model.dimensions), dtype=np.float32)
    )
    rows: dict[str, list[tuple[Any, ...]]] = {}
    next_encoded = 0
    for item in items:
        vectors = []
        item_rows: list[tuple[Any, ...]] = []
        for part in item.parts:
            digest = None
            if part.text is not None:
                vector = np.asarray(encoded[next_encoded], dtype=np.float32)
                next_encoded += 1
                digest = content_hash(part.text)
            elif len(part.vector) == model.dimensions:
                vector = part.vector
            else:
                raise FailedPrecondition(
                    f"item {item.object_id!r} part {part.part_id!r} has a vector but no text, so"
                    f" model {model.model_id!r} ({model.dimensions} dimensions) cannot re-encode"
                    f" it; upsert it with text, or delete it, and restart the reindex"
                )
            vectors.append(vector)
            item_rows.append(
                (
                    item.object_id,
                    part.part_id,
                    False,
                    None,
                    part.text if item.keep_text else None,
                    vector,
                    NO_PAYLOAD,
                    item.update_time,
                    item.version,
                    None,
                    digest,
                )
            )
        if not vectors:
            continue  # a head without parts cannot be scored; nothing to copy
        average = average_vector(np.stack(vectors), model.metric)
        item_rows.append(
            (
                item.object_id,
                AVERAGE_PART_ID,
                True,
                None,
                None,
                average,
                item.payload,
                item.update_time,
                item.version,
                item.source,
                None,
            )
        )
        rows[item.object_id] = item_rows
    return rows


async def write_page(
    conn: asyncpg.Connection,
    source: Collection,
    destination: Collection,
    asked: list[str],
    items: list[SourceItem],
    rows: dict[str, list[tuple[Any, ...]]],
) -> PageOutcome:
    """Write the page's items that are unchanged, present in the source and absent from the
    destination (where no newer deletion left a tombstone), in the caller's transaction; say
    which changed and must be read again."""
    heads = {
        r["object_id"]: r["update_time"]
        for r in await conn.fetch(
            f"SELECT object_id, update_time FROM {items_table(source)}"
            f" WHERE object_id = ANY($1::text[]) AND {head_rows()}"
            f" ORDER BY object_id FOR SHARE",
            asked,
        )
    }
    present = {
        r["object_id"]
        for r in await conn.fetch(
            f"SELECT object_id FROM {items_table(destination)}"
            f" WHERE object_id = ANY($1::text[]) AND {head_rows()}",
            asked,
        )
    }
    read = {item.object_id: item for item in items}
    outcome = PageOutcome()
    candidates: dict[str, int] = {}
    for object_id in asked:
        if object_id in present:
            outcome.already_present += 1
        elif object_id not in heads:
            outcome.gone += 1
        elif object_id not in read or read[object_id].update_time != heads[object_id]:
            outcome.changed.append(object_id)
        elif object_id not in rows:
            outcome.gone += 1  # an item with no parts: nothing a search could find
        else:
            candidates[object_id] = read[object_id].version
    claimed = await claim_versions(conn, destination, candidates, deleted=False)
    copied = [object_id for object_id in candidates if object_id in claimed]
    outcome.copied = len(copied)
    outcome.gone += len(candidates) - len(copied)  # a newer deletion reached the destination
    if copied:
        records = [row for object_id in copied for row in rows[object_id]]
        await conn.copy_records_to_table(
            destination.table_name, records=records, columns=COPY_COLUMNS
        )
        await refresh_lexical(conn, destination, copied)
    return outcome
