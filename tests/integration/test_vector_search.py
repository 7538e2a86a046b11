"""vector_search and payload_search against brute force computed in numpy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from es_core.config import Settings
from es_core.domain import Collection
from es_core.errors import InvalidArgument
from es_core.filters import Bool, Exists, Filter, Range, Term, Terms
from es_core.search.payload_search import count_items, head_vector, payload_search
from es_core.search.query import PayloadQuery, SearchHit, SortSpec, VectorQuery
from es_core.search.vector_search import vector_search
from tests.integration.helpers import DIMS, as_array, load_items, new_collection
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

TOL = 1e-4
COMBOS = [(m, a) for m in ("cosine", "dot", "euclidean") for a in ("min", "avg")]
# Every (metric, aggregation).
RANKING_COMBOS = COMBOS


@dataclass
class Data:
    """A loaded collection and what brute force needs to rank it."""

    collection: Collection
    ids: list[str]
    parts: list[np.ndarray]  # per item: [n_parts, DIMS] float32
    payloads: list[dict[str, Any]]

    def distances(
        self, q: np.ndarray, keep: Callable[[dict[str, Any]], bool] = lambda p: True
    ) -> tuple[dict[str, float], dict[str, str]]:
        """Each kept item's score under the model's metric and aggregation, and nearest part."""
        metric = self.collection.model.metric
        agg = self.collection.model.aggregation
        q64 = np.asarray(q, np.float32).astype(np.float64)
        scores: dict[str, float] = {}
        nearest: dict[str, str] = {}
        for object_id, parts, payload in zip(self.ids, self.parts, self.payloads, strict=True):
            if not keep(payload):
                continue
            p = parts.astype(np.float64)
            if metric == "cosine":
                d = 1 - p @ q64 / (np.linalg.norm(p, axis=1) * np.linalg.norm(q64))
            elif metric == "dot":
                d = -(p @ q64)
            else:
                d = np.linalg.norm(p - q64, axis=1)
            scores[object_id] = float(d.min() if agg == "min" else d.mean())
            nearest[object_id] = f"p{int(np.argmin(d))}"
        return scores, nearest


def _ranked(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda i: (scores[i], i))


def _assert_ranking(hits: list[SearchHit], expected: list[str], scores: dict[str, float]) -> None:
    """Same length, no duplicates, every distance right, order right up to near-ties."""
    got = [h.object_id for h in hits]
    assert len(got) == len(set(got)), "duplicate items"
    assert len(got) == len(expected)
    for h in hits:
        assert h.object_id in scores, f"{h.object_id} should not be a hit"
        assert abs(h.distance - scores[h.object_id]) < TOL, (h.object_id, h.distance)
    np.testing.assert_allclose(
        [h.distance for h in hits], [scores[i] for i in expected], atol=TOL, rtol=0
    )
    mismatches = [i for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    for i in mismatches:  # only items whose scores tie within tolerance may swap places
        assert abs(scores[got[i]] - scores[expected[i]]) < TOL


async def _all_pages(
    pool: asyncpg.Pool, data: Data, query: VectorQuery, settings: Settings
) -> list[SearchHit]:
    hits: list[SearchHit] = []
    token = ""
    for _ in range(1000):
        page, token = await vector_search(
            pool,
            data.collection,
            VectorQuery(**{**query.__dict__, "page_token": token}),
            settings,
            TOKENS,
        )
        if token:
            assert len(page) == query.limit, "a page before the last must be full"
        hits.extend(page)
        if not token:
            return hits
    raise AssertionError("paging did not end")


async def _load(
    pool: asyncpg.Pool,
    metric: str,
    aggregation: str,
    n_items: int,
    seed: int,
    payload: Callable[[int], dict[str, Any]],
    max_parts: int = 4,
) -> Data:
    rng = np.random.default_rng(seed)
    collection = await new_collection(pool, metric, aggregation)  # type: ignore[arg-type]
    ids = [f"o{i:05d}" for i in range(n_items)]
    # Parts of one item differ in length too, so MIN and AVG rank items differently.
    parts = []
    for _ in ids:
        n = int(rng.integers(1, max_parts + 1))
        scale = rng.uniform(0.5, 2.0, size=(n, 1))
        parts.append((rng.normal(size=(n, DIMS)) * scale).astype(np.float32))
    payloads = [payload(i) for i in range(n_items)]
    await load_items(pool, collection, list(zip(ids, parts, payloads, strict=True)))
    return Data(collection, ids, parts, payloads)


def _payload(i: int) -> dict[str, Any]:
    p: dict[str, Any] = {"i": i, "cat": "rare" if i % 50 == 7 else f"c{i % 3}"}
    if i % 4 != 0:
        p["rank"] = (i * 7) % 11
    return p


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def collections(pg_pool: asyncpg.Pool) -> dict[tuple[str, str], Data]:
    return {
        (m, a): await _load(pg_pool, m, a, 200, seed, _payload, max_parts=4)
        for seed, (m, a) in enumerate(COMBOS)
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def big(pg_pool: asyncpg.Pool) -> Data:
    """2000 items, 1 in 50 of them in category "rare"."""
    return await _load(pg_pool, "cosine", "min", 2000, 99, _payload, max_parts=1)


def _query_vectors(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1000 + seed)
    return [rng.normal(size=DIMS).astype(np.float32) for _ in range(n)]


# ---- ranking against brute force ----


@pytest.mark.parametrize(("metric", "aggregation"), RANKING_COMBOS)
async def test_first_page_matches_brute_force(
    pg_pool: asyncpg.Pool,
    settings: Settings,
    collections: dict[tuple[str, str], Data],
    metric: str,
    aggregation: str,
) -> None:
    data = collections[(metric, aggregation)]
    for q in _query_vectors(COMBOS.index((metric, aggregation)), 3):
        scores, nearest = data.distances(q)
        for limit in (1, 10, 25):
            hits, token = await vector_search(
                pg_pool, data.collection, VectorQuery(vector=q, limit=limit), settings, TOKENS
            )
            _assert_ranking(hits, _ranked(scores)[:limit], scores)
            assert token
            for h in hits:
                assert h.payload == data.payloads[data.ids.index(h.object_id)]
                if aggregation == "min":
                    assert h.matched_part_id == nearest[h.object_id]


@pytest.mark.parametrize(("metric", "aggregation"), RANKING_COMBOS)
async def test_paging_through_everything_gives_the_brute_force_order(
    pg_pool: asyncpg.Pool,
    settings: Settings,
    collections: dict[tuple[str, str], Data],
    metric: str,
    aggregation: str,
) -> None:
    data = collections[(metric, aggregation)]
    (q,) = _query_vectors(7, 1)
    scores, _ = data.distances(q)
    hits = await _all_pages(pg_pool, data, VectorQuery(vector=q, limit=37), settings)
    assert sorted(h.object_id for h in hits) == sorted(data.ids)  # no duplicates, no gaps
    _assert_ranking(hits, _ranked(scores), scores)


async def test_avg_item_with_no_part_among_the_nearest_parts_still_ranks_first(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """60 items each have one part very near the query and one far away (average ~5); 20
    items have one part at distance 2 (average 2). The 40 nearest parts all belong to the
    first kind, yet the second kind is nearer by AVG and must fill the first page."""
    collection = await new_collection(pg_pool, "euclidean", "avg")
    q = np.zeros(DIMS, np.float32)
    items = []
    for k in range(60):
        near = np.zeros(DIMS, np.float32)
        near[0] = 0.01 * (k + 1)
        far = np.zeros(DIMS, np.float32)
        far[1] = 10.0
        items.append((f"a{k:02d}", np.stack([near, far]), {}))
    for k in range(20):
        part = np.zeros((1, DIMS), np.float32)
        part[0, 2] = 2.0 + 0.01 * k
        items.append((f"b{k:02d}", part, {}))
    await load_items(pg_pool, collection, items)
    hits, _ = await vector_search(
        pg_pool, collection, VectorQuery(vector=q, limit=10), settings, TOKENS
    )
    assert [h.object_id for h in hits] == [f"b{k:02d}" for k in range(10)]


async def test_selective_filter_still_fills_the_page(
    pg_pool: asyncpg.Pool, settings: Settings, big: Data
) -> None:
    rare = Term(field="cat", value="rare")
    assert await count_items(pg_pool, big.collection, rare) == 40
    for q in _query_vectors(3, 3):
        scores, _ = big.distances(q, lambda p: p["cat"] == "rare")
        assert len(scores) == 40
        hits, token = await vector_search(
            pg_pool, big.collection, VectorQuery(vector=q, filter=rare, limit=10), settings, TOKENS
        )
        assert token
        _assert_ranking(hits, _ranked(scores)[:10], scores)
        everything = await _all_pages(
            pg_pool, big, VectorQuery(vector=q, filter=rare, limit=15), settings
        )
        _assert_ranking(everything, _ranked(scores), scores)


async def test_unfiltered_search_on_the_big_collection(
    pg_pool: asyncpg.Pool, settings: Settings, big: Data
) -> None:
    (q,) = _query_vectors(4, 1)
    scores, _ = big.distances(q)
    hits: list[SearchHit] = []
    token = ""
    for _ in range(5):  # the first pages, deeper each time
        page, token = await vector_search(
            pg_pool,
            big.collection,
            VectorQuery(vector=q, limit=50, page_token=token),
            settings,
            TOKENS,
        )
        hits.extend(page)
    _assert_ranking(hits, _ranked(scores)[:250], scores)


@pytest.mark.parametrize(
    ("metric", "aggregation"),
    [("cosine", "min"), ("dot", "min"), ("euclidean", "avg")],
)
async def test_max_distance_cuts_off(
    pg_pool: asyncpg.Pool,
    settings: Settings,
    collections: dict[tuple[str, str], Data],
    metric: str,
    aggregation: str,
) -> None:
    data = collections[(metric, aggregation)]
    (q,) = _query_vectors(11, 1)
    scores, _ = data.distances(q)
    ranked = _ranked(scores)
    cutoff = (scores[ranked[14]] + scores[ranked[15]]) / 2  # exactly 15 items are nearer
    query = VectorQuery(vector=q, limit=100, max_distance=cutoff)
    hits, token = await vector_search(pg_pool, data.collection, query, settings, TOKENS)
    assert token == ""
    _assert_ranking(hits, ranked[:15], scores)
    assert all(h.distance <= cutoff for h in hits)
    paged = await _all_pages(
        pg_pool, data, VectorQuery(vector=q, limit=4, max_distance=cutoff), settings
    )
    _assert_ranking(paged, ranked[:15], scores)
    # Nothing is that near: an empty answer, not an error.
    nothing = VectorQuery(vector=q, limit=10, max_distance=scores[ranked[0]] - 0.01)
    assert await vector_search(pg_pool, data.collection, nothing, settings, TOKENS) == ([], "")


async def test_exclude_object_id(
    pg_pool: asyncpg.Pool, settings: Settings, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("cosine", "min")]
    (q,) = _query_vectors(12, 1)
    scores, _ = data.distances(q)
    ranked = _ranked(scores)
    query = VectorQuery(vector=q, limit=10, exclude_object_id=ranked[0])
    hits, _ = await vector_search(pg_pool, data.collection, query, settings, TOKENS)
    _assert_ranking(hits, ranked[1:11], {k: v for k, v in scores.items() if k != ranked[0]})
    everything = await _all_pages(
        pg_pool, data, VectorQuery(vector=q, limit=50, exclude_object_id=ranked[5]), settings
    )
    assert ranked[5] not in {h.object_id for h in everything}
    assert len(everything) == len(ranked) - 1


async def test_filter_combined_with_vector_search(
    pg_pool: asyncpg.Pool, settings: Settings, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("dot", "min")]
    f = Bool(must=(Range(field="rank", gte=3, lt=8),), must_not=(Term(field="cat", value="c1"),))

    def keep(p: dict[str, Any]) -> bool:
        return "rank" in p and 3 <= p["rank"] < 8 and p["cat"] != "c1"

    (q,) = _query_vectors(13, 1)
    scores, _ = data.distances(q, keep)
    everything = await _all_pages(pg_pool, data, VectorQuery(vector=q, filter=f, limit=9), settings)
    _assert_ranking(everything, _ranked(scores), scores)


# ---- sorting by a payload field ----


def _sorted_by_rank(data: Data, descending: bool, keep: Callable[[dict], bool]) -> list[str]:
    present = [
        (p["rank"], i)
        for i, p in zip(data.ids, data.payloads, strict=True)
        if keep(p) and "rank" in p
    ]
    missing = [
        i for i, p in zip(data.ids, data.payloads, strict=True) if keep(p) and "rank" not in p
    ]
    present.sort(reverse=descending)
    missing.sort(reverse=descending)
    return [i for _, i in present] + missing


async def _vector_sorted_pages(
    pool: asyncpg.Pool, data: Data, settings: Settings, f: Filter | None, descending: bool
) -> list[SearchHit]:
    (q,) = _query_vectors(14, 1)
    query = VectorQuery(
        vector=q, filter=f, sort=SortSpec(field="rank", descending=descending), limit=8
    )
    hits = await _all_pages(pool, data, query, settings)
    scores, _ = data.distances(q)
    for h in hits:
        assert abs(h.distance - scores[h.object_id]) < TOL
    return hits


@pytest.mark.parametrize("descending", [False, True])
async def test_vector_search_sorted_by_payload_field_pages(
    pg_pool: asyncpg.Pool,
    settings: Settings,
    collections: dict[tuple[str, str], Data],
    descending: bool,
) -> None:
    data = collections[("euclidean", "min")]
    has_rank = Exists(field="rank")
    hits = await _vector_sorted_pages(pg_pool, data, settings, has_rank, descending)
    assert [h.object_id for h in hits] == _sorted_by_rank(data, descending, lambda p: "rank" in p)


@pytest.mark.parametrize("descending", [False, True])
async def test_vector_search_sorted_with_missing_field_last_pages(
    pg_pool: asyncpg.Pool,
    settings: Settings,
    collections: dict[tuple[str, str], Data],
    descending: bool,
) -> None:
    data = collections[("euclidean", "min")]
    hits = await _vector_sorted_pages(pg_pool, data, settings, None, descending)
    assert [h.object_id for h in hits] == _sorted_by_rank(data, descending, lambda p: True)


async def test_sorted_first_page_puts_missing_field_last(
    pg_pool: asyncpg.Pool, settings: Settings, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("euclidean", "min")]
    (q,) = _query_vectors(15, 1)
    for descending in (False, True):
        query = VectorQuery(vector=q, sort=SortSpec("rank", descending), limit=len(data.ids))
        hits, token = await vector_search(pg_pool, data.collection, query, settings, TOKENS)
        assert token == ""
        assert [h.object_id for h in hits] == _sorted_by_rank(data, descending, lambda p: True)


# ---- payload search and counts ----


async def _payload_pages(pool: asyncpg.Pool, data: Data, query: PayloadQuery) -> list[str]:
    ids: list[str] = []
    token = ""
    for _ in range(1000):
        hits, token = await payload_search(
            pool, data.collection, PayloadQuery(**{**query.__dict__, "page_token": token}), TOKENS
        )
        if token:
            assert len(hits) == query.limit
        ids.extend(h.object_id for h in hits)
        if not token:
            return ids
    raise AssertionError("paging did not end")


async def test_payload_search_and_count_with_filters(
    pg_pool: asyncpg.Pool, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("cosine", "avg")]
    cases: list[tuple[Filter | None, Callable[[dict[str, Any]], bool]]] = [
        (None, lambda p: True),
        (Term("cat", "rare"), lambda p: p["cat"] == "rare"),
        (Terms("cat", ("c0", "rare")), lambda p: p["cat"] in ("c0", "rare")),
        (Range("i", gte=100, lt=130), lambda p: 100 <= p["i"] < 130),
        (Exists("rank"), lambda p: "rank" in p),
        (Bool(must_not=(Exists("rank"),)), lambda p: "rank" not in p),
        (Term("cat", "nope"), lambda p: False),
    ]
    for f, keep in cases:
        expected = [i for i, p in zip(data.ids, data.payloads, strict=True) if keep(p)]
        assert await count_items(pg_pool, data.collection, f) == len(expected), f
        got = await _payload_pages(pg_pool, data, PayloadQuery(filter=f, limit=13))
        assert got == expected, f  # ordered by object_id, every item once
    hits, _ = await payload_search(pg_pool, data.collection, PayloadQuery(limit=3), TOKENS)
    assert [h.payload for h in hits] == data.payloads[:3]


@pytest.mark.parametrize("descending", [False, True])
async def test_payload_search_sorted_pages(
    pg_pool: asyncpg.Pool, collections: dict[tuple[str, str], Data], descending: bool
) -> None:
    data = collections[("cosine", "avg")]
    query = PayloadQuery(filter=Exists("rank"), sort=SortSpec("rank", descending), limit=10)
    got = await _payload_pages(pg_pool, data, query)
    assert got == _sorted_by_rank(data, descending, lambda p: "rank" in p)


async def test_payload_search_sorted_with_missing_field_pages(
    pg_pool: asyncpg.Pool, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("cosine", "avg")]
    query = PayloadQuery(sort=SortSpec("rank"), limit=10)
    got = await _payload_pages(pg_pool, data, query)
    assert got == _sorted_by_rank(data, False, lambda p: True)


async def test_head_vector_is_the_average(
    pg_pool: asyncpg.Pool, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("cosine", "min")]
    vector = await head_vector(pg_pool, data.collection, data.ids[3])
    mean = data.parts[3].astype(np.float64).mean(axis=0)
    assert vector is not None
    np.testing.assert_allclose(as_array(vector), mean / np.linalg.norm(mean), atol=1e-5)
    assert await head_vector(pg_pool, data.collection, "no-such-item") is None


# ---- page tokens bound to their query ----


async def test_page_token_of_another_query_is_invalid(
    pg_pool: asyncpg.Pool, settings: Settings, collections: dict[tuple[str, str], Data]
) -> None:
    data = collections[("cosine", "min")]
    other = collections[("cosine", "avg")]
    q1, q2 = _query_vectors(16, 2)
    _, token = await vector_search(
        pg_pool, data.collection, VectorQuery(vector=q1), settings, TOKENS
    )
    _, payload_token = await payload_search(pg_pool, data.collection, PayloadQuery(limit=2), TOKENS)
    assert token and payload_token
    bad_queries = [
        (data, VectorQuery(vector=q2, page_token=token)),
        (data, VectorQuery(vector=q1, filter=Term("cat", "c0"), page_token=token)),
        (data, VectorQuery(vector=q1, sort=SortSpec("rank"), page_token=token)),
        (data, VectorQuery(vector=q1, max_distance=1.0, page_token=token)),
        (data, VectorQuery(vector=q1, exclude_object_id="o00001", page_token=token)),
        (other, VectorQuery(vector=q1, page_token=token)),
        (data, VectorQuery(vector=q1, page_token=payload_token)),
        (data, VectorQuery(vector=q1, page_token="garbage")),
    ]
    for d, query in bad_queries:
        with pytest.raises(InvalidArgument) as info:
            await vector_search(pg_pool, d.collection, query, settings, TOKENS)
        assert info.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        await payload_search(
            pg_pool, data.collection, PayloadQuery(limit=2, page_token=token), TOKENS
        )
    with pytest.raises(InvalidArgument):
        await payload_search(
            pg_pool,
            data.collection,
            PayloadQuery(limit=2, filter=Term("cat", "c0"), page_token=payload_token),
            TOKENS,
        )
    # The same query with a different limit is still the same query.
    hits, _ = await vector_search(
        pg_pool,
        data.collection,
        VectorQuery(vector=q1, limit=3, page_token=token),
        settings,
        TOKENS,
    )
    assert len(hits) == 3
