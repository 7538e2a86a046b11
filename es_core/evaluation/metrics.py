"""Ranking metrics over graded relevance judgements (qrels): NDCG@k, Recall@k, MRR@k.

A grade above 0 means relevant; grades of 0 or below (and unjudged documents) count as not
relevant. A document repeated in a ranking earns its gain only at its first position.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def _grades(ranked: Sequence[str], relevance: Mapping[str, int], k: int) -> list[int]:
    """The grade at each of the first k positions; 0 for unjudged or already-seen documents."""
    _check_k(k)
    seen: set[str] = set()
    grades: list[int] = []
    for doc_id in ranked[:k]:
        grades.append(0 if doc_id in seen else max(relevance.get(doc_id, 0), 0))
        seen.add(doc_id)
    return grades


def _dcg(grades: Sequence[int]) -> float:
    return sum((2.0**g - 1.0) / math.log2(i + 2) for i, g in enumerate(grades) if g > 0)


def ndcg_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """DCG of the top k (gain 2^grade - 1, discount log2(position + 2) for 0-based positions)
    divided by the DCG of the ideal top k built from the judgements; 0 when nothing is relevant."""
    ideal = _dcg(sorted((g for g in relevance.values() if g > 0), reverse=True)[:k])
    if ideal == 0:
        _check_k(k)
        return 0.0
    return _dcg(_grades(ranked, relevance, k)) / ideal


def recall_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """Share of the relevant documents found in the top k; 0 when nothing is relevant."""
    relevant = sum(1 for g in relevance.values() if g > 0)
    found = sum(1 for g in _grades(ranked, relevance, k) if g > 0)
    return found / relevant if relevant else 0.0


def mrr_at_k(ranked: Sequence[str], relevance: Mapping[str, int], k: int = 10) -> float:
    """1 / (1-based position of the first relevant document in the top k); 0 when there is none."""
    for i, g in enumerate(_grades(ranked, relevance, k)):
        if g > 0:
            return 1.0 / (i + 1)
    return 0.0


def per_query_metrics(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int = 10,
) -> dict[str, dict[str, float]]:
    """NDCG@k, Recall@k and MRR@k of each ranked query that has judgements, keyed like
    ``evaluate_rankings``'s means (a judged query whose judgements are all 0 counts as 0)."""
    _check_k(k)
    out: dict[str, dict[str, float]] = {f"ndcg@{k}": {}, f"recall@{k}": {}, f"mrr@{k}": {}}
    for query_id, ranked in rankings.items():
        relevance = qrels.get(query_id)
        if not relevance:
            continue
        out[f"ndcg@{k}"][query_id] = ndcg_at_k(ranked, relevance, k)
        out[f"recall@{k}"][query_id] = recall_at_k(ranked, relevance, k)
        out[f"mrr@{k}"][query_id] = mrr_at_k(ranked, relevance, k)
    return out


def evaluate_rankings(
    rankings: Mapping[str, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int = 10,
) -> dict[str, float]:
    """Mean NDCG@k, Recall@k and MRR@k over the ranked queries, keyed "ndcg@k", "recall@k", "mrr@k".

    Queries without judgements (absent from ``qrels`` or with an empty mapping) are skipped, and so
    are judged queries absent from ``rankings``; a judged query whose judgements are all 0 counts
    as 0. With no query left to evaluate, every mean is 0.0.
    """
    per_query = per_query_metrics(rankings, qrels, k)
    return {
        name: sum(values.values()) / len(values) if values else 0.0
        for name, values in per_query.items()
    }
