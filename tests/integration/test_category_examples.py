"""Category examples from real sessions on real PostgreSQL: the clicked items' payload field
names the category, the categories collection gives every category's text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
import pytest

from es_core.categories.examples import item_categories
from es_core.categories.fine_tuning import category_examples
from es_core.clickstream import store
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.domain import Collection
from es_core.plugins.text_minilm import QueryText, TableDataLoader
from es_core.storage import catalog
from tests.integration.helpers import load_items, new_collection, unique_id

pytestmark = pytest.mark.integration

DIMS = 8
PAYLOADS: dict[str, dict[str, Any]] = {
    "p1": {"category": "headphones", "colour": "red"},
    "p2": {"category": "headphones"},
    "p3": {"category": "tent"},
    "p4": {"category": 7},  # an integer id
    "p5": {"kind": "tent"},  # no category field
    "p6": {"category": "boat"},  # a category the collection does not hold
}
CATEGORY_TEXTS = {"headphones": "headphones", "tent": "tent", "7": "jacket", "empty": None}


def _vectors(n: int, seed: int) -> list[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(1, DIMS)).astype(np.float32) for _ in range(n)]


async def _collections(pool: asyncpg.Pool) -> tuple[Collection, Collection]:
    items = await new_collection(pool, dims=DIMS)
    await load_items(
        pool,
        items,
        list(zip(PAYLOADS, _vectors(len(PAYLOADS), 0), PAYLOADS.values(), strict=True)),
    )
    async with pool.acquire() as conn, conn.transaction():
        categories = await catalog.create_collection(
            conn,
            unique_id("categories/test"),
            items.model,
            state="blue",
            hnsw_m=16,
            hnsw_ef_construction=64,
            kind="categories",
        )
    texts = {c: [t] for c, t in CATEGORY_TEXTS.items() if t is not None}
    await load_items(
        pool,
        categories,
        [(c, v, {"name": c}) for c, v in zip(CATEGORY_TEXTS, _vectors(4, 1), strict=True)],
        texts,
    )
    return items, categories


async def _sessions(pool: asyncpg.Pool, collection_id: str) -> str:
    """Registers the sessions in a batch of their own and returns its id."""
    prefix = unique_id("cat")
    now = datetime.now(UTC)
    plan = [
        ("vorta red", ["p1", "p2", "p3"], [("p1", "click"), ("p2", "click")], False),
        ("Vorta  RED", ["p3", "p1"], [("p1", "click")], False),
        ("snellin", ["p1", "p3"], [("p3", "click"), ("p4", "click")], False),
        ("zundal", ["p4"], [("p4", "click")], True),  # marked irrelevant
        ("no field", ["p5", "p6"], [("p5", "click"), ("p6", "click")], False),
        ("just looking", ["p1"], [], False),
    ]
    async with pool.acquire() as conn:
        await store.release_batch(conn)  # whatever other tests left collecting
        events: list[Event] = []
        for i, (query, shown, clicks, irrelevant) in enumerate(plan):
            session_id = f"{prefix}-{i}"
            session = Session(
                session_id,
                [ShownResult(o, r) for r, o in enumerate(shown)],
                query_text=query,
                collection_id=collection_id,
            )
            await store.register_session(conn, session, now + timedelta(seconds=i), None)
            events += [
                Event(f"{session_id}-{j}", session_id, o, kind)
                for j, (o, kind) in enumerate(clicks)
            ]
            if irrelevant:
                await conn.execute(
                    "UPDATE sessions SET irrelevant = true WHERE session_id = $1", session_id
                )
        await store.push_events(conn, events, now)
        batch_id = await store.release_batch(conn)
    assert batch_id is not None
    return batch_id


async def test_examples_from_real_sessions_name_the_clicked_items_categories(
    pg_pool: asyncpg.Pool,
) -> None:
    items, categories = await _collections(pg_pool)
    batch_id = await _sessions(pg_pool, items.collection_id)
    async with pg_pool.acquire() as conn:
        examples, report, texts = await category_examples(
            conn,
            items,
            categories,
            batch_id,
            "category",
            TableDataLoader(),
            QueryText().query_of,
            Settings(),
        )
    # The category without text is left out: nothing can place it.
    assert texts == {"headphones": ["headphones"], "tent": ["tent"], "7": ["jacket"]}
    by_query = {e.query: e for e in examples}
    assert set(by_query) == {"vorta red", "snellin"}
    assert by_query["vorta red"].positives == {"headphones": 3.0}
    assert by_query["vorta red"].negatives == ("7", "tent")
    assert len(by_query["vorta red"].session_ids) == 2
    assert by_query["snellin"].positives == {"tent": 1.0, "7": 1.0}
    assert by_query["snellin"].negatives == ("headphones",)
    assert report.as_dict() == {
        "sessions": 6,
        "irrelevant": 1,
        "without_query": 0,
        "without_positives": 1,
        "without_category": 1,
        "merged": 1,
        "examples": 2,
    }


async def test_item_categories_reads_head_payloads_and_skips_the_missing(
    pg_pool: asyncpg.Pool,
) -> None:
    items, _ = await _collections(pg_pool)
    async with pg_pool.acquire() as conn:
        found = await item_categories(conn, items, ["p1", "p4", "p5", "p6", "gone"], "category")
        other_field = await item_categories(conn, items, ["p1", "p5"], "kind")
        none = await item_categories(conn, items, [], "category")
    assert found == {"p1": "headphones", "p4": "7", "p6": "boat"}
    assert other_field == {"p5": "tent"}
    assert none == {}
