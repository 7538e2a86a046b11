"""The deploy gate: bootstrap intervals, per-query scores over the whole pool, the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest

from es_core.evaluation.bootstrap import mean_interval, paired_difference
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.gate import (
    JUDGED,
    EvaluationPool,
    in_service_scores,
    judge,
    score_queries,
    score_rankings,
    summary,
)
from tests.unit.test_fine_tuning_evaluator import PARTS, TABLE, TableEncoder

# --- bootstrap -------------------------------------------------------------------------------


def test_the_interval_holds_the_mean_and_narrows_with_more_queries() -> None:
    rng = np.random.default_rng(1)
    few = mean_interval(list(rng.random(20)))
    many = mean_interval(list(rng.random(2000)))
    for interval in (few, many):
        assert interval.low < interval.mean < interval.high
    assert many.high - many.low < (few.high - few.low) / 4
    assert many.contains(0.5)
    assert mean_interval([0.3] * 10) == mean_interval([0.3] * 10)  # seeded: the same twice
    assert mean_interval([0.3] * 10).low == pytest.approx(0.3)


def test_an_empty_sample_has_no_interval_and_a_bad_confidence_is_refused() -> None:
    empty = mean_interval([])
    assert math.isnan(empty.mean) and math.isnan(empty.low) and math.isnan(empty.high)
    with pytest.raises(ValueError, match="confidence"):
        mean_interval([1.0], confidence=1.0)
    with pytest.raises(ValueError, match="length"):
        paired_difference([1.0, 2.0], [1.0])


def test_pairing_cancels_what_both_models_share() -> None:
    """Queries differ wildly in difficulty; the candidate is better by 0.02 on every one. Paired,
    the gain is certain; unpaired intervals of the two means would overlap."""
    rng = np.random.default_rng(2)
    baseline = list(rng.random(50))
    candidate = [b + 0.02 for b in baseline]
    gain = paired_difference(candidate, baseline)
    assert gain.low == pytest.approx(0.02) and gain.high == pytest.approx(0.02)
    assert mean_interval(candidate).low < mean_interval(baseline).high


# --- scores over the whole pool --------------------------------------------------------------


def test_each_query_ranks_the_whole_pool_so_an_item_never_shown_counts() -> None:
    """q2's sessions were shown a and b and clicked b. Over the whole pool c (closest to q2, shown
    to nobody for it) takes rank 1 and a rank 2, so b is third; re-ranking only the shown list
    would have put b second."""
    examples = [
        Example("q1", {"a": 1.0}, shown=("a", "c")),
        Example("q2", {"b": 1.0}, shown=("a", "b")),
    ]
    pool = EvaluationPool(["a", "b", "c"], PARTS, whole_collection=True, in_service=[])
    scores = score_queries(
        TableEncoder(TABLE), examples, pool, metric="cosine", aggregation="min", position_bias=0.0
    )
    assert scores["mrr@10"] == pytest.approx([1.0, 1 / 3])
    assert scores["recall@10"] == pytest.approx([1.0, 1.0])
    assert scores["ndcg@10"] == pytest.approx([1.0, 1 / math.log2(4)])


def test_a_click_counts_by_the_chance_its_rank_was_looked_at() -> None:
    """The sessions showed a, b, c, d and d (rank 3) was clicked. Users look at rank 3 far less
    often than at rank 0, so under a position bias of 1 the click is worth 4 times its weight:
    the order that showed it loses more for having put d last, and a candidate that puts d
    first gains more; with no bias the clicks count as they are."""
    example = Example("q", {"d": 1.0}, shown=("a", "b", "c", "d"))
    pool = EvaluationPool(
        ["a", "b", "c", "d"], {}, whole_collection=True, in_service=[["a", "b", "c", "d"]]
    )
    plain = in_service_scores([example], pool, position_bias=0.0)
    debiased = in_service_scores([example], pool, position_bias=1.0)
    assert plain["ndcg@10"] == pytest.approx([1 / math.log2(5)])
    assert debiased["ndcg@10"] == pytest.approx([4 / math.log2(5)])
    assert debiased["recall@10"] == plain["recall@10"] == [1.0]
    assert debiased["mrr@10"] == plain["mrr@10"] == [0.25]
    assert debiased[JUDGED] == debiased["ndcg@10"]  # it showed all it judged, in its order
    first = score_rankings([["d", "a"]], [["d", "a", "b", "c"]], [example], position_bias=1.0)
    assert first["ndcg@10"] == pytest.approx([4.0]) and first[JUDGED] == pytest.approx([4.0])
    assert first["ndcg@10"][0] - debiased["ndcg@10"][0] > 1.0 - plain["ndcg@10"][0]


def test_what_nobody_was_shown_neither_helps_nor_hurts_the_deciding_metric() -> None:
    """Sessions of q2 were shown a then b and clicked b. The candidate ranks c (shown to nobody
    for q2, so unjudged) first, then b, then a: over the collection c counts as not relevant and
    pushes b down, but the judged order is b before a, better than the order that was shown."""
    example = Example("q2", {"b": 1.0}, shown=("a", "b"))
    pool = EvaluationPool(["a", "b", "c"], PARTS, whole_collection=True, in_service=[["a", "b"]])
    moved = {**TABLE, "c0": [0.0, 1.0], "b0": [0.6, 0.8], "a0": [1.0, 0.0], "a1": [1.0, 0.1]}
    candidate = score_queries(
        TableEncoder(moved), [example], pool, metric="cosine", aggregation="min", position_bias=0.0
    )
    in_service = in_service_scores([example], pool, position_bias=0.0)
    assert candidate["mrr@10"] == [0.5]  # c first over the collection
    assert candidate[JUDGED] == [1.0]  # b first among what was judged
    assert in_service[JUDGED] == pytest.approx([1 / math.log2(3)])


def test_judged_items_past_the_in_service_answer_follow_in_the_order_shown() -> None:
    """A user's personal copies showed d and e, which the model in service does not return among
    its nearest for everyone: they follow its answer, in the order they were shown. "gone" was
    shown too but has no text now: no model can rank it, so neither is judged on it."""
    example = Example("q", {"e": 1.0}, shown=("d", "gone", "a", "e"))
    pool = EvaluationPool(["a", "b", "d", "e"], {}, whole_collection=True, in_service=[["b", "a"]])
    scores = in_service_scores([example], pool, position_bias=0.0)
    assert scores[JUDGED] == pytest.approx([1 / math.log2(4)])  # a, d, e: e third, no "gone"
    assert scores["recall@10"] == [0.0]


def test_a_candidate_that_finds_a_clicked_item_from_below_is_credited() -> None:
    examples = [Example("q2", {"b": 1.0}, shown=("a", "b"))]
    pool = EvaluationPool(["a", "b", "c"], PARTS, whole_collection=True, in_service=[])
    in_service = score_queries(
        TableEncoder(TABLE), examples, pool, metric="cosine", aggregation="min", position_bias=0.0
    )
    moved = {**TABLE, "a0": [1.0, 0.0], "b0": [0.0, 1.0], "c0": [1.0, 0.0]}  # b first for q2
    candidate = score_queries(
        TableEncoder(moved), examples, pool, metric="cosine", aggregation="min", position_bias=0.0
    )
    assert candidate["ndcg@10"] == [1.0]
    assert in_service["ndcg@10"][0] < 1.0


# --- the verdict -------------------------------------------------------------------------------


def _scores(ndcg: list[float]) -> dict[str, list[float]]:
    return {"ndcg@10": ndcg, "recall@10": ndcg, "mrr@10": ndcg, JUDGED: ndcg}


def test_the_lower_bound_of_the_gain_decides() -> None:
    baseline = [0.2, 0.5, 0.8, 0.4, 0.6, 0.3, 0.7, 0.5] * 5
    clear = [b + 0.1 for b in baseline]
    verdict = judge(_scores(clear), _scores(baseline), margin=0.0, confidence=0.95, seed=0)
    assert verdict.deployable
    assert verdict.figures["gain.judged.ndcg@10"] == pytest.approx(0.1)
    assert verdict.figures["gain.judged.ndcg@10.low"] > 0
    assert verdict.figures["in_service.judged.ndcg@10"] == pytest.approx(np.mean(baseline))
    assert "above" in verdict.reason and "ES_FINE_TUNING_GATE_MARGIN" in verdict.reason
    # A margin above the whole interval refuses it.
    assert not judge(
        _scores(clear), _scores(baseline), margin=0.2, confidence=0.95, seed=0
    ).deployable

    # Better on average, but only through one lucky query: the interval reaches below 0.
    lucky = list(baseline)
    lucky[0] += 0.9
    lucky[1:4] = [b - 0.02 for b in baseline[1:4]]
    noisy = judge(_scores(lucky), _scores(baseline), margin=0.0, confidence=0.95, seed=0)
    assert noisy.figures["gain.judged.ndcg@10"] > 0
    assert noisy.figures["gain.judged.ndcg@10.low"] <= 0
    assert not noisy.deployable and "not above" in noisy.reason


def test_a_worse_or_an_unmeasured_model_is_never_deployable() -> None:
    baseline = [0.5, 0.6, 0.7, 0.4] * 10
    worse = [b - 0.3 for b in baseline]
    assert not judge(
        _scores(worse), _scores(baseline), margin=0.0, confidence=0.95, seed=0
    ).deployable
    same = judge(_scores(baseline), _scores(baseline), margin=0.0, confidence=0.95, seed=0)
    assert not same.deployable and same.figures["gain.judged.ndcg@10.low"] == 0.0
    empty = judge(_scores([]), _scores([]), margin=0.0, confidence=0.95, seed=0)
    assert not empty.deployable and math.isnan(empty.figures["gain.judged.ndcg@10"])


def test_summary_gives_each_metric_its_interval() -> None:
    figures = summary(_scores([0.0, 1.0] * 20), 0.9, seed=0)
    assert set(figures) == {
        f"{name}{suffix}"
        for name in ("ndcg@10", "recall@10", "mrr@10", "judged.ndcg@10")
        for suffix in ("", ".low", ".high")
    }
    assert figures["ndcg@10.low"] < figures["ndcg@10"] == 0.5 < figures["ndcg@10.high"]
