"""Filtered vector searches: exactly ``limit`` hits whenever that many items match, at every
selectivity, whether the payload index's matches are scored exactly or the HNSW index is walked."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from es_core.config import Settings
from es_core.domain import Collection
from es_core.filters import Bool, Filter, Range, Term
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.filters.cost import exact_is_cheaper
from es_core.search import filter_estimates
from es_core.search.filter_estimates import filter_estimate
from es_core.search.query import VectorQuery
from es_core.search.vector_search import first_candidates, vector_page
from es_core.storage.catalog import items_table
from tests.integration.helpers import DIMS, load_items, new_collection

pytestmark = pytest.mark.integration

ITEMS = 2000
LIMIT = 10
MIGRATION = Path("es_core/storage/migrations/0018_payload_gin.sql")


def _payload(i: int) -> dict[str, Any]:
    return {
        "half": i % 2,  # 50%: the cost model walks the HNSW index
        "tenth": f"t{i % 10}",  # 10%
        "hundredth": i % 100,  # 1%
        "few": i % 500 == 3,  # 4 items
        "tags": [f"tag{i % 7}", "all"],
        "deep": {"code": [i % 3]},
    }


class Data:
    def __init__(self, collection: Collection, vectors: np.ndarray) -> None:
        self.collection = collection
        self.vectors = vectors.astype(np.float64)
        self.payloads = [_payload(i) for i in range(ITEMS)]

    def exact(self, q: np.ndarray, keep: Any) -> list[str]:
        """Every matching item by cosine distance, nearest first."""
        v = self.vectors
        d = 1 - v @ q / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
        order = np.argsort(d, kind="stable")
        return [f"i{j}" for j in order if keep(self.payloads[j])]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def data(pg_pool: asyncpg.Pool) -> Data:
    collection = await new_collection(pg_pool)
    rng = np.random.default_rng(17)
    vectors = rng.standard_normal((ITEMS, DIMS)).astype(np.float32)
    await load_items(
        pg_pool, collection, [(f"i{i}", vectors[i : i + 1], _payload(i)) for i in range(ITEMS)]
    )
    return Data(collection, vectors)


CASES: list[tuple[str, Filter, Any]] = [
    ("50%", Term("half", 1), lambda p: p["half"] == 1),
    ("10%", Term("tenth", "t3"), lambda p: p["tenth"] == "t3"),
    ("1%", Term("hundredth", 42), lambda p: p["hundredth"] == 42),
    ("4 items", Term("few", True), lambda p: p["few"]),
    ("array element", Term("tags", "tag5"), lambda p: "tag5" in p["tags"]),
    ("nested array", Term("deep.code", 2), lambda p: p["deep"]["code"] == [2]),
    ("no match", Term("hundredth", 100), lambda p: False),
    (
        "term and range",
        Bool(must=(Term("tenth", "t1"), Range("hundredth", lt=50))),
        lambda p: p["tenth"] == "t1" and p["hundredth"] < 50,
    ),
    ("range, no index", Range("hundredth", gte=99), lambda p: p["hundredth"] >= 99),
]


@pytest.mark.parametrize(("name", "f", "keep"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.asyncio(loop_scope="session")
async def test_filtered_page_has_limit_hits_when_that_many_match(
    data: Data, pg_pool: asyncpg.Pool, settings: Settings, name: str, f: Filter, keep: Any
) -> None:
    rng = np.random.default_rng(abs(hash(name)) % 1000)
    for _ in range(3):
        q = rng.standard_normal(DIMS)
        expected = data.exact(q, keep)
        query = VectorQuery(vector=q.astype(np.float32), filter=f, limit=LIMIT)
        hits, _ = await vector_page(pg_pool, data.collection, query, settings)
        got = [h.object_id for h in hits]
        assert len(got) == min(LIMIT, len(expected))
        assert set(got) <= set(expected), "a hit the filter excludes"
        # 8 dimensions: the HNSW walk finds the true nearest as exact scoring does.
        assert len(set(got) & set(expected[:LIMIT])) >= 0.9 * len(got)


@pytest.mark.asyncio(loop_scope="session")
async def test_cost_model_walks_the_index_for_common_filters_only(
    data: Data, pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """The planner's estimates (from ANALYZE) are near the true counts (within a factor of 3:
    it takes the exact test beside the containment for an independent one), and decide."""
    wanted = first_candidates(
        VectorQuery(vector=np.ones(DIMS, np.float32), filter=Term("half", 1), limit=LIMIT)
    )
    decisions = {}
    for f, true in [(Term("half", 1), 1000), (Term("hundredth", 42), 20), (Term("few", True), 4)]:
        matches, items = await filter_estimate(pg_pool, data.collection, f)
        assert items == pytest.approx(ITEMS, rel=0.1)
        assert true / 3 - 3 <= matches <= true * 3 + 3
        decisions[true] = exact_is_cheaper(matches, items, wanted, settings.hnsw_ef_search)
    assert decisions == {1000: False, 20: True, 4: True}


@pytest.mark.asyncio(loop_scope="session")
async def test_term_filter_reads_the_payload_index(data: Data, pg_pool: asyncpg.Pool) -> None:
    table = items_table(data.collection)
    async with pg_pool.acquire() as conn:
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = $1",
            data.collection.table_name,
        )
        gin = [r for r in indexes if "gin" in r["indexdef"] and "jsonb_path_ops" in r["indexdef"]]
        assert len(gin) == 1 and "fastupdate=off" in gin[0]["indexdef"]
        params = SqlParams()
        where = compile_filter(Term("hundredth", 42), params, "h.payload")
        async with conn.transaction():
            # A table this small is cheaper to scan: show that the index can answer the filter.
            await conn.execute("SET LOCAL enable_seqscan = off")
            explained = await conn.fetch(
                f"EXPLAIN SELECT h.object_id FROM {table} h"
                f" WHERE h.is_average AND h.user_id IS NULL AND ({where})",
                *params.values,
            )
        plan = "\n".join(r[0] for r in explained)
    assert gin[0]["indexname"] in plan and "Bitmap Index Scan" in plan


@pytest.mark.asyncio(loop_scope="session")
async def test_migration_adds_the_payload_index_to_an_existing_table(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool)
    name = collection.table_name + "_payload_gin"
    async with pg_pool.acquire() as conn:
        await conn.execute(f'DROP INDEX "{name}"')
        await conn.execute(MIGRATION.read_text())
        await conn.execute(MIGRATION.read_text())  # again: nothing to do
        assert await conn.fetchval("SELECT count(*) FROM pg_indexes WHERE indexname = $1", name)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((30, DIMS)).astype(np.float32)
    await load_items(
        pg_pool, collection, [(f"i{i}", vectors[i : i + 1], {"k": i % 3}) for i in range(30)]
    )
    query = VectorQuery(vector=vectors[0], filter=Term("k", 1), limit=LIMIT)
    hits, _ = await vector_page(pg_pool, collection, query, settings)
    assert len(hits) == LIMIT and all(h.payload["k"] == 1 for h in hits)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_wrong_estimate_costs_time_not_hits(
    data: Data, pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """An estimate kept from before the data changed, claiming a selective filter admits every
    item: the index walk comes back short, and the search goes exact."""
    f = Term("few", True)
    filter_estimates._kept[(data.collection.table_name, repr(f))] = (
        time.monotonic(),
        (float(ITEMS), float(ITEMS)),
    )
    try:
        q = np.random.default_rng(5).standard_normal(DIMS)
        query = VectorQuery(vector=q.astype(np.float32), filter=f, limit=LIMIT)
        hits, _ = await vector_page(pg_pool, data.collection, query, settings)
        assert [h.object_id for h in hits] == data.exact(q, lambda p: p["few"])
    finally:
        filter_estimates._kept.clear()
