"""Every request is decoded and checked at the server's edge (es_server/request_checks.py): bytes
that are not a request, unknown enum values and NUL characters are refused naming the field.
How a refusal reaches a caller through gRPC: tests/unit/test_interceptor_over_grpc.py."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from embedding_studio.v1 import (
    clickstream_pb2,
    common_pb2,
    fine_tune_pb2,
    ranking_pb2,
    search_pb2,
    task_pb2,
    upsert_pb2,
)
from es_core.errors import InvalidArgument
from es_server.convert import filter_from_proto
from es_server.request_checks import NUL, RefusedRequest, check_request, checking_decoder
from tests.bad_requests import F


def _refused(message: Message) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        check_request(message)
    return info.value


def _field(message: Message) -> tuple[str, str]:
    violations = _refused(message).violations
    assert len(violations) == 1
    return violations[0].field, violations[0].description


def _upsert(**item: Any) -> upsert_pb2.UpsertItemsRequest:
    request = upsert_pb2.UpsertItemsRequest()
    request.items.add(object_id="ok")
    json_format.ParseDict({"object_id": "x", **item}, request.items.add())
    return request


NUL_CASES = [
    pytest.param(
        search_pb2.SearchRequest(collection_id="c\x00"), "collection_id", id="collection-id"
    ),
    pytest.param(
        upsert_pb2.UpsertItemsRequest(idempotency_key="k\x00"), "idempotency_key", id="idem-key"
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["a", "b\x00"]), "object_ids[1]", id="ids"
    ),
    pytest.param(
        _upsert(parts=[{"text": "fine"}, {"text": "a\x00"}]),
        "items[1].parts[1].text",
        id="part-text",
    ),
    pytest.param(_upsert(payload={"a": {"b": ["c\x00"]}}), "items[1].payload", id="payload"),
    pytest.param(_upsert(payload={"k\x00": 1}), "items[1].payload", id="payload-key"),
    pytest.param(
        search_pb2.CountItemsRequest(
            filter=F({"bool": {"should": [{"terms": {"field": "a", "values": [1, "x\x00"]}}]}})
        ),
        "filter.bool.should[0].terms.values[1]",
        id="filter-value",
    ),
    pytest.param(
        clickstream_pb2.RegisterSessionRequest(
            session=json_format.ParseDict(
                {"session_id": "s", "meta": {"k": ["a\x00"]}}, clickstream_pb2.Session()
            )
        ),
        "session.meta",
        id="session-meta",
    ),
    pytest.param(
        fine_tune_pb2.StartFineTuningRequest(
            hyperparameters=json_format.ParseDict(
                {"learning_rate\x00": [1e-5]},
                fine_tune_pb2.StartFineTuningRequest().hyperparameters,
            )
        ),
        "hyperparameters",
        id="hyperparameters",
    ),
    pytest.param(task_pb2.ListTasksRequest(page_token="\x00"), "page_token", id="page-token"),
]


@pytest.mark.parametrize(("request_message", "field"), NUL_CASES)
def test_a_nul_anywhere_is_refused_naming_the_field(request_message: Message, field: str) -> None:
    assert _field(request_message) == (field, NUL)


def _match(operator: int, depth: int = 0) -> common_pb2.Filter:
    spec: dict[str, Any] = {"match": {"field": "title", "query": "fever"}}
    for _ in range(depth):
        spec = {"bool": {"must": [{"exists": {"field": "a"}}, spec]}}
    message = F(spec)
    target = message
    for _ in range(depth):
        target = target.bool.must[1]
    target.match.operator = operator  # type: ignore[assignment]
    return message


def _ranking(**fields: Any) -> search_pb2.SearchRequest:
    request = search_pb2.SearchRequest(query_text="q")
    request.ranking.method = ranking_pb2.RANKING_METHOD_HYBRID
    for name, value in fields.items():
        setattr(request.ranking, name, value)
    return request


def _boost_function(value: int) -> search_pb2.SearchRequest:
    request = _ranking()
    request.ranking.boosts.add(field="popularity").function = value  # type: ignore[assignment]
    return request


def _statuses(*values: int) -> task_pb2.ListTasksRequest:
    request = task_pb2.ListTasksRequest()
    request.statuses.extend(values)  # type: ignore[arg-type]
    return request


ENUM_CASES = [
    pytest.param(
        search_pb2.CountItemsRequest(filter=_match(7)), "filter.match.operator", id="match"
    ),
    pytest.param(
        search_pb2.SearchByPayloadRequest(filter=_match(3, depth=2)),
        "filter.bool.must[1].bool.must[1].match.operator",
        id="nested-match",
    ),
    pytest.param(_ranking(method=9), "ranking.method", id="ranking-method"),
    pytest.param(_ranking(fusion=-1), "ranking.fusion", id="fusion-negative"),
    pytest.param(_boost_function(42), "ranking.boosts[0].function", id="boost-function"),
    pytest.param(
        _statuses(common_pb2.TASK_STATUS_DONE, 99), "statuses[1]", id="repeated-task-status"
    ),
    pytest.param(task_pb2.ListTasksRequest(kind=77), "kind", id="task-kind"),  # type: ignore[arg-type]
    pytest.param(
        ranking_pb2.DeclareSignalFieldsRequest(
            fields=[ranking_pb2.SignalField(field="p", kind=5)]  # type: ignore[arg-type]
        ),
        "fields[0].kind",
        id="signal-kind",
    ),
]


@pytest.mark.parametrize(("request_message", "field"), ENUM_CASES)
def test_an_unknown_enum_value_is_refused_naming_the_field(
    request_message: Message, field: str
) -> None:
    named, description = _field(request_message)
    assert named == field
    assert "is not a known" in description


def test_known_values_and_plain_strings_pass() -> None:
    """The positive control: every known enum value, unset ones, and strings without NUL."""
    for operator in common_pb2.MatchOperator.values():
        check_request(search_pb2.CountItemsRequest(filter=_match(operator, depth=1)))
    check_request(_statuses(*[s for s in common_pb2.TaskStatus.values() if s]))
    check_request(_upsert(text="ä \u2028 \x01 text", payload={"a": [1, None, True, "b"]}))
    check_request(search_pb2.SearchRequest())


def test_the_conversion_refuses_an_unknown_match_operator_too() -> None:
    """convert.py maps the operator itself; UNSPECIFIED is OR as the contract says."""
    assert (
        filter_from_proto(_match(common_pb2.MATCH_OPERATOR_UNSPECIFIED), "filter").operator == "or"
    )  # type: ignore[union-attr]
    assert filter_from_proto(_match(common_pb2.MATCH_OPERATOR_AND), "filter").operator == "and"  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument) as info:
        filter_from_proto(_match(5), "filter")
    assert [v.field for v in info.value.violations] == ["filter.match.operator"]


# --- decoding ------------------------------------------------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes([*out, value])


def _length_delimited(number: int, payload: bytes) -> bytes:
    """One length-delimited field (a nested message) in protobuf's wire format."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def over_nested_count_request(levels: int) -> bytes:
    """A CountItemsRequest whose filter nests ``levels`` bool.must levels (two messages each),
    written by hand: the Python library will not build one past its own depth limit."""
    filter_fields = common_pb2.Filter.DESCRIPTOR.fields_by_name
    must = common_pb2.BoolFilter.DESCRIPTOR.fields_by_name["must"].number
    inner = _length_delimited(filter_fields["exists"].number, _length_delimited(1, b"a"))
    for _ in range(levels):
        inner = _length_delimited(filter_fields["bool"].number, _length_delimited(must, inner))
    return _length_delimited(1, inner)


