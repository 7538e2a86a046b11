"""Splitting a collection's items into key ranges of about equal size, for parallel copying."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import asyncpg

from es_core.domain import Collection
from es_core.storage.catalog import items_table
from es_core.storage.item_rows import count_originals, head_rows


@dataclass(frozen=True)
class KeyRange:
    """Object ids in (``after``, ``until``]; None leaves that end open."""

    after: str | None
    until: str | None
    count: int

    def as_params(self) -> dict[str, Any]:
        return {"after": self.after, "until": self.until, "expected_count": self.count}


async def split_ranges(
    conn: asyncpg.Connection, collection: Collection, parts: int, min_size: int = 1
) -> list[KeyRange]:
    """At most ``parts`` ranges covering every original item, and no more than there are
    pages of ``min_size`` items (a range of less than a page gains nothing from a subtask of
    its own, which costs a task's round trip); none for an empty collection.

    The last range is open at the top, and the first at the bottom: items written after the
    split still fall in some range (they reach the destination by the write itself anyway)."""
    total = await count_originals(conn, collection)
    if total == 0:
        return []
    size = math.ceil(total / min(parts, math.ceil(total / max(1, min_size))))
    ranks = list(range(size, total, size))
    bounds: list[str] = [
        r["object_id"]
        for r in await conn.fetch(
            f"SELECT object_id FROM (SELECT object_id, row_number() OVER (ORDER BY object_id) AS rn"
            f" FROM {items_table(collection)} WHERE {head_rows()}) heads"
            f" WHERE rn = ANY($1::bigint[]) ORDER BY rn",
            ranks,
        )
    ]
    lows: list[str | None] = [None, *bounds]
    highs: list[str | None] = [*bounds, None]
    counts = [size] * len(bounds) + [total - size * len(bounds)]
    return [KeyRange(lo, hi, n) for lo, hi, n in zip(lows, highs, counts, strict=True)]
