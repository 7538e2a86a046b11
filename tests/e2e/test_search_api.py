"""Search behaviour through gRPC over items with known geometry, checked against numpy.

60 items (ids "sa-000".."sa-059", payload suite "search_api") sit at cosine distances
0.02, 0.05, ..., 1.79 from the query vector Q (shuffled over the ids); 200 "noise" items
(suite "search_api_noise") sit nearer to Q than all of them, so filtered searches cannot
find their results among the index's first candidates. Everything is removed afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from google.protobuf import json_format

from embedding_studio.client import Client, from_struct
from embedding_studio.v1 import common_pb2, search_pb2, upsert_pb2
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

Vec = npt.NDArray[Any]

DIMS = 384
N = 60
N_NOISE = 200
SUITE = "search_api"
TOL = 1e-4
Q = np.zeros(DIMS)
Q[0] = 1.0
ASC, DESC = common_pb2.SORT_ORDER_ASC, common_pb2.SORT_ORDER_DESC


def F(spec: dict[str, Any]) -> common_pb2.Filter:
    return json_format.ParseDict(spec, common_pb2.Filter())


def term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {"field": field, "value": value}}


def all_of(*clauses: dict[str, Any]) -> common_pb2.Filter:
    return F({"bool": {"must": list(clauses)}})


MINE = term("suite", SUITE)


def cos_dist(a: Vec, b: Vec) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def at_distance(d: float, rng: np.random.Generator) -> Vec:
    """A float32 unit vector whose cosine distance from Q is d."""
    w = rng.normal(size=DIMS)
    w[0] = 0.0
    w /= np.linalg.norm(w)
    c = 1.0 - d
    return (c * Q + math.sqrt(1.0 - c * c) * w).astype(np.float32)


def vector_message(v: Vec) -> common_pb2.Vector:
    return common_pb2.Vector(values=[float(x) for x in v])


class Items:
    """What was stored: vectors and payloads by object id."""

    def __init__(self) -> None:
        rng = np.random.default_rng(7)
        levels = rng.permutation(N)
        self.ids = [f"sa-{k:03d}" for k in range(N)]
        self.vectors: dict[str, Vec] = {}
        self.payloads: dict[str, dict[str, Any]] = {}
        for k, oid in enumerate(self.ids):
            self.vectors[oid] = at_distance(0.02 + 0.03 * int(levels[k]), rng)
            payload: dict[str, Any] = {
                "suite": SUITE,
                "n": k,
                "group": "rare" if levels[k] >= N - 5 else "common",
            }
            if k % 5:
                payload["rank"] = k % 7
            self.payloads[oid] = payload
        self.noise = {
            f"sa-noise-{j:03d}": at_distance(0.001 + 0.00002 * j, rng) for j in range(N_NOISE)
        }

    def distances(self, query: Vec, ids: list[str] | None = None) -> dict[str, float]:
        return {oid: cos_dist(query, self.vectors[oid]) for oid in (ids or self.ids)}

    def by_distance(self, query: Vec, ids: list[str] | None = None) -> list[str]:
        d = self.distances(query, ids)
        return sorted(d, key=lambda oid: d[oid])


def upsert_and_wait(client: Client, items: list[dict[str, Any]]) -> common_pb2.Task:
    task = client.upsert_items(items)
    final = client.wait_for_task(task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    return final


def delete_and_wait(client: Client, object_ids: list[str]) -> common_pb2.Task:
    task = client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=object_ids)).task
    final = client.wait_for_task(task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    return final


def vector_part(v: Vec, part_id: str = "0") -> dict[str, Any]:
    return {"part_id": part_id, "vector": [float(x) for x in v]}


@pytest.fixture(scope="module")
def items(client: Client) -> Iterator[Items]:
    data = Items()
    upsert_and_wait(
        client,
        [
            {
                "object_id": oid,
                "payload": data.payloads[oid],
                "parts": [vector_part(data.vectors[oid])],
            }
            for oid in data.ids
        ],
    )
    upsert_and_wait(
        client,
        [
            {"object_id": oid, "payload": {"suite": "search_api_noise"}, "parts": [vector_part(v)]}
            for oid, v in data.noise.items()
        ],
    )
    yield data
    delete_and_wait(client, data.ids + list(data.noise))


def walk(call: Callable[[Any], Any], request: Any, field: str = "results") -> list[list[Any]]:
    """Every page of a paged call, following next_page_token to the end."""
    pages: list[list[Any]] = []
    while True:
        reply = call(request)
        pages.append(list(getattr(reply, field)))
        if not reply.next_page_token:
            return pages
        assert len(pages) < 100, "paging does not end"
        request.page_token = reply.next_page_token


def flat(pages: list[list[Any]]) -> list[Any]:
    return [r for page in pages for r in page]


def assert_distances(results: list[common_pb2.SearchResult], expected: dict[str, float]) -> None:
    for r in results:
        assert abs(r.distance - expected[r.object_id]) < TOL, (
            r.object_id,
            r.distance,
            expected[r.object_id],
        )


def assert_ranked(results: list[common_pb2.SearchResult], expected: dict[str, float]) -> None:
    """Distinct hits, closest first, each at its numpy distance, no closer candidate left out."""
    ids = [r.object_id for r in results]
    assert len(ids) == len(set(ids)), "duplicate results"
    assert_distances(results, expected)
    got = [r.distance for r in results]
    assert all(a <= b + 1e-9 for a, b in zip(got, got[1:], strict=False)), got
    best = sorted(expected.values())[: len(ids)]
    assert np.allclose(sorted(expected[i] for i in ids), best, atol=TOL)


# --- vector search --------------------------------------------------------------------------------


def test_pages_walk_every_matching_item_once_in_distance_order(
    client: Client, items: Items
) -> None:
    request = search_pb2.SearchRequest(query_vector=vector_message(Q), filter=F(MINE), limit=7)
    pages = walk(client.search.Search, request)
    assert [len(p) for p in pages] == [7] * 8 + [4]
    results = flat(pages)
    assert [r.object_id for r in results] == items.by_distance(Q)
    assert_distances(results, items.distances(Q))
    for r in results:
        assert from_struct(r.payload) == items.payloads[r.object_id]
        assert r.matched_part_id == "0" and r.user_id == ""
    # One item per page gives the same sequence.
    single = walk(
        client.search.Search,
        search_pb2.SearchRequest(query_vector=vector_message(Q), filter=F(MINE), limit=1),
    )
    assert [p[0].object_id for p in single] == items.by_distance(Q)


def test_pages_of_another_query_vector(client: Client, items: Items) -> None:
    query = items.vectors["sa-017"] + 0.5 * items.vectors["sa-042"]
    request = search_pb2.SearchRequest(query_vector=vector_message(query), filter=F(MINE), limit=11)
    results = flat(walk(client.search.Search, request))
    assert len(results) == N
    assert results[0].object_id == "sa-017"
    assert_ranked(results, items.distances(query))


def test_max_distance_cuts_off(client: Client, items: Items) -> None:
    d = items.distances(Q)
    for cutoff in [0.505, 1.0049, 0.0, 2.0]:
        request = search_pb2.SearchRequest(
            query_vector=vector_message(Q), filter=F(MINE), limit=5, max_distance=cutoff
        )
        results = flat(walk(client.search.Search, request))
        expected = [oid for oid in items.by_distance(Q) if d[oid] <= cutoff]
        assert [r.object_id for r in results] == expected, cutoff
        assert all(r.distance <= cutoff for r in results)
    assert len([x for x in d.values() if x <= 0.505]) == 17


def test_very_selective_filter_still_fills_the_page(client: Client, items: Items) -> None:
    rare = [oid for oid in items.ids if items.payloads[oid]["group"] == "rare"]
    assert len(rare) == 5
    expected = items.by_distance(Q, rare)
    selective = all_of(MINE, term("group", "rare"))
    for limit in [5, 3, 1]:
        reply = client.search.Search(
            search_pb2.SearchRequest(query_vector=vector_message(Q), filter=selective, limit=limit)
        )
        assert [r.object_id for r in reply.results] == expected[:limit]
        assert bool(reply.next_page_token) == (limit < 5)
    pages = walk(
        client.search.Search,
        search_pb2.SearchRequest(query_vector=vector_message(Q), filter=selective, limit=2),
    )
    assert [[r.object_id for r in p] for p in pages] == [expected[0:2], expected[2:4], expected[4:]]
    wide = client.search.Search(
        search_pb2.SearchRequest(query_vector=vector_message(Q), filter=selective, limit=10)
    )
    assert [r.object_id for r in wide.results] == expected and not wide.next_page_token
    assert_distances(list(wide.results), items.distances(Q))
    # The noise items are the nearest of all: an unfiltered search finds them first.
    top = client.search.Search(search_pb2.SearchRequest(query_vector=vector_message(Q), limit=5))
    assert all(r.object_id.startswith("sa-noise-") for r in top.results)


def ranked_ids(items: Items, ids: list[str], field: str) -> list[str]:
    """Items having ``field``, ascending by (value, object_id)."""
    return sorted(ids, key=lambda oid: (items.payloads[oid][field], oid))


def sorted_request(kind: str, order: int, limit: int, spec: common_pb2.Filter) -> Any:
    if kind == "Search":
        request: Any = search_pb2.SearchRequest(
            query_vector=vector_message(Q), filter=spec, limit=limit
        )
    else:
        request = search_pb2.SearchByPayloadRequest(filter=spec, limit=limit)
    request.sort.field = "rank"
    request.sort.order = order
    return request


def sorted_walk(
    client: Client, kind: str, order: int, limit: int, spec: common_pb2.Filter
) -> list[Any]:
    call, field = (
        (client.search.Search, "results")
        if kind == "Search"
        else (client.search.SearchByPayload, "items")
    )
    pages = walk(call, sorted_request(kind, order, limit, spec), field)
    assert all(len(p) == limit for p in pages[:-1])
    return flat(pages)


@pytest.mark.parametrize("kind", ["Search", "SearchByPayload"])
def test_sort_by_payload_field_with_paging(client: Client, items: Items, kind: str) -> None:
    having = [oid for oid in items.ids if "rank" in items.payloads[oid]]
    assert len(having) == 48
    spec = all_of(MINE, {"exists": {"field": "rank"}})
    asc = sorted_walk(client, kind, ASC, 5, spec)
    desc = sorted_walk(client, kind, DESC, 5, spec)
    unspecified = sorted_walk(client, kind, common_pb2.SORT_ORDER_UNSPECIFIED, 7, spec)
    expected = ranked_ids(items, having, "rank")
    assert [r.object_id for r in asc] == expected
    assert [r.object_id for r in desc] == expected[::-1]
    assert [r.object_id for r in unspecified] == expected
    if kind == "Search":
        assert_distances(asc + desc, items.distances(Q))


@pytest.mark.parametrize("kind", ["Search", "SearchByPayload"])
def test_items_missing_the_sort_field_come_last(client: Client, items: Items, kind: str) -> None:
    missing = {oid for oid in items.ids if "rank" not in items.payloads[oid]}
    assert len(missing) == 12
    expected = ranked_ids(items, [oid for oid in items.ids if oid not in missing], "rank")
    for order, present in [(ASC, expected), (DESC, expected[::-1])]:
        one_page = sorted_walk(client, kind, order, N, F(MINE))
        ids = [r.object_id for r in one_page]
        assert ids[:48] == present
        assert set(ids[48:]) == missing and len(ids) == N


@pytest.mark.parametrize("kind", ["Search", "SearchByPayload"])
@pytest.mark.parametrize("order", [ASC, DESC], ids=["asc", "desc"])
def test_paging_through_items_missing_the_sort_field(
    client: Client, items: Items, kind: str, order: int
) -> None:
    whole = [r.object_id for r in sorted_walk(client, kind, order, N, F(MINE))]
    paged = [r.object_id for r in sorted_walk(client, kind, order, 5, F(MINE))]
    assert paged == whole


# --- payload search and counting ------------------------------------------------------------------


def test_search_by_payload_pages_in_object_id_order(client: Client, items: Items) -> None:
    pages = walk(
        client.search.SearchByPayload,
        search_pb2.SearchByPayloadRequest(filter=F(MINE), limit=9),
        "items",
    )
    assert [len(p) for p in pages] == [9] * 6 + [6]
    found = flat(pages)
    assert [i.object_id for i in found] == sorted(items.ids)
    for item in found:
        assert from_struct(item.payload) == items.payloads[item.object_id]
        assert list(item.parts) == [] and item.update_time.seconds > 0
    selective = walk(
        client.search.SearchByPayload,
        search_pb2.SearchByPayloadRequest(
            filter=all_of(MINE, {"range": {"field": "n", "gte": 10, "lt": 20}}), limit=4
        ),
        "items",
    )
    assert [i.object_id for i in flat(selective)] == [f"sa-{k:03d}" for k in range(10, 20)]


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        pytest.param([], lambda p: True, id="suite"),
        pytest.param(
            [{"range": {"field": "rank", "gte": 3}}],
            lambda p: p.get("rank", -1) >= 3,
            id="rank-gte-3",
        ),
        pytest.param(
            [{"bool": {"must_not": [{"exists": {"field": "rank"}}]}}],
            lambda p: "rank" not in p,
            id="no-rank",
        ),
        pytest.param(
            [{"terms": {"field": "group", "values": ["rare"]}}],
            lambda p: p["group"] == "rare",
            id="rare",
        ),
        pytest.param(
            [{"range": {"field": "n", "gt": 10, "lte": 30}}, term("rank", 2)],
            lambda p: 10 < p["n"] <= 30 and p.get("rank") == 2,
            id="n-and-rank",
        ),
        pytest.param(
            [{"bool": {"should": [term("rank", 0), term("rank", 6)]}}],
            lambda p: p.get("rank") in (0, 6),
            id="rank-0-or-6",
        ),
        pytest.param(
            [{"wildcard": {"field": "group", "pattern": "c*n"}}],
            lambda p: p["group"] == "common",
            id="wildcard",
        ),
        pytest.param([term("group", "nothing")], lambda p: False, id="none"),
    ],
)
def test_count_items_with_filters(
    client: Client,
    items: Items,
    clauses: list[dict[str, Any]],
    expected: Callable[[dict[str, Any]], bool],
) -> None:
    want = sum(1 for oid in items.ids if expected(items.payloads[oid]))
    reply = client.search.CountItems(search_pb2.CountItemsRequest(filter=all_of(MINE, *clauses)))
    assert reply.count == want and reply.collection_id
    listed = flat(
        walk(
            client.search.SearchByPayload,
            search_pb2.SearchByPayloadRequest(filter=all_of(MINE, *clauses), limit=1000),
            "items",
        )
    )
    assert len(listed) == want


def test_term_null_is_refused_in_favour_of_exists(client: Client, items: Items) -> None:
    expect_error(
        lambda: client.search.CountItems(
            search_pb2.CountItemsRequest(filter=F(term("rank", None)))
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "filter.term.value",
    )


# --- similar items --------------------------------------------------------------------------------


def test_find_similar_items_excludes_the_item_and_orders_by_distance(
    client: Client, items: Items
) -> None:
    for anchor in [items.by_distance(Q)[0], "sa-033"]:
        others = [oid for oid in items.ids if oid != anchor]
        expected = items.distances(items.vectors[anchor], others)
        request = search_pb2.FindSimilarItemsRequest(object_id=anchor, filter=F(MINE), limit=10)
        pages = walk(client.search.FindSimilarItems, request)
        assert [len(p) for p in pages] == [10] * 5 + [9]
        results = flat(pages)
        assert anchor not in {r.object_id for r in results}
        assert len(results) == N - 1
        assert_ranked(results, expected)
        # A cut between the 10th and 11th nearest keeps exactly ten.
        ordered = sorted(expected.values())
        assert ordered[10] - ordered[9] > 2 * TOL
        cut = (ordered[9] + ordered[10]) / 2
        near = client.search.FindSimilarItems(
            search_pb2.FindSimilarItemsRequest(
                object_id=anchor, filter=F(MINE), limit=50, max_distance=cut
            )
        )
        assert [r.object_id for r in near.results] == [r.object_id for r in results[:10]]
        assert not near.next_page_token


def test_find_similar_items_of_an_unknown_object(client: Client, items: Items) -> None:
    request = search_pb2.FindSimilarItemsRequest(object_id="sa-no-such-item")
    expect_error(
        lambda: client.search.FindSimilarItems(request), grpc.StatusCode.NOT_FOUND, "object_id"
    )


# --- reading, replacing and deleting items --------------------------------------------------------


def test_get_items_returns_parts_vectors_and_missing_ids(client: Client, items: Items) -> None:
    asked = ["sa-003", "sa-missing-a", "sa-001", "sa-missing-b", "sa-003"]
    reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=asked))
    assert [i.object_id for i in reply.items] == ["sa-003", "sa-001"]
    assert list(reply.missing_object_ids) == ["sa-missing-a", "sa-missing-b"]
    for item in reply.items:
        assert from_struct(item.payload) == items.payloads[item.object_id]
        assert [(p.part_id, p.text, list(p.vector)) for p in item.parts] == [("0", "", [])]
        assert item.user_id == "" and item.update_time.seconds > 0
    with_vectors = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=asked, include_vectors=True)
    )
    for item in with_vectors.items:
        (only,) = item.parts
        assert np.allclose(np.asarray(only.vector), items.vectors[item.object_id], atol=1e-6)


def test_reupsert_replaces_all_parts(client: Client, items: Items) -> None:
    rng = np.random.default_rng(11)
    old = {pid: at_distance(d, rng) for pid, d in [("0", 0.9), ("1", 0.4), ("2", 0.7)]}
    suite = F(term("suite", "search_api_multi"))
    upsert_and_wait(
        client,
        [
            {
                "object_id": "sa-multi",
                "payload": {"suite": "search_api_multi", "version": 1},
                "parts": [vector_part(v, pid) for pid, v in old.items()],
            }
        ],
    )
    stored = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=["sa-multi"], include_vectors=True)
    ).items[0]
    assert sorted(p.part_id for p in stored.parts) == ["0", "1", "2"]
    for p in stored.parts:
        assert np.allclose(np.asarray(p.vector), old[p.part_id], atol=1e-6)
    (hit,) = client.search.Search(
        search_pb2.SearchRequest(query_vector=vector_message(Q), filter=suite)
    ).results
    assert hit.object_id == "sa-multi" and hit.matched_part_id == "1"  # MIN over parts
    assert abs(hit.distance - cos_dist(Q, old["1"])) < TOL

    new = at_distance(0.8, rng)
    upsert_and_wait(
        client,
        [
            {
                "object_id": "sa-multi",
                "payload": {"suite": "search_api_multi", "version": 2},
                "parts": [vector_part(new, "0")],
            }
        ],
    )
    stored = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=["sa-multi"], include_vectors=True)
    ).items[0]
    assert [p.part_id for p in stored.parts] == ["0"]
    assert np.allclose(np.asarray(stored.parts[0].vector), new, atol=1e-6)
    assert from_struct(stored.payload) == {"suite": "search_api_multi", "version": 2}
    (hit,) = client.search.Search(
        search_pb2.SearchRequest(query_vector=vector_message(Q), filter=suite)
    ).results
    assert hit.matched_part_id == "0" and abs(hit.distance - cos_dist(Q, new)) < TOL
    # The nearest part is gone: a query at its vector finds the item at the new distance.
    (hit,) = client.search.Search(
        search_pb2.SearchRequest(query_vector=vector_message(old["1"]), filter=suite)
    ).results
    assert abs(hit.distance - cos_dist(old["1"], new)) < TOL
    assert client.search.CountItems(search_pb2.CountItemsRequest(filter=suite)).count == 1
    delete_and_wait(client, ["sa-multi"])


def test_get_items_lists_parts_in_the_order_written(client: Client, items: Items) -> None:
    rng = np.random.default_rng(12)
    parts = [vector_part(at_distance(0.5, rng), pid) for pid in ["b", "c", "a"]]
    upsert_and_wait(
        client,
        [{"object_id": "sa-order", "payload": {"suite": "search_api_order"}, "parts": parts}],
    )
    try:
        stored = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["sa-order"])).items[
            0
        ]
        assert [p.part_id for p in stored.parts] == ["b", "c", "a"]
    finally:
        delete_and_wait(client, ["sa-order"])


def test_delete_items_removes_the_item_from_reads_and_searches(
    client: Client, items: Items
) -> None:
    v = at_distance(0.3, np.random.default_rng(13))
    suite = F(term("suite", "search_api_del"))
    upsert_and_wait(
        client,
        [
            {
                "object_id": "sa-del",
                "payload": {"suite": "search_api_del"},
                "parts": [vector_part(v)],
            }
        ],
    )
    assert [
        r.object_id
        for r in client.search.Search(
            search_pb2.SearchRequest(query_vector=vector_message(v), filter=suite)
        ).results
    ] == ["sa-del"]

    done = delete_and_wait(client, ["sa-del", "sa-del", "sa-never-stored"])
    assert done.kind == common_pb2.TASK_KIND_DELETION
    assert from_struct(done.result) == {"deleted_count": 1, "missing_count": 1}
    reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["sa-del"]))
    assert list(reply.items) == [] and list(reply.missing_object_ids) == ["sa-del"]
    assert (
        list(
            client.search.Search(
                search_pb2.SearchRequest(query_vector=vector_message(v), filter=suite)
            ).results
        )
        == []
    )
    assert (
        list(client.search.SearchByPayload(search_pb2.SearchByPayloadRequest(filter=suite)).items)
        == []
    )
    assert client.search.CountItems(search_pb2.CountItemsRequest(filter=suite)).count == 0
    nearest = client.search.Search(
        search_pb2.SearchRequest(query_vector=vector_message(v), limit=50)
    )
    assert "sa-del" not in {r.object_id for r in nearest.results}
    expect_error(
        lambda: client.search.FindSimilarItems(
            search_pb2.FindSimilarItemsRequest(object_id="sa-del")
        ),
        grpc.StatusCode.NOT_FOUND,
        "object_id",
    )
    again = delete_and_wait(client, ["sa-del"])
    assert from_struct(again.result) == {"deleted_count": 0, "missing_count": 1}