def truncated_count_request() -> bytes:
    whole: bytes = search_pb2.CountItemsRequest(
        collection_id="blue", filter=_match(1)
    ).SerializeToString()
    return whole[:-3]


DECODE = checking_decoder(search_pb2.CountItemsRequest.FromString, "SearchService.CountItems")


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(truncated_count_request(), id="truncated"),
        pytest.param(over_nested_count_request(60), id="over-nested"),
        pytest.param(b"\xff\xff\xff", id="garbage"),
    ],
)
def test_bytes_that_are_not_a_request_are_refused_without_python_names(data: bytes) -> None:
    refused = DECODE(data)
    assert isinstance(refused, RefusedRequest)
    message = refused.error.message
    assert message.startswith("the SearchService.CountItems request cannot be decoded")
    assert "Error" not in message and "class" not in message and "embedding_studio" not in message


def test_a_request_within_the_depth_limit_decodes() -> None:
    decoded = DECODE(over_nested_count_request(40))
    assert isinstance(decoded, search_pb2.CountItemsRequest)
    assert decoded.filter.bool.must[0].HasField("bool")


def test_the_decoder_checks_what_it_decoded() -> None:
    refused = DECODE(search_pb2.CountItemsRequest(collection_id="a\x00").SerializeToString())
    assert isinstance(refused, RefusedRequest)
    assert [v.field for v in refused.error.violations] == ["collection_id"]
