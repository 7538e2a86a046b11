"""Hard negatives mined over a tiny collection of known geometry: nearest first, never a click."""

from __future__ import annotations

import numpy as np

from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.mining import QueryVector, mine_negatives, with_mined
from es_core.fine_tuning.trainer import training_rows

# Items on a line: the nearer to the query's x, the nearer the item.
ITEMS = {"a": 0.0, "b": 1.0, "c": 2.0, "d": 3.0, "e": 4.0}


async def line_search(vector: QueryVector, limit: int) -> list[str]:
    return sorted(ITEMS, key=lambda o: abs(ITEMS[o] - float(vector[0])))[:limit]


def at(x: float) -> QueryVector:
    return np.array([x], dtype=np.float32)


async def test_mined_negatives_are_the_nearest_items_never_clicked_for_the_query() -> None:
    examples = [
        Example("near b", {"b": 1.0, "c": 2.0}, negatives=("a",), shown=("a", "b")),
        Example("near e", {"e": 1.0}),
    ]
    mined = await mine_negatives(examples, [at(1.2), at(4.0)], line_search, depth=2)
    assert [e.mined for e in mined] == [("a", "d"), ("d", "c")]
    # Everything else about the examples is kept.
    assert [(e.query, e.positives, e.negatives) for e in mined] == [
        (e.query, e.positives, e.negatives) for e in examples
    ]


async def test_depth_zero_mines_nothing() -> None:
    examples = [Example("q", {"a": 1.0})]
    assert await mine_negatives(examples, [at(0.0)], line_search, depth=0) == examples


def test_a_search_returning_only_clicks_mines_nothing_and_duplicates_count_once() -> None:
    example = Example("q", {"a": 1.0, "b": 1.0})
    assert with_mined(example, ["a", "b", "a"], depth=3).mined == ()
    assert with_mined(example, ["c", "c", "a", "d"], depth=3).mined == ("c", "d")


def test_training_rows_use_mined_negatives_after_the_shown_ones() -> None:
    parts = {o: [f"text {o}"] for o in ITEMS}
    example = Example("q", {"a": 1.0}, negatives=("b",), mined=("b", "c", "d", "e"))
    rows = training_rows([example], parts)
    assert rows["negative"] == ["text b", "text c", "text d"]  # up to 3 rows per click
    assert set(rows["positive"]) == {"text a"}
