"""The deploy gate: a trained model against the model in service, on the held-out queries,
each model ranking the whole collection.

Re-ranking only what the model in service showed cannot credit a candidate for a clicked item
it would bring up from below that list, and a fixed margin knows nothing of noise. Here both
models rank the same pool, the whole collection (or, past ``fine_tuning_gate_max_items``
items, the in-service model's top ``fine_tuning_gate_pool_per_query`` for every held-out
query plus what was shown and clicked: a pool where both models' top 10s lie), and the gain
is judged by a paired bootstrap over the queries: the candidate is deployable when the lower
bound of its NDCG@10 gain is above ``fine_tuning_gate_margin`` (0 by default). The clicks are
the judgements, so an item nobody was shown counts as not relevant for either model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from es_core.config import Settings
from es_core.encoders.base import Encoder
from es_core.evaluation.bootstrap import mean_interval, paired_difference
from es_core.evaluation.metrics import per_query_metrics
from es_core.fine_tuning.evaluator import METRIC_NAMES, rank_pool
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.mining import collection_search, query_vectors
from es_core.plugins.protocol import DataLoader
from es_core.search.vector_search import ORIGINALS
from es_core.storage.catalog import Aggregation, Collection, Metric

Scores = dict[str, list[float]]  # metric name -> one figure per held-out query


@dataclass(frozen=True)
class EvaluationPool:
    object_ids: list[str]
    item_parts: dict[str, list[str]]
    whole_collection: bool


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
    """The items both models rank for ``examples``, with their texts."""
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
        wanted: dict[str, None] = {}
        search = collection_search(conn, collection, settings)
        vectors = query_vectors(in_service, examples)
        for example, vector in zip(examples, vectors, strict=True):
            nearest = await search(vector, settings.fine_tuning_gate_pool_per_query)
            for object_id in (*nearest, *example.shown, *example.positives):
                wanted[object_id] = None
        ids = list(wanted)
    item_parts = await loader.load(conn, collection.table_name, ids)
    return EvaluationPool(sorted(o for o in ids if item_parts.get(o)), item_parts, whole)


def score_queries(
    encoder: Encoder,
    examples: Sequence[Example],
    pool: EvaluationPool,
    *,
    metric: Metric,
    aggregation: Aggregation,
    k: int = 10,
) -> Scores:
    """Each held-out query's NDCG@k, Recall@k and MRR@k over the pool, its clicks judging."""
    rankings = rank_pool(
        encoder,
        [e.query for e in examples],
        pool.object_ids,
        pool.item_parts,
        metric=metric,
        aggregation=aggregation,
        k=k,
    )
    keys = [str(i) for i in range(len(examples))]
    per_query = per_query_metrics(
        dict(zip(keys, rankings, strict=True)),
        {key: e.grades() for key, e in zip(keys, examples, strict=True)},
        k,
    )
    return {name: [values.get(key, 0.0) for key in keys] for name, values in per_query.items()}


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
        f"NDCG@10 gain {figures['gain.ndcg@10']:+.4f} on {n} held-out queries, {confidence:.0%}"
        f" interval [{low:+.4f}, {figures['gain.ndcg@10.high']:+.4f}]: its lower bound is"
        f" {'above' if deployable else 'not above'} {margin} (ES_FINE_TUNING_GATE_MARGIN)"
    )
    return Verdict(deployable, figures, reason)
