"""Bad Search, SearchByPayload, CountItems and FindSimilarItems requests are refused naming the
field, by the checks their servicer (es_server/services/search.py) and the Search use case run on
what the request carries. ``BLUE`` stands for the collection they resolve; an unknown collection
or object needs the database (tests/e2e/test_bad_input.py)."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from google.protobuf.message import Message

from embedding_studio.v1 import common_pb2, search_pb2
from es_core.config import Settings
from es_core.item_input import check_object_id, check_vector
from es_core.ranking.choice import check_words
from es_core.search.query import (
    PayloadQuery,
    VectorQuery,
    check_limit,
    check_max_distance,
    check_query_text,
    check_user_id,
)
from es_core.storage.catalog import check_collection_id
from es_server.convert import optional_sort
from tests.bad_requests import BLUE, DIMS, INF_VEC, LONG_ID, NAN_VEC, VEC, expect_refusal
from tests.page_tokens import TOKENS

SETTINGS = Settings(data_dir=Path("/nonexistent"))


def search(**kw: Any) -> search_pb2.SearchRequest:
    return search_pb2.SearchRequest(**kw)


def by_vector(values: list[float] = VEC, **kw: Any) -> search_pb2.SearchRequest:
    return search_pb2.SearchRequest(query_vector=common_pb2.Vector(values=values), **kw)


def payload(**kw: Any) -> search_pb2.SearchByPayloadRequest:
    return search_pb2.SearchByPayloadRequest(**kw)


def similar(**kw: Any) -> search_pb2.FindSimilarItemsRequest:
    return search_pb2.FindSimilarItemsRequest(**kw)


def with_sort(request: Any, field: str, order: int = common_pb2.SORT_ORDER_ASC) -> Any:
    request.sort.field = field
    request.sort.order = order
    return request


def token(body: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(search(limit=3), id="search-no-query"),
        pytest.param(search(query_text="  \t "), id="search-blank-text"),
        pytest.param(search(query_text="a" * 4097), id="search-text-4097"),
        pytest.param(search(query_text="a\x00b"), id="search-text-nul"),
    ],
)
def test_bad_query_text(request_message: search_pb2.SearchRequest) -> None:
    """The use case checks the words first (lexical ranking reads them unencoded), then the text
    it encodes when the request has no vector."""
    text = request_message.query_text if request_message.WhichOneof("query") else None

    def checks() -> None:
        check_words(text or "", request_message.lexical_query, SETTINGS.max_query_chars)
        check_query_text(text, SETTINGS.max_query_chars)

    expect_refusal(checks, "query_text")


@pytest.mark.parametrize(
    "values",
    [
        pytest.param(VEC[:-1], id="search-383-dims"),
        pytest.param(VEC + [0.0], id="search-385-dims"),
        pytest.param([], id="search-empty-vector"),
        pytest.param(NAN_VEC, id="search-nan-vector"),
        pytest.param(INF_VEC, id="search-inf-vector"),
        pytest.param([0.0] * DIMS, id="search-zero-vector"),
    ],
)
def test_bad_query_vector(values: list[float]) -> None:
    request = by_vector(values)
    expect_refusal(
        lambda: check_vector(list(request.query_vector.values), "query_vector.values", BLUE),
        "query_vector.values",
    )


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(by_vector(limit=-1), id="search-negative-limit"),
        pytest.param(by_vector(limit=1001), id="search-limit-1001"),
        pytest.param(payload(limit=-1), id="payload-negative-limit"),
        pytest.param(payload(limit=1001), id="payload-limit-1001"),
        pytest.param(similar(object_id="bi-seed-0", limit=-5), id="similar-negative-limit"),
        pytest.param(similar(object_id="bi-seed-0", limit=5000), id="similar-limit-5000"),
    ],
)
def test_limit_out_of_range(request_message: Any) -> None:
    expect_refusal(lambda: check_limit(request_message.limit, SETTINGS), "limit")


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(by_vector(max_distance=math.nan), id="search-max-distance-nan"),
        pytest.param(by_vector(max_distance=math.inf), id="search-max-distance-inf"),
        pytest.param(
            similar(object_id="bi-seed-0", max_distance=math.nan), id="similar-max-distance-nan"
        ),
    ],
)
def test_non_finite_max_distance(request_message: Any) -> None:
    assert request_message.HasField("max_distance")
    expect_refusal(lambda: check_max_distance(request_message.max_distance), "max_distance")


def _scope(request: Message) -> dict[str, Any]:
    """What the RPC binds its page tokens to (the query it runs on ``BLUE``)."""
    if isinstance(request, search_pb2.SearchByPayloadRequest):
        return PayloadQuery(page_token=request.page_token).scope(BLUE.collection_id)
    exclude = request.object_id if isinstance(request, search_pb2.FindSimilarItemsRequest) else ""
    query = VectorQuery(vector=np.asarray(VEC, dtype=np.float32), exclude_object_id=exclude)
    return query.scope(BLUE.collection_id)


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(by_vector(page_token="garbage!!"), id="search-garbage-token"),
        pytest.param(by_vector(page_token=token({"x": 1})), id="search-forged-token"),
        pytest.param(
            by_vector(page_token=token({"s": "0" * 16, "c": {"k": [0.1, "a"]}})),
            id="search-foreign-token",
        ),
        pytest.param(payload(page_token="%%%"), id="payload-garbage-token"),
        pytest.param(
            similar(object_id="bi-seed-0", page_token="garbage"), id="similar-garbage-token"
        ),
    ],
)
def test_bad_page_token(request_message: Any) -> None:
    expect_refusal(
        lambda: TOKENS.decode(request_message.page_token, _scope(request_message)),
        "page_token",
    )


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(by_vector(user_id="u" * 257), id="search-user-257"),
        pytest.param(by_vector(user_id="u\x00"), id="search-user-nul"),
        pytest.param(payload(user_id="u" * 257), id="payload-user-257"),
    ],
)
def test_bad_user_id(request_message: Any) -> None:
    expect_refusal(lambda: check_user_id(request_message.user_id, SETTINGS), "user_id")


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(by_vector(collection_id="c" * 129), id="search-collection-129"),
        pytest.param(payload(collection_id="c" * 129), id="payload-collection-129"),
        pytest.param(
            search_pb2.CountItemsRequest(collection_id="c" * 129), id="count-collection-129"
        ),
    ],
)
def test_collection_id_too_long(request_message: Any) -> None:
    expect_refusal(lambda: check_collection_id(request_message.collection_id), "collection_id")


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(with_sort(by_vector(), ""), "sort.field", id="search-sort-empty"),
        pytest.param(with_sort(by_vector(), "a..b"), "sort.field", id="search-sort-bad-path"),
        pytest.param(with_sort(by_vector(), "a\x00"), "sort.field", id="search-sort-nul"),
        pytest.param(with_sort(by_vector(), "n", 9), "sort.order", id="search-sort-order-9"),
        pytest.param(with_sort(payload(), ""), "sort.field", id="payload-sort-empty"),
        pytest.param(with_sort(payload(), "n", 7), "sort.order", id="payload-sort-order-7"),
    ],
)
def test_bad_sort(request_message: Any, field: str) -> None:
    expect_refusal(lambda: optional_sort(request_message), field)


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(similar(), id="similar-no-object"),
        pytest.param(similar(object_id=LONG_ID), id="similar-object-257"),
        pytest.param(similar(object_id="bi\x00"), id="similar-object-nul"),
    ],
)
def test_bad_similar_object_id(request_message: search_pb2.FindSimilarItemsRequest) -> None:
    expect_refusal(
        lambda: check_object_id(request_message.object_id, "object_id", SETTINGS), "object_id"
    )
