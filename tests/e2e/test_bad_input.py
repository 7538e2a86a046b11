"""Bad input to every RPC: the right status code, the violating field named, and nothing written.

Requests are built from raw messages (not the client's helpers, which refuse some of them).
Objects written here use ids starting "bi-" and payload {"suite": "bad_input"}.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import asyncpg
import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from embedding_studio.client import Client
from embedding_studio.v1 import (
    common_pb2,
    search_pb2,
    suggestion_pb2,
    task_pb2,
    upsert_pb2,
)
from es_cli.throwaway import StackInfo
from es_core.items import ItemInput, PartInput
from tests.e2e.grpc_errors import expect_error, violated_fields

pytestmark = pytest.mark.e2e

DIMS = 384
SUITE = "bad_input"
BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNKNOWN_TASK = str(uuid.UUID(int=12345))

# (client attribute, method) of every implemented RPC.
RPCS: dict[str, tuple[str, str]] = {
    "Search": ("search", "Search"),
    "SearchByPayload": ("search", "SearchByPayload"),
    "CountItems": ("search", "CountItems"),
    "FindSimilarItems": ("search", "FindSimilarItems"),
    "UpsertItems": ("upsert", "UpsertItems"),
    "DeleteItems": ("upsert", "DeleteItems"),
    "GetItems": ("upsert", "GetItems"),
    "GetTask": ("tasks", "GetTask"),
    "ListTasks": ("tasks", "ListTasks"),
    "WatchTask": ("tasks", "WatchTask"),
    "CancelTask": ("tasks", "CancelTask"),
    "RestartTask": ("tasks", "RestartTask"),
}


def call(client: Client, rpc: str, request: Message) -> Callable[[], object]:
    stub, method = RPCS[rpc]
    return lambda: getattr(getattr(client, stub), method)(request, timeout=60)


def unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIMS)
    return [float(x) for x in v / np.linalg.norm(v)]


VEC = unit(1)


def F(spec: dict[str, Any]) -> common_pb2.Filter:
    return json_format.ParseDict(spec, common_pb2.Filter())


def deep_bool(levels: int) -> common_pb2.Filter:
    spec: dict[str, Any] = {"term": {"field": "suite", "value": SUITE}}
    for _ in range(levels):
        spec = {"bool": {"must": [spec]}}
    return F(spec)


def part(
    vector: list[float] | None = None, text: str = "", part_id: str = ""
) -> common_pb2.ItemPart:
    return common_pb2.ItemPart(part_id=part_id, text=text, vector=vector or [])


def item(
    object_id: str, *parts: common_pb2.ItemPart, text: str = "", **payload: Any
) -> upsert_pb2.UpsertItem:
    message = upsert_pb2.UpsertItem(object_id=object_id, text=text, parts=list(parts))
    message.payload.update({"suite": SUITE, **payload})
    return message


def ok_item(object_id: str) -> upsert_pb2.UpsertItem:
    return item(object_id, part(VEC))


def upsert(*items: upsert_pb2.UpsertItem, **kw: Any) -> upsert_pb2.UpsertItemsRequest:
    return upsert_pb2.UpsertItemsRequest(items=list(items), **kw)


def search(**kw: Any) -> search_pb2.SearchRequest:
    return search_pb2.SearchRequest(**kw)


def by_vector(values: list[float] = VEC, **kw: Any) -> search_pb2.SearchRequest:
    return search_pb2.SearchRequest(query_vector=common_pb2.Vector(values=values), **kw)


def with_sort(request: Any, field: str, order: int = common_pb2.SORT_ORDER_ASC) -> Any:
    request.sort.field = field
    request.sort.order = order
    return request


def raw_enum(number: int) -> Any:
    """An enum number the contract does not define (proto3 enums are open on the wire)."""
    return number


def token(body: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


NAN_VEC = [math.nan, *VEC[1:]]
INF_VEC = [math.inf, *VEC[1:]]
LONG_ID = "bi-bad-" + "x" * 250  # 257 characters

# --- filters: each is checked on CountItems (the same code serves every RPC with a filter) --------

FILTER_CASES = [
    pytest.param(common_pb2.Filter(), "filter", id="no-kind"),
    pytest.param(
        F({"bool": {"must": [{"exists": {"field": "a"}}, {}]}}),
        "filter.bool.must[1]",
        id="nested-no-kind",
    ),
    pytest.param(
        F({"term": {"field": "", "value": 1}}), "filter.term.field", id="term-empty-field"
    ),
    pytest.param(
        F({"term": {"field": "a..b", "value": 1}}), "filter.term.field", id="term-double-dot"
    ),
    pytest.param(
        F({"term": {"field": ".a", "value": 1}}), "filter.term.field", id="term-leading-dot"
    ),
    pytest.param(
        F({"term": {"field": ".".join("a" * 17), "value": 1}}),
        "filter.term.field",
        id="term-17-segments",
    ),
    pytest.param(
        F({"term": {"field": "a\x00b", "value": 1}}), "filter.term.field", id="term-field-nul"
    ),
    pytest.param(F({"term": {"field": "a"}}), "filter.term.value", id="term-no-value"),
    pytest.param(
        F({"term": {"field": "a", "value": [1, 2]}}), "filter.term.value", id="term-list-value"
    ),
    pytest.param(
        F({"term": {"field": "a", "value": "x\x00"}}), "filter.term.value", id="term-value-nul"
    ),
    pytest.param(
        F({"terms": {"field": "a", "values": []}}), "filter.terms.values", id="terms-empty"
    ),
    pytest.param(
        F({"terms": {"field": "a", "values": list(range(1025))}}),
        "filter.terms.values",
        id="terms-1025",
    ),
    pytest.param(
        F({"terms": {"field": "a", "values": [1, {"x": 1}]}}),
        "filter.terms.values[1]",
        id="terms-object-value",
    ),
    pytest.param(F({"range": {"field": "a"}}), "filter.range", id="range-no-bounds"),
    pytest.param(
        F({"range": {"field": "a", "gte": 1, "lt": "z"}}), "filter.range.lt", id="range-mixed-types"
    ),
    pytest.param(
        F({"range": {"field": "a", "gt": True}}), "filter.range.gt", id="range-bool-bound"
    ),
    pytest.param(
        F({"range": {"field": "", "gt": 1}}), "filter.range.field", id="range-empty-field"
    ),
    pytest.param(F({"exists": {"field": "a."}}), "filter.exists.field", id="exists-trailing-dot"),
    pytest.param(
        F({"match": {"field": "a", "query": "!!! ..."}}), "filter.match.query", id="match-no-words"
    ),
    pytest.param(
        F({"wildcard": {"field": "a", "pattern": "x\x00*"}}),
        "filter.wildcard.pattern",
        id="wildcard-nul",
    ),
    pytest.param(F({"nested": {"path": "offers"}}), "filter.nested.filter", id="nested-no-filter"),
    pytest.param(
        F({"nested": {"path": "", "filter": {"exists": {"field": "a"}}}}),
        "filter.nested.path",
        id="nested-empty-path",
    ),
    pytest.param(
        F({"bool": {"should": [{"exists": {"field": "a"}}], "minimum_should_match": 2}}),
        "filter.bool.minimum_should_match",
        id="msm-above-should",
    ),
    pytest.param(deep_bool(17), "filter" + ".bool.must[0]" * 16, id="17-bool-levels"),
]


@pytest.mark.parametrize(("bad_filter", "field"), FILTER_CASES)
def test_bad_filter_is_refused_naming_the_clause(
    client: Client, bad_filter: common_pb2.Filter, field: str
) -> None:
    expect_error(
        call(client, "CountItems", search_pb2.CountItemsRequest(filter=bad_filter)), BAD, field
    )


def test_sixteen_bool_levels_are_accepted(client: Client) -> None:
    """The positive control of the depth limit: one level less is a valid filter."""
    reply = client.search.CountItems(search_pb2.CountItemsRequest(filter=deep_bool(16)))
    assert reply.count >= 0


@pytest.mark.parametrize(
    ("bad_filter", "field"),
    [
        pytest.param(
            F({"range": {"field": "a", "gt": math.nan}}), "filter.range.gt", id="range-nan"
        ),
        pytest.param(
            F({"term": {"field": "a", "value": math.inf}}), "filter.term.value", id="term-inf"
        ),
    ],
)
def test_non_finite_filter_number_is_invalid_argument(
    client: Client, bad_filter: common_pb2.Filter, field: str
) -> None:
    expect_error(
        call(client, "CountItems", search_pb2.CountItemsRequest(filter=bad_filter)), BAD, field
    )


@pytest.mark.parametrize(
    ("bad_filter", "field"),
    [
        pytest.param(
            F({"exists": {"field": ".".join(["f"] * 17)}}),
            "filter.exists.field",
            id="field-17-segments",
        ),
        pytest.param(
            F({"exists": {"field": "f" * 129}}),
            "filter.exists.field",
            id="field-segment-129-chars",
        ),
        pytest.param(
            F({"match": {"field": "a", "query": "word " * 300}}),
            "filter.match.query",
            id="match-1500-chars",
        ),
        pytest.param(
            F({"wildcard": {"field": "a", "pattern": "*" * 1025}}),
            "filter.wildcard.pattern",
            id="wildcard-1025",
        ),
    ],
)
def test_documented_filter_limits_are_enforced(
    client: Client, bad_filter: common_pb2.Filter, field: str
) -> None:
    expect_error(
        call(client, "CountItems", search_pb2.CountItemsRequest(filter=bad_filter)), BAD, field
    )


# --- every implemented RPC: a table of bad requests -----------------------------------------------

CASES = [
    # Search
    pytest.param("Search", search(limit=3), BAD, "query_text", id="search-no-query"),
    pytest.param("Search", search(query_text="  \t "), BAD, "query_text", id="search-blank-text"),
    pytest.param("Search", search(query_text="a" * 4097), BAD, "query_text", id="search-text-4097"),
    pytest.param("Search", search(query_text="a\x00b"), BAD, "query_text", id="search-text-nul"),
    pytest.param("Search", by_vector(VEC[:-1]), BAD, "query_vector.values", id="search-383-dims"),
    pytest.param(
        "Search", by_vector(VEC + [0.0]), BAD, "query_vector.values", id="search-385-dims"
    ),
    pytest.param("Search", by_vector([]), BAD, "query_vector.values", id="search-empty-vector"),
    pytest.param("Search", by_vector(NAN_VEC), BAD, "query_vector.values", id="search-nan-vector"),
    pytest.param("Search", by_vector(INF_VEC), BAD, "query_vector.values", id="search-inf-vector"),
    pytest.param(
        "Search", by_vector([0.0] * DIMS), BAD, "query_vector.values", id="search-zero-vector"
    ),
    pytest.param("Search", by_vector(limit=-1), BAD, "limit", id="search-negative-limit"),
    pytest.param("Search", by_vector(limit=1001), BAD, "limit", id="search-limit-1001"),
    pytest.param(
        "Search",
        by_vector(max_distance=math.nan),
        BAD,
        "max_distance",
        id="search-max-distance-nan",
    ),
    pytest.param(
        "Search",
        by_vector(max_distance=math.inf),
        BAD,
        "max_distance",
        id="search-max-distance-inf",
    ),
    pytest.param(
        "Search", by_vector(page_token="garbage!!"), BAD, "page_token", id="search-garbage-token"
    ),
    pytest.param(
        "Search", by_vector(page_token=token({"x": 1})), BAD, "page_token", id="search-forged-token"
    ),
    pytest.param(
        "Search",
        by_vector(page_token=token({"s": "0" * 16, "c": {"k": [0.1, "a"]}})),
        BAD,
        "page_token",
        id="search-foreign-token",
    ),
    pytest.param("Search", by_vector(user_id="u" * 257), BAD, "user_id", id="search-user-257"),
    pytest.param("Search", by_vector(user_id="u\x00"), BAD, "user_id", id="search-user-nul"),
    pytest.param(
        "Search",
        by_vector(collection_id="c" * 129),
        BAD,
        "collection_id",
        id="search-collection-129",
    ),
    pytest.param(
        "Search",
        by_vector(collection_id="no-such-collection"),
        NOT_FOUND,
        None,
        id="search-unknown-collection",
    ),
    pytest.param(
        "Search", by_vector(filter=common_pb2.Filter()), BAD, "filter", id="search-filter-no-kind"
    ),
    pytest.param(
        "Search",
        by_vector(filter=F({"range": {"field": "n"}})),
        BAD,
        "filter.range",
        id="search-range-no-bounds",
    ),
    pytest.param("Search", with_sort(by_vector(), ""), BAD, "sort.field", id="search-sort-empty"),
    pytest.param(
        "Search", with_sort(by_vector(), "a..b"), BAD, "sort.field", id="search-sort-bad-path"
    ),
    pytest.param(
        "Search", with_sort(by_vector(), "a\x00"), BAD, "sort.field", id="search-sort-nul"
    ),
    pytest.param(
        "Search", with_sort(by_vector(), "n", 9), BAD, "sort.order", id="search-sort-order-9"
    ),
    # SearchByPayload
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(limit=-1),
        BAD,
        "limit",
        id="payload-negative-limit",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(limit=1001),
        BAD,
        "limit",
        id="payload-limit-1001",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(page_token="%%%"),
        BAD,
        "page_token",
        id="payload-garbage-token",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(filter=F({"terms": {"field": "a", "values": []}})),
        BAD,
        "filter.terms.values",
        id="payload-terms-empty",
    ),
    pytest.param(
        "SearchByPayload",
        with_sort(search_pb2.SearchByPayloadRequest(), ""),
        BAD,
        "sort.field",
        id="payload-sort-empty",
    ),
    pytest.param(
        "SearchByPayload",
        with_sort(search_pb2.SearchByPayloadRequest(), "n", 7),
        BAD,
        "sort.order",
        id="payload-sort-order-7",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(user_id="u" * 257),
        BAD,
        "user_id",
        id="payload-user-257",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(collection_id="c" * 129),
        BAD,
        "collection_id",
        id="payload-collection-129",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(collection_id="nope"),
        NOT_FOUND,
        None,
        id="payload-unknown-collection",
    ),
    # CountItems
    pytest.param(
        "CountItems",
        search_pb2.CountItemsRequest(collection_id="c" * 129),
        BAD,
        "collection_id",
        id="count-collection-129",
    ),
    pytest.param(
        "CountItems",
        search_pb2.CountItemsRequest(collection_id="nope"),
        NOT_FOUND,
        None,
        id="count-unknown-collection",
    ),
    # FindSimilarItems
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(),
        BAD,
        "object_id",
        id="similar-no-object",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id=LONG_ID),
        BAD,
        "object_id",
        id="similar-object-257",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi\x00"),
        BAD,
        "object_id",
        id="similar-object-nul",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", limit=-5),
        BAD,
        "limit",
        id="similar-negative-limit",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", limit=5000),
        BAD,
        "limit",
        id="similar-limit-5000",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", max_distance=math.nan),
        BAD,
        "max_distance",
        id="similar-max-distance-nan",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(
            object_id="bi-seed-0", filter=F({"range": {"field": "n", "gt": 1, "lte": "b"}})
        ),
        BAD,
        "filter.range.lte",
        id="similar-range-mixed",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", page_token="garbage"),
        BAD,
        "page_token",
        id="similar-garbage-token",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-no-such-object"),
        NOT_FOUND,
        "object_id",
        id="similar-unknown-object",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", collection_id="nope"),
        NOT_FOUND,
        None,
        id="similar-unknown-collection",
    ),
    # GetItems
    pytest.param("GetItems", upsert_pb2.GetItemsRequest(), BAD, "object_ids", id="get-no-ids"),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=[f"bi-{i}" for i in range(1001)]),
        BAD,
        "object_ids",
        id="get-1001-ids",
    ),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=["bi-seed-0", ""]),
        BAD,
        "object_ids[1]",
        id="get-empty-id",
    ),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=[LONG_ID]),
        BAD,
        "object_ids[0]",
        id="get-id-257",
    ),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=["bi\x00x"]),
        BAD,
        "object_ids[0]",
        id="get-id-nul",
    ),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=["bi-seed-0"], collection_id="c" * 129),
        BAD,
        "collection_id",
        id="get-collection-129",
    ),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=["bi-seed-0"], collection_id="nope"),
        NOT_FOUND,
        None,
        id="get-unknown-collection",
    ),
    # Tasks
    *[
        pytest.param(rpc, request_type(task_id=task_id), code, "task_id", id=f"{rpc}-{name}")
        for rpc, request_type in [
            ("GetTask", task_pb2.GetTaskRequest),
            ("WatchTask", task_pb2.WatchTaskRequest),
            ("CancelTask", task_pb2.CancelTaskRequest),
            ("RestartTask", task_pb2.RestartTaskRequest),
        ]
        for name, task_id, code in [
            ("empty-id", "", BAD),
            ("not-a-uuid", "not-a-uuid", BAD),
            ("nul-id", "\x00", BAD),
            ("unknown", UNKNOWN_TASK, NOT_FOUND),
        ]
    ],
    pytest.param(
        "ListTasks",
        task_pb2.ListTasksRequest(page_size=-1),
        BAD,
        "page_size",
        id="list-negative-page-size",
    ),
    pytest.param(
        "ListTasks",
        task_pb2.ListTasksRequest(kind=raw_enum(99)),
        BAD,
        "kind",
        id="list-unknown-kind",
    ),
    pytest.param(
        "ListTasks",
        task_pb2.ListTasksRequest(statuses=[common_pb2.TASK_STATUS_UNSPECIFIED]),
        BAD,
        "statuses[0]",
        id="list-unspecified-status",
    ),
    pytest.param(
        "ListTasks",
        task_pb2.ListTasksRequest(statuses=[common_pb2.TASK_STATUS_DONE, raw_enum(42)]),
        BAD,
        "statuses[1]",
        id="list-unknown-status",
    ),
    pytest.param(
        "ListTasks",
        task_pb2.ListTasksRequest(page_token="garbage"),
        BAD,
        "page_token",
        id="list-garbage-token",
    ),
]

# Bad writes: each must be refused and leave no task and no item behind.
WRITE_CASES = [
    pytest.param(upsert(), "items", id="no-items"),
    pytest.param(
        upsert(*[ok_item(f"bi-bad-many-{i}") for i in range(1001)]), "items", id="1001-items"
    ),
    pytest.param(
        upsert(ok_item("bi-bad-dup"), ok_item("bi-bad-dup")),
        "items[1].object_id",
        id="duplicate-id",
    ),
    pytest.param(upsert(ok_item("bi-bad-ok1"), ok_item("")), "items[1].object_id", id="empty-id"),
    pytest.param(upsert(ok_item(LONG_ID)), "items[0].object_id", id="id-257"),
    pytest.param(upsert(ok_item("bi-bad-\x00")), "items[0].object_id", id="id-nul"),
    pytest.param(
        upsert(item("bi-bad-big", part(VEC), blob="x" * 66_000)),
        "items[0].payload",
        id="payload-66k",
    ),
    pytest.param(
        upsert(item("bi-bad-pnul", part(VEC), name="a\x00b")), "items[0].payload", id="payload-nul"
    ),
    pytest.param(
        upsert(item("bi-bad-both", part(VEC), text="words")), "items[0]", id="text-and-parts"
    ),
    pytest.param(upsert(item("bi-bad-neither")), "items[0]", id="neither-text-nor-parts"),
    pytest.param(upsert(item("bi-bad-blank", text="   ")), "items[0].text", id="blank-text"),
    pytest.param(upsert(item("bi-bad-tnul", text="a\x00b")), "items[0].text", id="text-nul"),
    pytest.param(
        upsert(item("bi-bad-pboth", part(VEC, text="   "))),
        "items[0].parts[0].text",
        id="part-vector-and-blank-text",
    ),
    pytest.param(
        upsert(item("bi-bad-pnone", part(VEC), part())), "items[0].parts[1]", id="empty-part"
    ),
    pytest.param(
        upsert(item("bi-bad-dims", part(VEC[:100]))), "items[0].parts[0].vector", id="part-100-dims"
    ),
    pytest.param(
        upsert(item("bi-bad-nan", part(NAN_VEC))), "items[0].parts[0].vector", id="part-nan"
    ),
    pytest.param(
        upsert(item("bi-bad-inf", part(INF_VEC))), "items[0].parts[0].vector", id="part-inf"
    ),
    pytest.param(
        upsert(item("bi-bad-zero", part([0.0] * DIMS))),
        "items[0].parts[0].vector",
        id="part-zero-vector",
    ),
    pytest.param(
        upsert(item("bi-bad-ptnul", part(text="a\x00"))),
        "items[0].parts[0].text",
        id="part-text-nul",
    ),
    pytest.param(
        upsert(item("bi-bad-pid", part(VEC, part_id="a"), part(VEC, part_id="a"))),
        "items[0].parts[1].part_id",
        id="duplicate-part-id",
    ),
    pytest.param(
        upsert(item("bi-bad-pidlong", part(VEC, part_id="p" * 129))),
        "items[0].parts[0].part_id",
        id="part-id-129",
    ),
    pytest.param(
        upsert(item("bi-bad-pidnul", part(VEC, part_id="p\x00"))),
        "items[0].parts[0].part_id",
        id="part-id-nul",
    ),
    pytest.param(
        upsert(item("bi-bad-257parts", *[part(VEC) for _ in range(257)])),
        "items[0].parts",
        id="257-parts",
    ),
    pytest.param(
        upsert(ok_item("bi-bad-key"), idempotency_key="k" * 300),
        "idempotency_key",
        id="idempotency-key-300",
    ),
    pytest.param(
        upsert(ok_item("bi-bad-coll"), collection_id="c" * 129),
        "collection_id",
        id="collection-129",
    ),
    pytest.param(
        upsert(ok_item("bi-bad-nocoll"), collection_id="nope"), None, id="unknown-collection"
    ),
    pytest.param(upsert_pb2.DeleteItemsRequest(), "object_ids", id="delete-no-ids"),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=[f"bi-{i}" for i in range(1001)]),
        "object_ids",
        id="delete-1001-ids",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1", ""]),
        "object_ids[1]",
        id="delete-empty-id",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=[LONG_ID]), "object_ids[0]", id="delete-id-257"
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1\x00"]),
        "object_ids[0]",
        id="delete-id-nul",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], idempotency_key="k" * 300),
        "idempotency_key",
        id="delete-key-300",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], collection_id="c" * 129),
        "collection_id",
        id="delete-collection-129",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], collection_id="nope"),
        None,
        id="delete-unknown-collection",
    ),
]


def write_rpc(request: Message) -> str:
    return "UpsertItems" if isinstance(request, upsert_pb2.UpsertItemsRequest) else "DeleteItems"


def write_code(field: str | None) -> grpc.StatusCode:
    return NOT_FOUND if field is None else BAD


@pytest.fixture(scope="module")
def seeded(client: Client) -> common_pb2.Task:
    """Three stored items (bi-seed-0..2): targets for FindSimilarItems, DeleteItems, page tokens."""
    task = client.upsert_items(
        [
            {
                "object_id": f"bi-seed-{i}",
                "payload": {"suite": SUITE, "n": i},
                "parts": [{"vector": unit(10 + i)}],
            }
            for i in range(3)
        ]
    )
    final = client.wait_for_task(task.task_id, timeout_seconds=120)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    return final


@pytest.mark.parametrize(("rpc", "request_message", "code", "field"), CASES)
def test_bad_request_is_refused_naming_the_field(
    client: Client,
    seeded: common_pb2.Task,
    rpc: str,
    request_message: Message,
    code: grpc.StatusCode,
    field: str | None,
) -> None:
    expect_error(call(client, rpc, request_message), code, field)


@pytest.mark.parametrize(("request_message", "field"), WRITE_CASES)
def test_bad_write_is_refused_naming_the_field(
    client: Client, seeded: common_pb2.Task, request_message: Message, field: str | None
) -> None:
    expect_error(
        call(client, write_rpc(request_message), request_message), write_code(field), field
    )


@pytest.mark.parametrize(
    ("rpc", "request_message"),
    [
        pytest.param("Search", by_vector(collection_id="nope"), id="Search"),
        pytest.param(
            "UpsertItems", upsert(ok_item("bi-bad-nocoll"), collection_id="nope"), id="UpsertItems"
        ),
        pytest.param(
            "GetItems",
            upsert_pb2.GetItemsRequest(object_ids=["x"], collection_id="nope"),
            id="GetItems",
        ),
    ],
)
def test_unknown_collection_names_the_field(
    client: Client, rpc: str, request_message: Message
) -> None:
    expect_error(call(client, rpc, request_message), NOT_FOUND, "collection_id")


def all_task_ids(client: Client) -> list[str]:
    ids: list[str] = []
    page_token = ""
    while True:
        reply = client.tasks.ListTasks(
            task_pb2.ListTasksRequest(page_size=1000, page_token=page_token)
        )
        ids += [t.task_id for t in reply.tasks]
        page_token = reply.next_page_token
        if not page_token:
            return ids


def named_ids(request: Message) -> set[str]:
    """The object ids a write request names that GetItems can be asked about."""
    if isinstance(request, upsert_pb2.UpsertItemsRequest):
        ids = {i.object_id for i in request.items}
    else:
        ids = set(request.object_ids)  # type: ignore[attr-defined]
    return {i for i in ids if i.startswith("bi-bad") and len(i) <= 256 and "\x00" not in i}


def test_refused_writes_leave_no_task_and_no_item(client: Client, seeded: common_pb2.Task) -> None:
    tasks_before = all_task_ids(client)
    asked: set[str] = set()
    for case in WRITE_CASES:
        request, field = cast(tuple[Message, str | None], case.values)
        expect_error(call(client, write_rpc(request), request), write_code(field), field)
        asked |= named_ids(request)
    assert all_task_ids(client) == tasks_before
    assert len(asked) > 20
    ids = sorted(asked)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=chunk))
        assert list(reply.items) == []
        assert list(reply.missing_object_ids) == chunk
    # The delete cases named bi-seed-1: it is still there.
    kept = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["bi-seed-1"]))
    assert [i.object_id for i in kept.items] == ["bi-seed-1"]


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(
            upsert(ok_item("bi-limit-key"), idempotency_key="k" * 257),
            "idempotency_key",
            id="key-257",
        ),
        pytest.param(
            upsert(item("bi-limit-pid", part(VEC, part_id="p" * 129))),
            "items[0].parts[0].part_id",
            id="part-id-129",
        ),
        pytest.param(
            upsert(item("bi-limit-text", part(text="w" * 100_001))),
            "items[0].parts[0].text",
            id="part-text-100001",
        ),
    ],
)
def test_documented_write_limits_are_enforced(
    client: Client, request_message: Message, field: str
) -> None:
    expect_error(call(client, "UpsertItems", request_message), BAD, field)


# --- page tokens only valid with the query that produced them -------------------------------------

MINE = F({"term": {"field": "suite", "value": SUITE}})


def test_page_token_from_another_query_is_refused(client: Client, seeded: common_pb2.Task) -> None:
    first = client.search.Search(by_vector(limit=1, filter=MINE))
    assert len(first.results) == 1 and first.next_page_token
    same = client.search.Search(by_vector(limit=1, filter=MINE, page_token=first.next_page_token))
    assert len(same.results) == 1 and same.results[0].object_id != first.results[0].object_id
    t = first.next_page_token
    for other in [
        by_vector(limit=1, page_token=t),  # no filter
        by_vector(unit(2), limit=1, filter=MINE, page_token=t),  # another vector
        by_vector(limit=1, filter=MINE, max_distance=1.5, page_token=t),
        by_vector(limit=1, filter=MINE, user_id="someone", page_token=t),
        with_sort(by_vector(limit=1, filter=MINE, page_token=t), "n"),
    ]:
        expect_error(call(client, "Search", other), BAD, "page_token")
    # A Search token is no SearchByPayload or FindSimilarItems token, and the reverse.
    payload_request = search_pb2.SearchByPayloadRequest(filter=MINE, limit=1, page_token=t)
    expect_error(call(client, "SearchByPayload", payload_request), BAD, "page_token")
    similar = search_pb2.FindSimilarItemsRequest(
        object_id="bi-seed-0", filter=MINE, limit=1, page_token=t
    )
    expect_error(call(client, "FindSimilarItems", similar), BAD, "page_token")

    payload_first = client.search.SearchByPayload(
        search_pb2.SearchByPayloadRequest(filter=MINE, limit=1)
    )
    assert payload_first.next_page_token
    sorted_request = with_sort(
        search_pb2.SearchByPayloadRequest(
            filter=MINE, limit=1, page_token=payload_first.next_page_token
        ),
        "n",
    )
    expect_error(call(client, "SearchByPayload", sorted_request), BAD, "page_token")
    expect_error(
        call(
            client,
            "Search",
            by_vector(limit=1, filter=MINE, page_token=payload_first.next_page_token),
        ),
        BAD,
        "page_token",
    )

    similar_first = client.search.FindSimilarItems(
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", filter=MINE, limit=1)
    )
    assert similar_first.next_page_token
    other_object = search_pb2.FindSimilarItemsRequest(
        object_id="bi-seed-1", filter=MINE, limit=1, page_token=similar_first.next_page_token
    )
    expect_error(call(client, "FindSimilarItems", other_object), BAD, "page_token")


def test_list_tasks_token_from_other_filters_is_refused(
    client: Client, seeded: common_pb2.Task
) -> None:
    client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=["bi-never-stored"]))
    first = client.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=1))
    assert first.next_page_token
    for other in [
        task_pb2.ListTasksRequest(
            page_size=1, page_token=first.next_page_token, kind=common_pb2.TASK_KIND_UPSERTION
        ),
        task_pb2.ListTasksRequest(
            page_size=1, page_token=first.next_page_token, statuses=[common_pb2.TASK_STATUS_DONE]
        ),
    ]:
        expect_error(call(client, "ListTasks", other), BAD, "page_token")


def test_list_tasks_clamps_a_large_page_size(client: Client, seeded: common_pb2.Task) -> None:
    reply = client.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=5000))
    assert 1 <= len(reply.tasks) <= 1000


# --- idempotency keys -----------------------------------------------------------------------------


def test_idempotency_key_reuse(client: Client) -> None:
    key = f"bi-key-{uuid.uuid4()}"
    request = upsert(ok_item("bi-idem-1"), idempotency_key=key)
    first = client.upsert.UpsertItems(request).task
    assert first.idempotency_key == key
    tasks_after_first = all_task_ids(client)
    again = client.upsert.UpsertItems(request).task
    assert again.task_id == first.task_id
    assert all_task_ids(client) == tasks_after_first, "a retry with the same key created a task"

    different = upsert(ok_item("bi-idem-2"), idempotency_key=key)
    expect_error(
        call(client, "UpsertItems", different), grpc.StatusCode.ALREADY_EXISTS, "idempotency_key"
    )
    final = client.wait_for_task(first.task_id, timeout_seconds=120)
    assert final.status == common_pb2.TASK_STATUS_DONE
    # Still the same task once it has finished; the refused request wrote nothing.
    assert client.upsert.UpsertItems(request).task.task_id == first.task_id
    expect_error(
        call(client, "UpsertItems", different), grpc.StatusCode.ALREADY_EXISTS, "idempotency_key"
    )
    reply = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=["bi-idem-1", "bi-idem-2"])
    )
    assert [i.object_id for i in reply.items] == ["bi-idem-1"]
    assert list(reply.missing_object_ids) == ["bi-idem-2"]
    assert all_task_ids(client) == tasks_after_first

    delete_key = f"bi-del-key-{uuid.uuid4()}"
    deletion = upsert_pb2.DeleteItemsRequest(
        object_ids=["bi-never-stored"], idempotency_key=delete_key
    )
    d1 = client.upsert.DeleteItems(deletion).task
    assert client.upsert.DeleteItems(deletion).task.task_id == d1.task_id
    other_deletion = upsert_pb2.DeleteItemsRequest(
        object_ids=["bi-idem-1"], idempotency_key=delete_key
    )
    expect_error(
        call(client, "DeleteItems", other_deletion),
        grpc.StatusCode.ALREADY_EXISTS,
        "idempotency_key",
    )
    assert (
        client.wait_for_task(d1.task_id, timeout_seconds=120).status == common_pb2.TASK_STATUS_DONE
    )


# --- task states ----------------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a fresh loop in another thread (tests here are synchronous)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def insert_task(dsn: str, status: str, object_id: str) -> str:
    """A task row no broker message will run: sent just now (so the sweeper leaves it alone for
    ten minutes) and, when processing, leased to a worker for an hour."""
    conn = await asyncpg.connect(dsn)
    try:
        collection_id = await conn.fetchval("SELECT collection_id FROM blue_collection")
        params = {
            "collection_id": collection_id,
            "items": [
                ItemInput(object_id, {"suite": SUITE}, None, [PartInput("0", None, VEC)]).to_json()
            ],
        }
        task_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO tasks (task_id, kind, status, params, sent_time, attempts, lease_owner,"
            " lease_expires_at, start_time)"
            " VALUES ($1, 'upsertion', $2, $3::jsonb, now(), $4, $5,"
            " CASE WHEN $2 = 'processing' THEN now() + interval '1 hour' END,"
            " CASE WHEN $2 = 'processing' THEN now() END)",
            task_id,
            status,
            json.dumps(params),
            1 if status == "processing" else 0,
            "test-holder" if status == "processing" else None,
        )
        return str(task_id)
    finally:
        await conn.close()


def test_finished_task_cannot_be_canceled_or_restarted(
    client: Client, seeded: common_pb2.Task
) -> None:
    assert seeded.status == common_pb2.TASK_STATUS_DONE
    for rpc, request_type in [
        ("CancelTask", task_pb2.CancelTaskRequest),
        ("RestartTask", task_pb2.RestartTaskRequest),
    ]:
        error = expect_error(
            call(client, rpc, request_type(task_id=seeded.task_id)), PRECONDITION, "task_id"
        )
        assert "done" in (error.details() or "")
    after = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=seeded.task_id)).task
    assert after.status == common_pb2.TASK_STATUS_DONE
    assert after.finish_time == seeded.finish_time


def test_pending_or_running_task_cannot_be_restarted(client: Client, stack: StackInfo) -> None:
    for status, expected in [
        ("pending", common_pb2.TASK_STATUS_PENDING),
        ("processing", common_pb2.TASK_STATUS_PROCESSING),
    ]:
        task_id = run_async(insert_task(stack.postgres_dsn, status, f"bi-state-{status}"))
        request = task_pb2.RestartTaskRequest(task_id=task_id)
        error = expect_error(call(client, "RestartTask", request), PRECONDITION, "task_id")
        assert status in (error.details() or "")
        assert (
            client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id)).task.status == expected
        )
        # Clean up: the row would otherwise be re-sent by the sweeper ten minutes from now.
        canceled = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task_id)).task
        assert canceled.status == common_pb2.TASK_STATUS_CANCELED
        error = expect_error(
            call(client, "CancelTask", task_pb2.CancelTaskRequest(task_id=task_id)),
            PRECONDITION,
            "task_id",
        )
        assert "canceled" in (error.details() or "")


# --- the services and features not built yet ------------------------------------------------------

PENDING = [
    (module, service, attribute)
    for module, service, attribute in [
        (suggestion_pb2, "SuggestionService", "suggestions"),
    ]
]
PENDING_RPCS = [
    pytest.param(module, service, attribute, method.name, id=f"{service}.{method.name}")
    for module, service, attribute in PENDING
    for method in module.DESCRIPTOR.services_by_name[service].methods
]


def test_every_pending_rpc_is_listed() -> None:
    assert len(PENDING_RPCS) == 5


@pytest.mark.parametrize(("module", "service", "attribute", "method"), PENDING_RPCS)
def test_pending_rpc_is_unimplemented_saying_what_is_missing(
    client: Client, module: Any, service: str, attribute: str, method: str
) -> None:
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    request = getattr(module, descriptor.input_type.name)()
    stub = getattr(getattr(client, attribute), method)
    send: Callable[[], object] = (
        (lambda: stub(iter([request]), timeout=30))
        if descriptor.client_streaming
        else (lambda: stub(request, timeout=30))
    )
    error = expect_error(send, grpc.StatusCode.UNIMPLEMENTED)
    message = error.details() or ""
    assert f"{service}.{method}" in message
    assert "not built yet" in message and len(message) > len(f"{service}.{method}") + 25


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(search_pb2.PredictCategoriesRequest(), id="empty"),
        pytest.param(
            search_pb2.PredictCategoriesRequest(query_text="running shoes", limit=3), id="query"
        ),
    ],
)
def test_predict_categories_is_unimplemented(client: Client, request_message: Message) -> None:
    error = expect_error(
        lambda: client.search.PredictCategories(request_message, timeout=30),
        grpc.StatusCode.UNIMPLEMENTED,
    )
    assert (
        "PredictCategories" in (error.details() or "")
        and "categor" in (error.details() or "").lower()
    )
    assert violated_fields(error) == []
