"""Held-out evaluation: how well a model ranks what people clicked for queries it never trained on.

Each held-out query re-ranks what its own sessions showed (and what was clicked in them). Items
are scored the way search scores them (the metric's distance per part, MIN or AVG over parts),
and the ranking is judged against the query's positives (graded by event weight).

Why not one pool of every held-out item: the items shown for a query are the model in service's
own top results, so over such a pool that model finds every clicked item by construction (its
recall is 1) and any other model can only lose. Re-ranking each query's own list puts both
models on the same items and asks only what the clicks say: which of them belong on top.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from es_core.encoders.base import Encoder
from es_core.evaluation.metrics import evaluate_rankings
from es_core.fine_tuning.examples import Example
from es_core.storage.catalog import Aggregation, Metric

METRIC_NAMES = ("ndcg@10", "recall@10", "mrr@10")


def evaluation_pool(examples: Sequence[Example], item_parts: Mapping[str, list[str]]) -> list[str]:
    """Every item shown or clicked for the examples that has text, in first-seen order."""
    pool: dict[str, None] = {}
    for example in examples:
        for object_id in (*example.shown, *example.positives):
            if item_parts.get(object_id):
                pool[object_id] = None
    return list(pool)


def part_distances(
    queries: npt.NDArray[np.float32], parts: npt.NDArray[np.float32], metric: Metric
) -> npt.NDArray[np.float64]:
    """``[queries, parts]`` distances, smaller is closer (pgvector's operators); NaN is +inf."""
    q = queries.astype(np.float64)
    p = parts.astype(np.float64)
    if metric == "cosine":
        q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        p = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)
        distances = 1.0 - q @ p.T
    elif metric == "dot":
        distances = -(q @ p.T)
    else:
        squared = (q**2).sum(1)[:, None] + (p**2).sum(1)[None, :] - 2.0 * q @ p.T
        distances = np.sqrt(np.maximum(squared, 0.0))
    return np.where(np.isnan(distances), np.inf, distances)


def item_distances(
    encoder: Encoder,
    queries: Sequence[str],
    pool: Sequence[str],
    item_parts: Mapping[str, list[str]],
    *,
    metric: Metric,
    aggregation: Aggregation,
) -> npt.NDArray[np.float64]:
    """``[queries, pool]`` distances of whole items: MIN or AVG over each item's parts."""
    texts = [text for object_id in pool for text in item_parts[object_id]]
    starts = np.cumsum([0] + [len(item_parts[o]) for o in pool[:-1]])
    counts = np.array([len(item_parts[o]) for o in pool], dtype=np.float64)
    distances = part_distances(
        encoder.encode_queries(list(queries)), encoder.encode_items(texts), metric
    )
    if aggregation == "min":
        per_item: npt.NDArray[np.float64] = np.minimum.reduceat(distances, starts, axis=1)
        return per_item
    mean: npt.NDArray[np.float64] = np.add.reduceat(distances, starts, axis=1) / counts[None, :]
    return mean


def _closest(distances: npt.NDArray[np.float64], ids: Sequence[str], k: int) -> list[str]:
    """The ``k`` ids of smallest distance; equal distances fall back to the id."""
    order = sorted(range(len(ids)), key=lambda i: (distances[i], ids[i]))
    return [ids[i] for i in order[:k]]


def rank_pool(
    encoder: Encoder,
    queries: Sequence[str],
    pool: Sequence[str],
    item_parts: Mapping[str, list[str]],
    *,
    metric: Metric,
    aggregation: Aggregation,
    k: int = 10,
) -> list[list[str]]:
    """The top ``k`` of ``pool`` for each query, closest first (ties by object id)."""
    if not queries:
        return []
    if not pool:
        return [[] for _ in queries]
    per_item = item_distances(
        encoder, queries, pool, item_parts, metric=metric, aggregation=aggregation
    )
    return [_closest(row, pool, k) for row in per_item]


def evaluate(
    encoder: Encoder,
    examples: Sequence[Example],
    item_parts: Mapping[str, list[str]],
    *,
    metric: Metric,
    aggregation: Aggregation,
    k: int = 10,
) -> dict[str, float]:
    """Mean NDCG@k, Recall@k and MRR@k of ``encoder`` over the held-out ``examples``, each
    re-ranking its own shown and clicked items (every item is encoded once)."""
    pool = evaluation_pool(examples, item_parts)
    keys = [str(i) for i in range(len(examples))]
    rankings: dict[str, list[str]] = {key: [] for key in keys}
    if examples and pool:
        per_item = item_distances(
            encoder,
            [e.query for e in examples],
            pool,
            item_parts,
            metric=metric,
            aggregation=aggregation,
        )
        column = {object_id: i for i, object_id in enumerate(pool)}
        for key, example, row in zip(keys, examples, per_item, strict=True):
            own = evaluation_pool([example], item_parts)
            rankings[key] = _closest(row[[column[o] for o in own]], own, k)
    return evaluate_rankings(
        rankings, {key: e.grades() for key, e in zip(keys, examples, strict=True)}, k
    )


def beats(candidate: Mapping[str, float], in_service: Mapping[str, float], margin: float) -> bool:
    """The deploy gate: held-out NDCG@10 higher than the model in service's by more than
    ``margin``. A NaN anywhere, or a missing figure, fails the gate."""
    new, old = candidate.get("ndcg@10"), in_service.get("ndcg@10")
    if new is None or old is None:
        return False
    return bool(new - old > margin)
