"""check_items and friends: every rule refuses with the path of the offending field."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.errors import InvalidArgument
from es_core.item_input import (
    ItemInput,
    PartInput,
    check_items,
    check_object_ids,
    check_payload,
)

SETTINGS = Settings(
    data_dir=Path("/nonexistent"),
    max_items_per_request=5,
    max_payload_bytes=200,
    max_parts_per_item=3,
    max_text_chars=50,
    max_object_id_chars=10,
)


def _collection(metric: str = "cosine", dims: int = 3) -> Collection:
    model = Model(
        model_id="m",
        name="m",
        version="1",
        dimensions=dims,
        metric=metric,  # type: ignore[arg-type]
        aggregation="min",
        source="test:none",
    )
    return Collection(
        collection_id="c",
        model=model,
        table_name="items_c",
        state="green",
        hnsw_m=16,
        hnsw_ef_construction=64,
    )


COSINE = _collection()


def _refused(items: list[ItemInput], collection: Collection = COSINE) -> tuple[str, str]:
    with pytest.raises(InvalidArgument) as info:
        check_items(items, collection, SETTINGS)
    assert len(info.value.violations) == 1
    v = info.value.violations[0]
    assert info.value.message.startswith(v.field + ": ")
    return v.field, v.description


def _text(object_id: str = "a", text: str = "hello", **kw: object) -> ItemInput:
    return ItemInput(object_id=object_id, text=text, **kw)  # type: ignore[arg-type]


def _vec_item(object_id: str, *parts: PartInput, payload: dict | None = None) -> ItemInput:
    return ItemInput(object_id=object_id, payload=payload or {}, parts=list(parts))


def test_valid_items_pass() -> None:
    items = [
        _text("a", "some text", payload={"k": [1, "x", None, {"y": True}]}),
        _vec_item("b", PartInput("p1", vector=[0.0, 1.0, 0.0]), PartInput("p2", text="words")),
        _vec_item("c", PartInput("x" * 128, vector=[1.0, 2.0, 3.0])),
    ]
    check_items(items, COSINE, SETTINGS)


def test_no_items() -> None:
    assert _refused([]) == ("items", "must hold at least one item")


def test_too_many_items() -> None:
    field, description = _refused([_text(str(i)) for i in range(6)])
    assert field == "items" and "at most 5" in description


@pytest.mark.parametrize(
    ("object_id", "why"),
    [("", "must not be empty"), ("x" * 11, "at most 10"), ("a\x00b", "NUL")],
)
def test_bad_object_id(object_id: str, why: str) -> None:
    field, description = _refused([_text("ok"), _text(object_id)])
    assert field == "items[1].object_id"
    assert why in description


def test_object_id_at_the_limit_is_fine() -> None:
    check_items([_text("x" * 10)], COSINE, SETTINGS)


def test_repeated_object_id_names_the_first() -> None:
    field, description = _refused([_text("a"), _text("b"), _text("a")])
    assert field == "items[2].object_id"
    assert "items[0].object_id" in description


def test_payload_too_large() -> None:
    field, description = _refused([_text("a", payload={"k": "x" * 300})])
    assert (field, "200 bytes" in description) == ("items[0].payload", True)


def test_payload_size_counts_utf8_bytes() -> None:
    # 100 characters of 2 bytes each: 200+ bytes as JSON although fewer characters.
    field, _ = _refused([_text("a", payload={"k": "é" * 100})])
    assert field == "items[0].payload"


def test_payload_with_nul() -> None:
    field, description = _refused([_text("a", payload={"k": "a\x00b"})])
    assert field == "items[0].payload" and "NUL" in description
    field, _ = _refused([_text("a", payload={"a\x00": 1})])
    assert field == "items[0].payload"


def test_payload_with_literal_backslash_u0000_text_is_accepted() -> None:
    check_payload({"path": "C:\\u0000dir"}, "payload", SETTINGS)


@pytest.mark.parametrize(
    "item",
    [
        ItemInput(object_id="a"),  # neither
        ItemInput(object_id="a", text="t", parts=[PartInput("p", text="x")]),  # both
    ],
)
def test_exactly_one_of_text_or_parts(item: ItemInput) -> None:
    assert _refused([item]) == ("items[0]", "must have exactly one of text, parts or source")


@pytest.mark.parametrize(
    ("text", "why"),
    [("x" * 51, "at most 50"), ("a\x00b", "NUL")],
)
def test_bad_item_text(text: str, why: str) -> None:
    field, description = _refused([_text("a", text)])
    assert field == "items[0].text"
    assert why in description


@pytest.mark.parametrize("text", ["", "  \n\t"])
def test_a_blank_text_is_let_through_to_fail_alone(text: str) -> None:
    """An empty document fails that item at the split stage, not the whole request."""
    check_items([_text("a", text), _text("b")], COSINE, SETTINGS)


def test_too_many_parts() -> None:
    parts = [PartInput(f"p{i}", text="x") for i in range(4)]
    field, description = _refused([_vec_item("a", *parts)])
    assert field == "items[0].parts" and "at most 3" in description


@pytest.mark.parametrize("part_id", ["", "x" * 129, "a\x00"])
def test_bad_part_id(part_id: str) -> None:
    item = _vec_item("a", PartInput("ok", text="x"), PartInput(part_id, text="y"))
    field, _ = _refused([_text("z"), item])
    assert field == "items[1].parts[1].part_id"


def test_repeated_part_id() -> None:
    item = _vec_item("a", PartInput("p", text="x"), PartInput("p", text="y"))
    field, description = _refused([item])
    assert field == "items[0].parts[1].part_id" and "repeats" in description


def test_part_needs_a_text_or_a_vector() -> None:
    assert _refused([_vec_item("a", PartInput("p"))]) == (
        "items[0].parts[0]",
        "must have a text, a vector or both",
    )


def test_part_may_carry_both_a_text_and_its_vector() -> None:
    both = PartInput("p", text="x", vector=[1.0, 0.0, 0.0])
    check_items([_vec_item("a", both)], COSINE, SETTINGS)
    bad_vector = PartInput("p", text="x", vector=[1.0, 0.0])
    field, _ = _refused([_vec_item("a", bad_vector)])
    assert field == "items[0].parts[0].vector"


@pytest.mark.parametrize(("text", "why"), [(" ", "blank"), ("y" * 51, "at most 50")])
def test_bad_part_text(text: str, why: str) -> None:
    field, description = _refused([_vec_item("a", PartInput("p", text=text))])
    assert field == "items[0].parts[0].text" and why in description


@pytest.mark.parametrize(
    ("vector", "why"),
    [
        ([1.0, 2.0], "must have 3 values"),
        ([1.0, 2.0, 3.0, 4.0], "not 4"),
        ([], "not 0"),
        ([1.0, math.nan, 0.0], "finite"),
        ([1.0, math.inf, 0.0], "finite"),
        ([0.0, 0.0, 0.0], "all zeros"),
    ],
)
def test_bad_vector(vector: list[float], why: str) -> None:
    item = _vec_item("a", PartInput("p0", vector=[1.0, 1.0, 1.0]), PartInput("p1", vector=vector))
    field, description = _refused([item])
    assert field == "items[0].parts[1].vector"
    assert why in description


@pytest.mark.parametrize("metric", ["dot", "euclidean"])
def test_zero_vector_is_fine_outside_cosine(metric: str) -> None:
    item = _vec_item("a", PartInput("p", vector=[0.0, 0.0, 0.0]))
    check_items([item], _collection(metric), SETTINGS)


def test_first_offending_item_is_named() -> None:
    items = [_text("a"), _text("b", "a\x00b"), _text("")]
    assert _refused(items)[0] == "items[1].text"


def test_check_object_ids() -> None:
    assert check_object_ids(["a", "b", "a"], "object_ids", SETTINGS) == ["a", "b"]
    with pytest.raises(InvalidArgument) as info:
        check_object_ids([], "object_ids", SETTINGS)
    assert info.value.violations[0].field == "object_ids"
    with pytest.raises(InvalidArgument) as info:
        check_object_ids(["a", ""], "object_ids", SETTINGS)
    assert info.value.violations[0].field == "object_ids[1]"
    with pytest.raises(InvalidArgument) as info:
        check_object_ids([str(i) for i in range(6)], "object_ids", SETTINGS)
    assert info.value.violations[0].field == "object_ids"
