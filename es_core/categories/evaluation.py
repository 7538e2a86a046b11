"""How well a model predicts the categories of held-out queries, and the gate on it.

Each held-out query ranks every category; its figures are top-1 accuracy (the nearest
category is one its sessions clicked into) and the reciprocal rank of its first clicked
category (MRR over the queries). The model in service is scored as PredictCategories answers:
its query encoder against the categories collection's stored vectors. A candidate encodes the
same categories' texts itself. The gate is the items' rule on this figure: a paired bootstrap
over the queries gives the MRR gain an interval, and the candidate is deployable only when its
lower bound is above ``fine_tuning_gate_margin`` (never when it is worse).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import asyncpg
import numpy as np

from es_core.categories.store import nearest_categories
from es_core.domain import Collection
from es_core.encoders.base import Encoder
from es_core.evaluation.bootstrap import mean_interval, paired_difference
from es_core.fine_tuning.evaluator import closest, item_distances
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.gate import Verdict

ACCURACY = "accuracy@1"
MRR = "mrr"
#: The figure the gate decides on: finer than top-1 accuracy, and moved by it.
JUDGED = MRR
METRICS = (ACCURACY, MRR)
Scores = dict[str, list[float]]


def score_rankings(rankings: Sequence[Sequence[str]], examples: Sequence[Example]) -> Scores:
    """Per query: 1.0 when its nearest category is a positive, and 1 / rank of its first."""
    accuracy, reciprocal = [], []
    for ranked, example in zip(rankings, examples, strict=True):
        first = next((i for i, c in enumerate(ranked) if c in example.positives), None)
        accuracy.append(1.0 if first == 0 else 0.0)
        reciprocal.append(0.0 if first is None else 1.0 / (first + 1))
    return {ACCURACY: accuracy, MRR: reciprocal}


def candidate_rankings(
    encoder: Encoder,
    examples: Sequence[Example],
    category_parts: Mapping[str, list[str]],
) -> list[list[str]]:
    """Each query's categories, nearest first, as ``encoder`` places them (cosine, a category
    of several parts counting its nearest, as ``nearest_categories`` does)."""
    ids = sorted(c for c, parts in category_parts.items() if parts)
    if not examples or not ids:
        return [[] for _ in examples]
    distances = item_distances(
        encoder,
        [e.query for e in examples],
        ids,
        category_parts,
        metric="cosine",
        aggregation="min",
    )
    return [closest(row, ids, len(ids)) for row in distances]


async def in_service_rankings(
    pool: asyncpg.Pool,
    collection: Collection,
    encoder: Encoder,
    examples: Sequence[Example],
    cap: int,
) -> list[list[str]]:
    """Each query's categories, nearest first, as PredictCategories ranks them now."""
    if not examples:
        return []
    vectors = encoder.encode_queries([e.query for e in examples])
    rankings = []
    for vector in vectors:
        found = await nearest_categories(pool, collection, np.asarray(vector, np.float32), cap)
        rankings.append([f.category_id for f in found])
    return rankings


def summary(scores: Scores, confidence: float, seed: int, prefix: str = "") -> dict[str, float]:
    figures: dict[str, float] = {}
    for name in METRICS:
        interval = mean_interval(scores.get(name, []), confidence=confidence, seed=seed)
        figures[f"{prefix}{name}"] = interval.mean
        figures[f"{prefix}{name}.low"] = interval.low
        figures[f"{prefix}{name}.high"] = interval.high
    return figures


def judge(
    candidate: Scores, in_service: Scores, *, margin: float, confidence: float, seed: int
) -> Verdict:
    """Deployable when the lower bound of the paired MRR gain is above ``margin``."""
    figures = {
        **summary(candidate, confidence, seed),
        **summary(in_service, confidence, seed, prefix="in_service."),
    }
    for name in METRICS:
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
        f"category MRR {figures[JUDGED]:.4f} (top-1 accuracy {figures[ACCURACY]:.4f}) against"
        f" {figures['in_service.' + JUDGED]:.4f} ({figures['in_service.' + ACCURACY]:.4f}) in"
        f" service: gain {figures['gain.' + JUDGED]:+.4f} on {n} held-out queries,"
        f" {confidence:.0%} interval [{low:+.4f}, {figures[f'gain.{JUDGED}.high']:+.4f}]: its"
        f" lower bound is {'above' if deployable else 'not above'} {margin}"
        " (ES_FINE_TUNING_GATE_MARGIN)"
    )
    return Verdict(deployable, figures, reason)
