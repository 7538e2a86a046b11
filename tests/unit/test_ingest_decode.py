"""Decoding a fetched record into text and payload, or a PARSE failure naming why."""

from __future__ import annotations

import json

import pytest

from es_core.errors import InvalidArgument
from es_core.ingest.decode import Decoded, check_template, decode, fill_template
from es_core.loaders.model import Fields, ItemFailure, Record, Stage

MAX = 64 * 1024


DEFAULT_FIELDS = Fields()


def _decode(
    content: bytes | dict,
    content_type: str = "",
    fields: Fields = DEFAULT_FIELDS,
    payload: dict | None = None,
) -> Decoded | ItemFailure:
    return decode(Record("x", content, content_type, payload or {}), fields, MAX)


def test_text_in_utf8_with_or_without_bom_and_in_a_named_charset() -> None:
    assert _decode("café".encode()).text == "café"
    assert _decode(b"\xef\xbb\xbfcaf\xc3\xa9", "text/plain").text == "café"
    assert _decode("café".encode("latin-1"), "text/plain; charset=latin-1").text == "café"


def test_bad_bytes_fail_at_parse_saying_where() -> None:
    failed = _decode(b"ok \xff\xfe bad", "text/plain")
    assert failed == ItemFailure("x", Stage.PARSE, "not valid utf-8 at byte 3")
    unknown = _decode(b"x", "text/plain; charset=klingon")
    assert isinstance(unknown, ItemFailure) and "unknown charset" in unknown.reason
    binary = _decode(b"\x89PNG", "image/png")
    assert isinstance(binary, ItemFailure) and "image/png" in binary.reason


def test_html_is_kept_as_markup_for_the_cleaner() -> None:
    decoded = _decode(b"<p>hi</p>", "text/html")
    assert decoded == Decoded("<p>hi</p>", {}, "text/html")


def test_a_json_document_is_a_record_read_through_its_fields() -> None:
    doc = {"id": "7", "title": "T", "abstract": "A", "year": 2020, "meta": {"venue": "V"}}
    fields = Fields(template="{title}. {abstract} ({meta.venue})")
    decoded = _decode(json.dumps(doc).encode(), "application/json", fields)
    assert decoded == Decoded("T. A (V)", {"year": 2020}, "text/plain")
    only = _decode(doc, fields=Fields(text="abstract", payload=("year",)))
    assert only == Decoded("A", {"year": 2020}, "text/plain")


def test_a_null_text_is_an_empty_text() -> None:
    assert _decode({"id": "1", "text": None}) == Decoded("", {}, "text/plain")


def test_the_request_payload_wins_over_the_records() -> None:
    decoded = _decode({"id": "1", "text": "t", "lang": "en", "k": 1}, payload={"k": 2})
    assert isinstance(decoded, Decoded) and decoded.payload == {"lang": "en", "k": 2}


@pytest.mark.parametrize(
    ("content", "content_type", "why"),
    [
        (b"{not json", "application/json", "not valid JSON"),
        (b"[1, 2]", "application/json", "must be an object"),
        ({"id": "1"}, "", "no 'text' field"),
        ({"id": "1", "text": {"nested": 1}}, "", "is not a text"),
        ({"id": "1", "text": "t", "blob": "x" * MAX}, "", "at most"),
        ({"id": "1", "text": "t", "bad": "a\x00b"}, "", "NUL"),
    ],
)
def test_bad_records_fail_at_parse(content: bytes | dict, content_type: str, why: str) -> None:
    failed = _decode(content, content_type)
    assert isinstance(failed, ItemFailure) and failed.stage == Stage.PARSE
    assert why in failed.reason


def test_templates_fill_missing_fields_with_nothing_and_refuse_bad_syntax() -> None:
    assert fill_template("{a} - {b}", {"a": "x"}) == "x - "
    assert fill_template("{n}", {"n": [1, 2]}) == "[1, 2]"
    check_template("{title}. {abstract}", "f")
    for bad in ("{title", "{}", "x {0"):
        with pytest.raises(InvalidArgument) as info:
            check_template(bad, "sources[0].fields.template")
        assert info.value.violations[0].field == "sources[0].fields.template"
