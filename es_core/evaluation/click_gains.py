"""Clicks as graded gains: each clicked item's weight, debiased for the rank it was shown at,
and NDCG@k over those gains. The ranking fit and the deploy gate judge rankings with them."""

from __future__ import annotations

import math
from collections.abc import Sequence

from es_core.fine_tuning.examples import Example

#: The largest factor a click's rank may multiply its weight by: a deep click is rare, and an
#: unclipped inverse chance would let a handful of them decide the fit.
MAX_POSITION_FACTOR = 10.0


def debiased_gains(example: Example, eta: float) -> dict[str, float]:
    """Each clicked item's weight divided by the chance its rank was looked at at all,
    ``1 / (1 + rank) ** eta`` (0-based rank in what the sessions showed): users click what is
    on top far more than what is lower, relevant or not, so raw clicks favour whatever order
    showed them. Inverse propensity weighting (Joachims et al., "Unbiased Learning-to-Rank with
    Biased Feedback", 2017) makes the expected gain of an item its relevance, wherever it was
    shown. The factor is clipped at ``MAX_POSITION_FACTOR``. A click on an item that was not
    shown keeps its weight."""
    ranks = {object_id: rank for rank, object_id in enumerate(example.shown)}
    return {
        object_id: weight * min((1 + ranks[object_id]) ** eta, MAX_POSITION_FACTOR)
        if object_id in ranks
        else weight
        for object_id, weight in example.positives.items()
    }


def dcg(gains: Sequence[float], k: int = 10) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ndcg_of_clicks(
    ranked: Sequence[str], gains: dict[str, float], k: int = 10, ideal: float = 0.0
) -> float:
    """NDCG@k with each clicked item's weight as its gain; ``ideal`` (when > 0) normalises in
    place of the best order of ``gains``."""
    ideal = ideal if ideal > 0 else dcg(sorted(gains.values(), reverse=True), k)
    if ideal <= 0:
        return 0.0
    return dcg([gains.get(o, 0.0) for o in ranked], k) / ideal
