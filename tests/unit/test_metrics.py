"""Ranking metrics against values computed by hand."""

from __future__ import annotations

import math

import pytest

from es_core.evaluation.metrics import evaluate_rankings, mrr_at_k, ndcg_at_k, recall_at_k

# "x" is unjudged; "a" (grade 2) is at 0-based position 1, "b" (grade 1) at 2; "c" is not shown.
RANKED = ["x", "a", "b"]
RELEVANCE = {"a": 2, "b": 1, "c": 1, "z": 0}
LOG2_3 = math.log2(3)


def test_ndcg_by_hand() -> None:
    dcg = 3 / LOG2_3 + 1 / 2  # gains 2^2-1 and 2^1-1 at positions 1 and 2 (0-based)
    ideal = 3 / 1 + 1 / LOG2_3 + 1 / 2  # grades 2, 1, 1
    assert dcg / ideal == pytest.approx(0.5792375, abs=1e-6)
    assert ndcg_at_k(RANKED, RELEVANCE, k=3) == pytest.approx(dcg / ideal)
    assert ndcg_at_k(RANKED, RELEVANCE) == pytest.approx(dcg / ideal)  # k=10: same top 3
    # k=2: only "a" counts; the ideal is cut at 2 too.
    assert ndcg_at_k(RANKED, RELEVANCE, k=2) == pytest.approx((3 / LOG2_3) / (3 + 1 / LOG2_3))
    assert ndcg_at_k(RANKED, RELEVANCE, k=1) == 0.0
    assert ndcg_at_k(["a", "b", "c"], RELEVANCE) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "c", "b"], RELEVANCE) == pytest.approx(1.0)  # ties in grade


def test_recall_and_mrr_by_hand() -> None:
    assert recall_at_k(RANKED, RELEVANCE, k=3) == pytest.approx(2 / 3)
    assert recall_at_k(RANKED, RELEVANCE, k=2) == pytest.approx(1 / 3)
    assert recall_at_k(RANKED, RELEVANCE, k=1) == 0.0
    assert mrr_at_k(RANKED, RELEVANCE, k=3) == pytest.approx(1 / 2)
    assert mrr_at_k(RANKED, RELEVANCE, k=1) == 0.0
    assert mrr_at_k(["b", "a"], RELEVANCE) == 1.0


def test_nothing_relevant_gives_zero() -> None:
    for metric in (ndcg_at_k, recall_at_k, mrr_at_k):
        assert metric(["a", "b"], {"a": 0, "b": 0}) == 0.0
        assert metric(["a", "b"], {}) == 0.0
        assert metric([], RELEVANCE) == 0.0


def test_a_repeated_document_counts_once() -> None:
    relevance = {"a": 1, "b": 1}
    assert recall_at_k(["a", "a"], relevance) == pytest.approx(1 / 2)
    assert ndcg_at_k(["a", "a"], relevance) == pytest.approx(1 / (1 + 1 / LOG2_3))
    assert ndcg_at_k(["a", "a", "a"], {"a": 2}) == pytest.approx(1.0)


def test_negative_grades_count_as_not_relevant() -> None:
    assert ndcg_at_k(["n", "a"], {"n": -1, "a": 1}) == pytest.approx(1 / LOG2_3)
    assert mrr_at_k(["n", "a"], {"n": -1, "a": 1}) == pytest.approx(1 / 2)


@pytest.mark.parametrize("k", [0, -1])
def test_k_must_be_positive(k: int) -> None:
    for metric in (ndcg_at_k, recall_at_k, mrr_at_k):
        with pytest.raises(ValueError):
            metric(RANKED, RELEVANCE, k)
    with pytest.raises(ValueError):
        evaluate_rankings({}, {}, k)


def test_evaluate_rankings_means_over_judged_queries() -> None:
    rankings = {"q1": RANKED, "q2": ["a", "x"], "unjudged": ["a"], "empty": ["a"]}
    qrels = {"q1": RELEVANCE, "q2": {"a": 1}, "empty": {}, "not_ranked": {"a": 1}}
    scores = evaluate_rankings(rankings, qrels)
    assert scores == pytest.approx(
        {"ndcg@10": (0.5792375 + 1) / 2, "recall@10": (2 / 3 + 1) / 2, "mrr@10": (1 / 2 + 1) / 2},
        abs=1e-6,
    )
    assert set(evaluate_rankings(rankings, qrels, k=2)) == {"ndcg@2", "recall@2", "mrr@2"}
    assert evaluate_rankings(rankings, qrels, k=1) == {"ndcg@1": 0.5, "recall@1": 0.5, "mrr@1": 0.5}


def test_evaluate_rankings_counts_all_zero_judgements_as_zero() -> None:
    scores = evaluate_rankings({"q": ["a"], "z": ["a"]}, {"q": {"a": 1}, "z": {"a": 0}})
    assert scores == {"ndcg@10": 0.5, "recall@10": 0.5, "mrr@10": 0.5}


def test_evaluate_rankings_without_judged_queries_is_zero() -> None:
    assert evaluate_rankings({"q": ["a"]}, {}) == {"ndcg@10": 0.0, "recall@10": 0.0, "mrr@10": 0.0}
