"""Ranking by item distance, and training rows, around a hand-made encoder of known geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from es_core.encoders.base import Vectors
from es_core.fine_tuning.evaluator import closest, item_distances, part_distances
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.trainer import training_rows


class TableEncoder:
    """Looks each text up in a fixed table of 2-d vectors (a test double of the encoder seam)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    @property
    def dimensions(self) -> int:
        return 2

    def encode_queries(self, texts: list[str]) -> Vectors:
        return np.array([self.table[t] for t in texts], dtype=np.float32)

    def encode_items(self, texts: list[str]) -> Vectors:
        return self.encode_queries(texts)


PARTS = {"a": ["a0", "a1"], "b": ["b0"], "c": ["c0"], "gone": []}
TABLE = {
    "q1": [1.0, 0.0],
    "q2": [0.0, 1.0],
    "a0": [0.0, 1.0],  # a is close to q1 only through its second part
    "a1": [1.0, 0.1],
    "b0": [0.7, 0.7],
    "c0": [0.1, 1.0],
}


def rank_pool(
    encoder: TableEncoder,
    queries: list[str],
    pool: list[str],
    parts: dict[str, list[str]],
    *,
    metric: str,
    aggregation: str,
) -> list[list[str]]:
    """Each query's pool ranked closest first, as the deploy gate ranks it."""
    rows = item_distances(encoder, queries, pool, parts, metric=metric, aggregation=aggregation)  # type: ignore[arg-type]
    return [closest(row, pool, len(pool)) for row in rows]


def test_min_aggregation_takes_the_best_part_and_avg_the_mean() -> None:
    enc = TableEncoder(TABLE)
    pool = ["a", "b", "c"]
    [by_min] = rank_pool(enc, ["q1"], pool, PARTS, metric="cosine", aggregation="min")
    assert by_min == ["a", "b", "c"]
    [by_avg] = rank_pool(enc, ["q1"], pool, PARTS, metric="cosine", aggregation="avg")
    assert by_avg == ["b", "a", "c"]


def test_nan_vectors_rank_last_instead_of_breaking_the_ranking() -> None:
    table = {**TABLE, "b0": [float("nan"), float("nan")]}
    [ranked] = rank_pool(
        TableEncoder(table), ["q2"], ["b", "c", "a"], PARTS, metric="cosine", aggregation="min"
    )
    assert ranked[-1] == "b"


@pytest.mark.parametrize("metric", ["cosine", "dot", "euclidean"])
def test_distances_match_pgvector_operators(metric: str) -> None:
    q = np.array([[3.0, 4.0]], dtype=np.float32)
    p = np.array([[3.0, 4.0], [-4.0, 3.0]], dtype=np.float32)
    got = part_distances(q, p, metric)  # type: ignore[arg-type]
    expected = {
        "cosine": [0.0, 1.0],
        "dot": [-25.0, 0.0],
        "euclidean": [0.0, math.sqrt(50.0)],
    }[metric]
    assert got[0] == pytest.approx(expected, abs=1e-6)


def test_training_rows_use_hard_negatives_and_weights() -> None:
    parts = {"a": ["A"], "b": ["B"], "c": ["C"], "d": ["D"]}
    examples = [
        Example("q1", {"a": 3.0}, negatives=("b",)),  # weight 3: three rows
        Example("q2", {"c": 1.0}, negatives=("a", "b", "d")),  # one row per hard negative
        Example("q3", {"missing": 1.0}),  # no text: no row
    ]
    rows = training_rows(examples, parts)
    assert list(zip(rows["anchor"], rows["positive"], rows["negative"], strict=True)) == [
        ("q1", "A", "B"),
        ("q1", "A", "B"),
        ("q1", "A", "B"),
        ("q2", "C", "A"),
        ("q2", "C", "B"),
        ("q2", "C", "D"),
    ]


def test_training_rows_without_hard_negatives_draw_a_non_positive_item() -> None:
    parts = {"a": ["A"], "b": ["B"], "c": ["C"]}
    rows = training_rows([Example("q", {"a": 1.0, "b": 1.0})], parts, seed=1)
    assert rows["negative"] == ["C", "C"]
