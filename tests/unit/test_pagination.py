"""Page tokens round-trip their cursor, are signed (no forging, no tampering, keys rotate
without breaking tokens in flight), refuse garbage and tokens of another query."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.page_tokens import PageTokens
from es_core.pagination import MAX_RANK, check_page_size, page_offset
from tests.page_tokens import TEST_KEY, TOKENS

SCOPE = {"kind": "vector", "collection": "c1", "filter": "None"}
OLD_KEY = b"old-page-token-key-0123456789ab"
NEW_KEY = b"new-page-token-key-0123456789ab"


def _violation_fields(exc: InvalidArgument) -> list[str]:
    return [v.field for v in exc.violations]


def _refused(tokens: PageTokens, token: str, scope: object = SCOPE) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as info:
        tokens.decode(token, scope)
    assert _violation_fields(info.value) == ["page_token"]
    return info.value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _parts(token: str) -> tuple[dict, str]:
    """The token's body as JSON and its mac, as a caller could read them."""
    body, _, mac = token.rpartition(".")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))), mac


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
    token = TOKENS.encode(cursor, SCOPE)
    assert isinstance(token, str) and token
    assert "=" not in token and "+" not in token and "/" not in token  # url-safe, unpadded
    assert TOKENS.decode(token, SCOPE) == cursor


def test_scope_key_order_does_not_matter() -> None:
    token = TOKENS.encode({"k": [1]}, {"a": 1, "b": 2})
    assert TOKENS.decode(token, {"b": 2, "a": 1}) == {"k": [1]}


@pytest.mark.parametrize(
    "token",
    [
        "garbage!!",
        "not base64 at all ~~~",
        "YWJj",  # base64 of "abc": no mac at all
        base64.urlsafe_b64encode(b"[1, 2]").decode(),  # JSON but not an object
        base64.urlsafe_b64encode(b'"just a string"').decode(),
        base64.urlsafe_b64encode(b'{"c": {}}').decode(),  # no scope digest
        base64.urlsafe_b64encode(b'{"s": "x"}').decode(),  # no cursor
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),  # not UTF-8
        "ü",
        "ü.ü",
        ".",
        "abc.",
        "abc.!!!",
        "a" * 5000 + ".abc",
    ],
)
def test_garbage_token_is_invalid_argument(token: str) -> None:
    _refused(TOKENS, token)


def test_deeply_nested_garbage_token_is_invalid_argument() -> None:
    _refused(TOKENS, base64.urlsafe_b64encode(b"[" * 5_000).decode())


def test_unsigned_cursor_a_caller_wrote_is_refused() -> None:
    """The old format (a digest anyone can compute) and a made-up mac both fail the check."""
    body = _b64(json.dumps({"s": "0" * 16, "c": {"k": [0.1, "a"], "n": 2**40}}).encode())
    _refused(TOKENS, body)
    _refused(TOKENS, f"{body}.{_b64(b'x' * 32)}")


def test_tampered_cursor_is_refused() -> None:
    token = TOKENS.encode({"k": [0.5, "obj-1"], "n": 10}, SCOPE)
    body, mac = _parts(token)
    body["c"]["n"] = 2**40
    tampered = f"{_b64(json.dumps(body, separators=(',', ':')).encode())}.{mac}"
    description = _refused(TOKENS, tampered).violations[0].description
    assert "not a page token this service issued" in description


def test_truncated_or_altered_mac_is_refused() -> None:
    token = TOKENS.encode({"k": [1]}, SCOPE)
    _refused(TOKENS, token[:-2])
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    _refused(TOKENS, flipped)


def test_token_signed_with_another_key_is_refused() -> None:
    elsewhere = PageTokens([b"another-deployments-key-0123456"])
    _refused(TOKENS, elsewhere.encode({"k": [1]}, SCOPE))


def test_cursor_that_is_not_an_object_is_refused_even_when_signed() -> None:
    token = TOKENS.encode({"k": [1]}, SCOPE)
    body, _ = _parts(token)
    body["c"] = [1, 2]
    raw = _b64(json.dumps(body).encode())
    signed = f"{raw}.{_b64(hmac.new(TEST_KEY, raw.encode(), hashlib.sha256).digest())}"
    _refused(TOKENS, signed)


