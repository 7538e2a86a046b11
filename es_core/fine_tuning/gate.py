"""The deploy gate: a trained model against the model in service, on the held-out queries,
each model ranking the collection.

Re-ranking only what the model in service showed cannot credit a candidate for a clicked item
it would bring up from below that list, and a fixed margin knows nothing of noise. Here the
model in service answers each held-out query from the collection as it serves it (its stored
vectors: nothing is encoded again), and the candidate ranks the whole collection (or, past
``fine_tuning_gate_max_items`` items, the in-service model's top
``fine_tuning_gate_pool_per_query`` for every held-out query plus what was shown and clicked:
a pool where both models' top 10s lie). The clicks are the judgements: an item nobody was shown
counts as not relevant for either model, and each click's gain is divided by the chance its
rank was looked at (``click_gains.debiased_gains``, ``ranking_fit_position_bias``: the same
users' position bias the ranking fit corrects for), or the order that showed the clicks would
win every comparison. The gain is judged by a paired bootstrap over the queries: the candidate
is deployable when the lower bound of its NDCG@10 gain is above ``fine_tuning_gate_margin``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from es_core.config import Settings
from es_core.encoders.base import Encoder
from es_core.evaluation.bootstrap import mean_interval, paired_difference
from es_core.evaluation.click_gains import dcg, debiased_gains, ndcg_of_clicks
from es_core.evaluation.metrics import per_query_metrics
from es_core.fine_tuning.evaluator import METRIC_NAMES, rank_pool
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.mining import collection_search, query_vectors
from es_core.plugins.protocol import DataLoader
from es_core.search.vector_search import ORIGINALS
from es_core.storage.catalog import Aggregation, Collection, Metric

K = 10
Scores = dict[str, list[float]]  # metric name -> one figure per held-out query


@dataclass(frozen=True)
class EvaluationPool:
    object_ids: list[str]
    item_parts: dict[str, list[str]]
    whole_collection: bool
    #: Each held-out query's top items as the model in service answers it, nearest first.
    in_service: list[list[str]]


@dataclass(frozen=True)
class Verdict:
    deployable: bool
    #: each model's mean and interval, and the gain's: "ndcg@10", "ndcg@10.low", ...,
    #: "in_service.ndcg@10", ..., "gain.ndcg@10", "gain.ndcg@10.low", "gain.ndcg@10.high"
    figures: dict[str, float]
    reason: str


async def evaluation_pool(
    conn: asyncpg.Connection,
    collection: Collection,
    examples: Sequence[Example],
    in_service: Encoder,
    loader: DataLoader,
    settings: Settings,
) -> EvaluationPool:
    """The items the candidate ranks for ``examples``, with their texts, and the in-service
    model's answers (its queries encoded by ``in_service``, the items as the collection holds
    them)."""
    depth = max(settings.fine_tuning_gate_pool_per_query, K)
    search = collection_search(conn, collection, settings)
    nearest = [await search(v, depth) for v in query_vectors(in_service, examples)]
    # One bounded read tells both whether the collection is small and, if so, what it holds.
    ids = [
        r["object_id"]
        for r in await conn.fetch(
            f"SELECT DISTINCT object_id FROM {collection.table} WHERE {ORIGINALS} LIMIT $1",
            settings.fine_tuning_gate_max_items + 1,
        )
    ]
    whole = len(ids) <= settings.fine_tuning_gate_max_items
    if not whole:
        wanted = dict.fromkeys(
            o
            for example, top in zip(examples, nearest, strict=True)
            for o in (*top, *example.shown, *example.positives)
        )
        ids = list(wanted)
    item_parts = await loader.load(conn, collection.table_name, ids)
    # An item without text is one no trained model can rank: neither model is judged on it.
    rankable = {o for o in ids if item_parts.get(o)}
    return EvaluationPool(
        sorted(rankable),
        item_parts,
        whole,
        [[o for o in top if o in rankable][:K] for top in nearest],
    )


def score_rankings(
    rankings: Sequence[Sequence[str]], examples: Sequence[Example], position_bias: float
) -> Scores:
    """Each held-out query's NDCG@10 (clicks' gains debiased for their rank), Recall@10 and
    MRR@10 of its ranking, its clicks judging."""
    keys = [str(i) for i in range(len(examples))]
    per_query = per_query_metrics(
        dict(zip(keys, rankings, strict=True)),
        {key: e.grades() for key, e in zip(keys, examples, strict=True)},
        K,
    )
    scores = {name: [values.get(key, 0.0) for key in keys] for name, values in per_query.items()}
    scores[f"ndcg@{K}"] = [
        ndcg_of_clicks(
            ranked,
            debiased_gains(example, position_bias),
            K,
            ideal=dcg(sorted(example.positives.values(), reverse=True), K),
        )
        for ranked, example in zip(rankings, examples, strict=True)
    ]
    return scores


def score_queries(
    encoder: Encoder,
    examples: Sequence[Example],
    pool: EvaluationPool,
    *,
    metric: Metric,
    aggregation: Aggregation,
    position_bias: float,
) -> Scores:
    """``score_rankings`` of ``encoder``'s top 10 of the pool for each held-out query."""
    rankings = rank_pool(
        encoder,
        [e.query for e in examples],
        pool.object_ids,
        pool.item_parts,
        metric=metric,
        aggregation=aggregation,
        k=K,
    )
    return score_rankings(rankings, examples, position_bias)


def in_service_scores(
    examples: Sequence[Example], pool: EvaluationPool, position_bias: float
) -> Scores:
    """``score_rankings`` of the in-service model's answers."""
    return score_rankings(pool.in_service, examples, position_bias)


def summary(scores: Scores, confidence: float, seed: int, prefix: str = "") -> dict[str, float]:
    """Mean and bootstrap interval of each metric: "ndcg@10", "ndcg@10.low", "ndcg@10.high"."""
    figures: dict[str, float] = {}
    for name in METRIC_NAMES:
        interval = mean_interval(scores.get(name, []), confidence=confidence, seed=seed)
        figures[f"{prefix}{name}"] = interval.mean
        figures[f"{prefix}{name}.low"] = interval.low
        figures[f"{prefix}{name}.high"] = interval.high
    return figures


def judge(
    candidate: Scores,
    in_service: Scores,
    *,
    margin: float,
    confidence: float,
    seed: int,
) -> Verdict:
    """Deployable when the lower bound of the paired NDCG@10 gain is above ``margin``."""
    figures = {
        **summary(candidate, confidence, seed),
        **summary(in_service, confidence, seed, prefix="in_service."),
    }
    for name in METRIC_NAMES:
        gain = paired_difference(
            candidate.get(name, []), in_service.get(name, []), confidence=confidence, seed=seed
        )
        figures[f"gain.{name}"] = gain.mean
        figures[f"gain.{name}.low"] = gain.low
        figures[f"gain.{name}.high"] = gain.high
    low = figures["gain.ndcg@10.low"]
    deployable = not math.isnan(low) and low > margin
    n = len(candidate.get("ndcg@10", []))
    reason = (
        f"NDCG@10 (clicks debiased for rank) gain {figures['gain.ndcg@10']:+.4f} on {n}"
        f" held-out queries, {confidence:.0%}"
        f" interval [{low:+.4f}, {figures['gain.ndcg@10.high']:+.4f}]: its lower bound is"
        f" {'above' if deployable else 'not above'} {margin} (ES_FINE_TUNING_GATE_MARGIN)"
    )
    return Verdict(deployable, figures, reason)
