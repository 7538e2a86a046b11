"""Page tokens round-trip their cursor, refuse garbage and tokens of another query."""

from __future__ import annotations

import base64
import json

import pytest

from es_core.errors import InvalidArgument
from es_core.pagination import check_page_size, decode_page_token, encode_page_token

SCOPE = {"kind": "vector", "collection": "c1", "filter": "None"}


def _violation_fields(exc: InvalidArgument) -> list[str]:
    return [v.field for v in exc.violations]


@pytest.mark.parametrize(
    "cursor",
    [
        {"k": [0.125, "obj-1"]},
        {"k": [True, {"nested": [1, 2]}, "ü/\"'\\"]},
        {"create_time": "2024-01-01T00:00:00+00:00", "task_id": "x"},
        {},
    ],
)
def test_round_trip(cursor: dict) -> None:
    token = encode_page_token(cursor, SCOPE)
    assert isinstance(token, str) and token
    assert "=" not in token and "+" not in token and "/" not in token  # url-safe, unpadded
    assert decode_page_token(token, SCOPE) == cursor


def test_scope_key_order_does_not_matter() -> None:
    token = encode_page_token({"k": [1]}, {"a": 1, "b": 2})
    assert decode_page_token(token, {"b": 2, "a": 1}) == {"k": [1]}


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "not base64 at all ~~~",
        "YWJj",  # base64 of "abc": not JSON
        base64.urlsafe_b64encode(b"[1, 2]").decode(),  # JSON but not an object
        base64.urlsafe_b64encode(b'"just a string"').decode(),
        base64.urlsafe_b64encode(b'{"c": {}}').decode(),  # no scope digest
        base64.urlsafe_b64encode(b'{"s": "x"}').decode(),  # no cursor
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        "ü",
    ],
)
def test_garbage_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        decode_page_token(token, SCOPE)
    assert _violation_fields(info.value) == ["page_token"]


def test_deeply_nested_garbage_token_is_invalid_argument() -> None:
    token = base64.urlsafe_b64encode(b"[" * 5_000).decode()
    with pytest.raises(InvalidArgument):
        decode_page_token(token, SCOPE)


def test_cursor_that_is_not_an_object_is_refused() -> None:
    token = encode_page_token({"k": [1]}, SCOPE)
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body["c"] = [1, 2]
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(InvalidArgument):
        decode_page_token(forged, SCOPE)


def test_token_of_another_scope_is_refused_with_the_field_named() -> None:
    token = encode_page_token({"k": [1, "a"]}, SCOPE)
    with pytest.raises(InvalidArgument) as info:
        decode_page_token(token, {**SCOPE, "filter": "Term(field='a', value=1)"}, field="x.token")
    assert _violation_fields(info.value) == ["x.token"]
    assert "different query" in info.value.violations[0].description


def test_check_page_size() -> None:
    assert check_page_size(0, default=20, maximum=100) == 20
    assert check_page_size(1, default=20, maximum=100) == 1
    assert check_page_size(100, default=20, maximum=100) == 100
    assert check_page_size(101, default=20, maximum=100) == 100  # clamped, as AIP-158 asks
    with pytest.raises(InvalidArgument) as info:
        check_page_size(-1, default=20, maximum=100, field_path="req.page_size")
    assert _violation_fields(info.value) == ["req.page_size"]