def test_rotation_keeps_tokens_in_flight() -> None:
    """Rotating: the new key goes first (it signs), the old one stays listed (it verifies)
    until the tokens it signed are used up; then it is dropped and they stop working."""
    before = PageTokens([OLD_KEY])
    in_flight = before.encode({"k": [1, "a"]}, SCOPE)
    during = PageTokens([NEW_KEY, OLD_KEY])
    assert during.decode(in_flight, SCOPE) == {"k": [1, "a"]}
    fresh = during.encode({"k": [2, "b"]}, SCOPE)
    after = PageTokens([NEW_KEY])
    assert after.decode(fresh, SCOPE) == {"k": [2, "b"]}
    _refused(after, in_flight)
    _refused(before, fresh)  # a server not yet given the new key refuses its tokens


def test_keys_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        PageTokens([])
    with pytest.raises(ValueError):
        PageTokens([NEW_KEY, b"short"])


def test_settings_read_a_comma_separated_key_list() -> None:
    settings = Settings(
        data_dir=Path("/nonexistent"),
        page_token_keys=SecretStr(f" {NEW_KEY.decode()} , {OLD_KEY.decode()} ,"),
    )
    assert settings.page_token_key_list == [NEW_KEY, OLD_KEY]
    assert NEW_KEY.decode() not in repr(settings)
    assert Settings(data_dir=Path("/nonexistent")).page_token_key_list == []
    with pytest.raises(ValidationError, match="at least 16"):
        Settings(data_dir=Path("/nonexistent"), page_token_keys=SecretStr("tooshort"))


def test_token_of_another_scope_is_refused_with_the_field_named() -> None:
    token = TOKENS.encode({"k": [1, "a"]}, SCOPE)
    with pytest.raises(InvalidArgument) as info:
        TOKENS.decode(token, {**SCOPE, "filter": "Term(field='a', value=1)"}, field="x.token")
    assert _violation_fields(info.value) == ["x.token"]
    assert "different query" in info.value.violations[0].description


def test_collection_is_read_from_a_verified_token_only() -> None:
    assert TOKENS.collection(TOKENS.encode({"col": "c7"}, SCOPE)) == "c7"
    assert TOKENS.collection(TOKENS.encode({"k": [1]}, SCOPE)) is None
    forged = _b64(json.dumps({"s": "x", "c": {"col": "someone-elses"}}).encode())
    with pytest.raises(InvalidArgument) as info:
        TOKENS.collection(f"{forged}.{_b64(b'y' * 32)}")
    assert _violation_fields(info.value) == ["page_token"]


@pytest.mark.parametrize(
    ("cursor", "limit"),
    [
        ({}, 10),
        ({"n": -1}, 10),
        ({"n": True}, 10),
        ({"n": 1.5}, 10),
        ({"n": "3"}, 10),
        ({"n": 2**40}, 10),
        ({"n": MAX_RANK}, 2),  # the page's second result would pass the last rank
    ],
)
def test_page_offset_out_of_range_is_refused(cursor: dict, limit: int) -> None:
    with pytest.raises(InvalidArgument) as info:
        page_offset(cursor, limit)
    assert _violation_fields(info.value) == ["page_token"]


def test_page_offset_in_range() -> None:
    assert page_offset({"n": 0}, 10) == 0
    assert page_offset({"n": MAX_RANK - 9}, 10) == MAX_RANK - 9
    assert page_offset({"n": MAX_RANK}, 1) == MAX_RANK


def test_check_page_size() -> None:
    assert check_page_size(0, default=20, maximum=100) == 20
    assert check_page_size(1, default=20, maximum=100) == 1
    assert check_page_size(100, default=20, maximum=100) == 100
    assert check_page_size(101, default=20, maximum=100) == 100  # clamped, as AIP-158 asks
    with pytest.raises(InvalidArgument) as info:
        check_page_size(-1, default=20, maximum=100, field_path="req.page_size")
    assert _violation_fields(info.value) == ["req.page_size"]
