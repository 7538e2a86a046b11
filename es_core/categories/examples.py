"""Sessions into category examples: a query and the categories of what it led people to click.

A session's positives are read as for items (``es_core.fine_tuning.examples``: an object's
strongest weighted event); each clicked item then stands for its category, the value of the
categories plugin's payload field (``get_category_field``) on the item. The result reuses the
items' ``Example``: its positives are category ids (weights of the clicks on items of that
category add up), its negatives are every other known category, so the trainer and the query
split work unchanged with the categories' texts in place of the items'.

Dropped, and counted in the report: irrelevant sessions, sessions without a query text, without
a weighted event, and sessions none of whose clicked items names a known category (no field,
a value that is not a string or an integer, or an id the categories collection does not hold).
Sessions with the same query (case and spacing aside) merge into one example.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from es_core.clickstream.model import Session
from es_core.domain import Collection as StoredCollection
from es_core.fine_tuning.examples import Example, normalize_query, session_positives
from es_core.storage.catalog import items_table
from es_core.storage.item_rows import head_rows


@dataclass
class CategoryExampleReport:
    sessions: int = 0
    irrelevant: int = 0
    without_query: int = 0
    without_positives: int = 0
    # Sessions whose clicked items name no known category.
    without_category: int = 0
    merged: int = 0
    examples: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def category_of(payload: Mapping[str, Any] | None, category_field: str) -> str | None:
    """The category id an item's payload names in ``category_field``: a non-blank string, or
    an integer (as its decimal text); None for anything else."""
    if not payload:
        return None
    value = payload.get(category_field)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


async def item_categories(
    conn: asyncpg.Connection,
    collection: StoredCollection,
    object_ids: Sequence[str],
    category_field: str,
) -> dict[str, str]:
    """Object id -> the category its payload names, for those of ``object_ids`` that name one
    (items no longer in the collection are left out)."""
    rows = await conn.fetch(
        f"SELECT object_id, payload FROM {items_table(collection)}"
        f" WHERE {head_rows()} AND object_id = ANY($1::text[])",
        list(object_ids),
    )
    found = {}
    for row in rows:
        category = category_of(row["payload"], category_field)
        if category is not None:
            found[row["object_id"]] = category
    return found


@dataclass
class _Merging:
    query: str
    positives: dict[str, float] = field(default_factory=dict)
    session_ids: list[str] = field(default_factory=list)


def build_category_examples(
    sessions: Sequence[Session],
    event_weights: Mapping[str, float],
    categories_of_items: Mapping[str, str],
    known_categories: Collection[str],
    query_of: Callable[[str], str] = str.strip,
) -> tuple[list[Example], CategoryExampleReport]:
    """Examples (positives and negatives are category ids) in order of each query's first
    session (by create time, then id); see the module for what is dropped."""
    known = sorted(set(known_categories))
    report = CategoryExampleReport(sessions=len(sessions))
    merging: dict[str, _Merging] = {}

    def order(s: Session) -> tuple[Any, ...]:
        return (s.create_time is None, s.create_time or 0, s.session_id)

    for session in sorted(sessions, key=order):
        if session.irrelevant:
            report.irrelevant += 1
            continue
        query = query_of(session.query_text)
        if not query:
            report.without_query += 1
            continue
        positives = session_positives(session, event_weights)
        if not positives:
            report.without_positives += 1
            continue
        weights: dict[str, float] = {}
        for object_id, weight in positives.items():
            category = categories_of_items.get(object_id)
            if category is not None and category in known_categories:
                weights[category] = weights.get(category, 0.0) + weight
        if not weights:
            report.without_category += 1
            continue
        key = normalize_query(query)
        if key in merging:
            report.merged += 1
        target = merging.setdefault(key, _Merging(query))
        for category, weight in weights.items():
            target.positives[category] = target.positives.get(category, 0.0) + weight
        target.session_ids.append(session.session_id)

    examples = [
        Example(
            m.query,
            dict(m.positives),
            negatives=tuple(c for c in known if c not in m.positives),
            session_ids=tuple(m.session_ids),
        )
        for m in merging.values()
    ]
    report.examples = len(examples)
    return examples, report
