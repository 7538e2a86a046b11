"""Bad wire filters are refused naming the clause, by the conversion and check every RPC with a
filter runs before it reads anything (es_server.convert.optional_filter)."""

from __future__ import annotations

import math

import pytest
from google.protobuf.message import Message

from embedding_studio.v1 import common_pb2, search_pb2
from es_server.convert import optional_filter
from tests.bad_requests import F, deep_bool, expect_refusal

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
    # A Struct value may carry NaN or an infinity on the wire; JSON (and the payload) has neither.
    pytest.param(F({"range": {"field": "a", "gt": math.nan}}), "filter.range.gt", id="range-nan"),
    pytest.param(
        F({"term": {"field": "a", "value": math.inf}}), "filter.term.value", id="term-inf"
    ),
    # The documented limits: 16 path segments of at most 128 characters, 1024 characters of
    # match query or wildcard pattern.
    pytest.param(
        F({"exists": {"field": ".".join(["f"] * 17)}}),
        "filter.exists.field",
        id="field-17-segments",
    ),
    pytest.param(
        F({"exists": {"field": "f" * 129}}), "filter.exists.field", id="field-segment-129-chars"
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
]


@pytest.mark.parametrize(("bad_filter", "field"), FILTER_CASES)
def test_bad_filter_is_refused_naming_the_clause(bad_filter: common_pb2.Filter, field: str) -> None:
    request = search_pb2.CountItemsRequest(filter=bad_filter)
    expect_refusal(lambda: optional_filter(request), field)


def test_sixteen_bool_levels_are_accepted() -> None:
    """The positive control of the depth limit: one level less is a valid filter."""
    assert optional_filter(search_pb2.CountItemsRequest(filter=deep_bool(16))) is not None


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(
            search_pb2.SearchRequest(filter=common_pb2.Filter()), "filter", id="search-no-kind"
        ),
        pytest.param(
            search_pb2.SearchRequest(filter=F({"range": {"field": "n"}})),
            "filter.range",
            id="search-range-no-bounds",
        ),
        pytest.param(
            search_pb2.SearchByPayloadRequest(filter=F({"terms": {"field": "a", "values": []}})),
            "filter.terms.values",
            id="payload-terms-empty",
        ),
        pytest.param(
            search_pb2.FindSimilarItemsRequest(
                object_id="bi-seed-0", filter=F({"range": {"field": "n", "gt": 1, "lte": "b"}})
            ),
            "filter.range.lte",
            id="similar-range-mixed",
        ),
    ],
)
def test_every_request_filter_is_checked_alike(request_message: Message, field: str) -> None:
    expect_refusal(lambda: optional_filter(request_message), field)
