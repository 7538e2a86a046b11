"""The deploy gate: a trained model against the model in service, on the held-out queries,
each model ranking the collection.

Re-ranking only what the model in service showed cannot credit a candidate for a clicked item
it would bring up from below that list, and a fixed margin knows nothing of noise. Here the
model in service answers each held-out query from the collection as it serves it (its stored
vectors: nothing is encoded again), and the candidate ranks the whole collection (or, past
``fine_tuning_gate_max_items`` items, the in-service model's top
``fine_tuning_gate_pool_per_query`` for every held-out query plus what was shown and clicked:
a pool where both models' top 10s lie).

The clicks are the judgements, and they are incomplete: an item nobody was shown for a query is
not judged at all, and a candidate that brings up relevant items from below the shown list
would be punished for them if they counted as not relevant (on the built-in shop catalogue that
reading refused a model that lifted dev NDCG@10 from 0.15 to 0.55). So the gate decides on the
condensed list (Sakai, "Alternatives to Bpref", SIGIR 2007): each model's ranking of the whole
collection with the unjudged items left out, i.e. its order of what was shown and clicked for
the query, the judged NDCG@10 (``judged.ndcg@10``). Each click's gain is divided by the chance
its rank was looked at (``click_gains.debiased_gains``, ``ranking_fit_position_bias``: the same
users' position bias the ranking fit corrects for), or the order that showed the clicks would
win every comparison. NDCG@10, Recall@10 and MRR@10 of the top 10 over the collection (unjudged
counted as not relevant) are reported beside it. A paired bootstrap over the queries gives the
gain an interval: the candidate is deployable when its lower bound is above
``fine_tuning_gate_margin``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from es_core.config import Settings
from es_core.domain import Aggregation, Collection, Metric
from es_core.encoders.base import Encoder
from es_core.evaluation.bootstrap import mean_interval, paired_difference
from es_core.evaluation.click_gains import dcg, debiased_gains, ndcg_of_clicks
from es_core.evaluation.metrics import per_query_metrics
from es_core.fine_tuning.evaluator import closest, item_distances
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.mining import collection_search, query_vectors
from es_core.plugins.protocol import DataLoader
from es_core.storage.catalog import items_table
from es_core.storage.item_rows import head_rows

K = 10
#: The metric the gate decides on: NDCG@10 of each model's order of the judged items.
JUDGED = f"judged.ndcg@{K}"
GATE_METRICS = (f"ndcg@{K}", f"recall@{K}", f"mrr@{K}", JUDGED)
Scores = dict[str, list[float]]  # metric name -> one figure per held-out query


@dataclass(frozen=True)
class EvaluationPool:
    object_ids: list[str]
    item_parts: dict[str, list[str]]
    whole_collection: bool
    #: Each held-out query's nearest items as the model in service answers it, nearest first
    #: (``fine_tuning_gate_pool_per_query`` of them).
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
            f"SELECT object_id FROM {items_table(collection)} WHERE {head_rows()} LIMIT $1",
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
        [[o for o in top if o in rankable] for top in nearest],
    )


def judged(example: Example) -> list[str]:
    """What the held-out sessions of a query judged: everything shown, and what was clicked."""
    return list(dict.fromkeys((*example.shown, *example.positives)))


def score_rankings(
    tops: Sequence[Sequence[str]],
    judged_orders: Sequence[Sequence[str]],
    examples: Sequence[Example],
    position_bias: float,
) -> Scores:
    """Each held-out query's NDCG@10, Recall@10 and MRR@10 of its top 10 (clicks judging,
    unjudged items not relevant) and the judged NDCG@10 of its order of the judged items; every
    NDCG with the clicks' gains debiased for rank."""
    keys = [str(i) for i in range(len(examples))]
    per_query = per_query_metrics(
        dict(zip(keys, tops, strict=True)),
        {key: e.grades() for key, e in zip(keys, examples, strict=True)},
        K,
    )
    scores = {name: [values.get(key, 0.0) for key in keys] for name, values in per_query.items()}

    def ndcg(ranked: Sequence[str], example: Example) -> float:
        return ndcg_of_clicks(
            ranked,
            debiased_gains(example, position_bias),
            K,
            ideal=dcg(sorted(example.positives.values(), reverse=True), K),
        )

    scores[f"ndcg@{K}"] = [ndcg(r, e) for r, e in zip(tops, examples, strict=True)]
    scores[JUDGED] = [ndcg(r, e) for r, e in zip(judged_orders, examples, strict=True)]
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
    """``score_rankings`` of ``encoder``'s ranking of the pool for each held-out query."""
    distances = item_distances(
        encoder,
        [e.query for e in examples],
        pool.object_ids,
        pool.item_parts,
        metric=metric,
        aggregation=aggregation,
    )
    column = {object_id: i for i, object_id in enumerate(pool.object_ids)}
    tops, orders = [], []
    for row, example in zip(distances, examples, strict=True):
        tops.append(closest(row, pool.object_ids, K))
        wanted = [o for o in judged(example) if o in column]
        orders.append(sorted(wanted, key=lambda o: (float(row[column[o]]), o)))
    return score_rankings(tops, orders, examples, position_bias)


def in_service_scores(
    examples: Sequence[Example], pool: EvaluationPool, position_bias: float
) -> Scores:
    """``score_rankings`` of the in-service model's answers; judged items past its answer
    follow in the order they were shown. As for the candidate, only judged items the pool
    holds (those with text) count."""
    rankable = set(pool.object_ids)
    orders = []
    for nearest, example in zip(pool.in_service, examples, strict=True):
        wanted = [o for o in judged(example) if o in rankable]
        place = {o: i for i, o in enumerate(nearest)}
        shown = {o: len(place) + i for i, o in enumerate(wanted)}
        orders.append(sorted(wanted, key=lambda o: place.get(o, shown[o])))
    return score_rankings([n[:K] for n in pool.in_service], orders, examples, position_bias)


def summary(scores: Scores, confidence: float, seed: int, prefix: str = "") -> dict[str, float]:
    """Mean and bootstrap interval of each metric: "ndcg@10", "ndcg@10.low", "ndcg@10.high"."""
    figures: dict[str, float] = {}
    for name in GATE_METRICS:
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
    """Deployable when the lower bound of the paired judged NDCG@10 gain is above ``margin``."""
    figures = {
        **summary(candidate, confidence, seed),
        **summary(in_service, confidence, seed, prefix="in_service."),
    }
    for name in GATE_METRICS:
        gain = paired_difference(
            candidate.get(name, []), in_service.get(name, []), confidence=confidence, seed=seed
        )
        figures[f"gain.{name}"] = gain.mean
        figures[f"gain.{name}.low"] = gain.low
        figures[f"gain.{name}.high"] = gain.high
    low = figures[f"gain.{JUDGED}.low"]
    deployable = not math.isnan(low) and low > margin
    n = len(candidate.get(JUDGED, []))
    reason = (
        f"judged NDCG@10 (each model's order of what was shown and clicked, clicks debiased for"
        f" rank) {figures[JUDGED]:.4f} against {figures['in_service.' + JUDGED]:.4f} in service:"
        f" gain {figures['gain.' + JUDGED]:+.4f} on {n} held-out queries, {confidence:.0%}"
        f" interval [{low:+.4f}, {figures[f'gain.{JUDGED}.high']:+.4f}]: its lower bound is"
        f" {'above' if deployable else 'not above'} {margin} (ES_FINE_TUNING_GATE_MARGIN)"
    )
    return Verdict(deployable, figures, reason)
