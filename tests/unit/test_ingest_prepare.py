"""Preparing items: each failure is its item's alone, at the stage it happened."""

from __future__ import annotations

from pathlib import Path

import pytest

from es_core.config import Settings
from es_core.ingest.cleaning import TextCleaner
from es_core.ingest.decode import Decoded
from es_core.ingest.prepare import Preparer
from es_core.item_input import ItemInput, PartInput
from es_core.loaders.model import Fields, ItemFailure, Locator, Record, SourceSpec, Stage

SETTINGS = Settings(data_dir=Path("/nonexistent"), max_parts_per_item=3)
PREPARER = Preparer(
    TextCleaner(("strip_html", "normalize_whitespace")), lambda t: t.split(" | "), SETTINGS
)
SPEC = SourceSpec("s3", Locator(bucket="b", key="k"))


def test_a_text_is_cleaned_and_split_into_numbered_parts() -> None:
    ready = PREPARER.ready("a", Decoded("<p>one</p> | two", {"k": 1}, "text/html"), SPEC)
    assert isinstance(ready, ItemInput)
    assert [(p.part_id, p.text) for p in ready.parts] == [("0", "one"), ("1", "two")]
    assert ready.payload == {"k": 1} and ready.source == SPEC and ready.store_text


@pytest.mark.parametrize(
    ("text", "content_type", "stage", "why"),
    [
        ("", "text/plain", Stage.SPLIT, "empty"),
        ("  \n ", "text/plain", Stage.SPLIT, "empty"),
        ("<script>x()</script>", "text/html", Stage.PREPROCESS, "no text left"),
        ("a | b | c | d", "text/plain", Stage.SPLIT, "4 parts, more than 3"),
    ],
)
def test_failures_name_their_stage(text: str, content_type: str, stage: Stage, why: str) -> None:
    failed = PREPARER.ready("a", Decoded(text, {}, content_type), None)
    assert isinstance(failed, ItemFailure) and failed.stage == stage and why in failed.reason


def test_without_keeping_referenced_text_only_referenced_items_drop_it() -> None:
    preparer = Preparer(TextCleaner(()), str.split, Settings(keep_referenced_text=False))
    by_reference = preparer.ready("a", Decoded("x y", {}, "text/plain"), SPEC)
    inline = preparer.ready("b", Decoded("x y", {}, "text/plain"), None)
    assert isinstance(by_reference, ItemInput) and not by_reference.store_text
    assert isinstance(inline, ItemInput) and inline.store_text


async def test_inline_items_keep_their_order_and_failures_are_set_aside() -> None:
    items = [
        ItemInput("a", text="first"),
        ItemInput("b", text="   "),
        ItemInput("c", parts=[PartInput("p", text="  given as is  ")]),
    ]
    prepared = await PREPARER.items(items, None)
    assert [i.object_id for i in prepared.items] == ["a", "c"]
    assert prepared.items[1].parts[0].text == "  given as is  "  # parts are taken as given
    assert prepared.failures == [ItemFailure("b", Stage.SPLIT, "the text is empty")]


def test_an_import_page_keeps_the_last_record_of_a_repeated_id() -> None:
    records: list[Record | ItemFailure] = [
        Record("1", {"id": "1", "text": "old"}),
        ItemFailure("", Stage.PARSE, "line 2 of f.jsonl: not valid JSON"),
        Record("2", {"id": "2", "text": ""}),
        Record("1", {"id": "1", "text": "new"}),
    ]
    prepared = PREPARER.records(records, Fields())
    assert [(i.object_id, i.parts[0].text) for i in prepared.items] == [("1", "new")]
    assert [(f.object_id, f.stage) for f in prepared.failures] == [
        ("", Stage.PARSE),
        ("2", Stage.SPLIT),
    ]
