"""How many items a filter admits, as the planner estimates them from a collection's statistics:
what decides whether a filtered vector search scores every match or walks the HNSW index.

Estimating plans a query (a few milliseconds for a term filter, whose estimate applies the
filter to the payload column's statistics). Searches repeat their filters, so estimates are kept
for a while per collection and filter: a stale one only makes a search slower, never wrong (a
walk that comes back short goes exact)."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from typing import Any

import asyncpg

from es_core.domain import Collection
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.filters.model import Filter
from es_core.storage.catalog import items_table
from es_core.storage.item_rows import head_rows

KEEP_SECONDS = 60.0
KEEP_ENTRIES = 4096
_kept: OrderedDict[tuple[str, str], tuple[float, tuple[float, float]]] = OrderedDict()


async def filter_estimate(
    conn: asyncpg.Connection | asyncpg.Pool, collection: Collection, f: Filter | None
) -> tuple[float, float]:
    """How many items ``f`` admits and how many there are, as the planner estimates them
    (planned, not run); kept for KEEP_SECONDS."""
    key = (collection.table_name, repr((f, collection.filterable_fields)))
    now = time.monotonic()
    kept = _kept.get(key)
    if kept is not None and now - kept[0] < KEEP_SECONDS:
        _kept.move_to_end(key)
        return kept[1]
    estimate = await _planned(conn, collection, f)
    _kept[key] = (now, estimate)
    _kept.move_to_end(key)
    while len(_kept) > KEEP_ENTRIES:
        _kept.popitem(last=False)
    return estimate


async def _planned(
    conn: asyncpg.Connection | asyncpg.Pool, collection: Collection, f: Filter | None
) -> tuple[float, float]:
    params = SqlParams()
    where = compile_filter(f, params, "h.payload", declared=collection.filterable_fields)
    heads = f"SELECT count(*) FROM {items_table(collection)} h WHERE {head_rows('h')}"
    plan = await conn.fetchval(
        f"EXPLAIN (FORMAT JSON) SELECT ({heads} AND ({where})), ({heads})", *params.values
    )
    if isinstance(plan, str):
        plan = json.loads(plan)
    subplans = [
        p for p in plan[0]["Plan"].get("Plans", []) if p.get("Parent Relationship") == "InitPlan"
    ]
    matches, items = (_scanned_rows(p) for p in subplans)
    return matches, items


def _scanned_rows(node: dict[str, Any]) -> float:
    """The estimated rows of the first table scan in a plan node (depth first); -1 if none."""
    if "Relation Name" in node:
        return float(node["Plan Rows"])
    for child in node.get("Plans", []):
        if (rows := _scanned_rows(child)) >= 0:
            return rows
    return -1.0
