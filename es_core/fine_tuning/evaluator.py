"""How a model ranks items for queries, scored the way search scores them: the metric's distance
per part, MIN or AVG over an item's parts (pgvector's operators, so offline and online agree).
The deploy gate (``gate``) ranks with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt

from es_core.domain import Aggregation, Metric
from es_core.encoders.base import Encoder


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


def closest(distances: npt.NDArray[np.float64], ids: Sequence[str], k: int) -> list[str]:
    """The ``k`` ids of smallest distance; equal distances fall back to the id."""
    order = sorted(range(len(ids)), key=lambda i: (distances[i], ids[i]))
    return [ids[i] for i in order[:k]]
