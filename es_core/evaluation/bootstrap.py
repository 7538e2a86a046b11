"""Confidence intervals over queries by the bootstrap: resample the queries with replacement,
recompute the mean, read the interval off the percentiles of those means.

For two models scored on the same queries the resampling is *paired* (one draw of query
indices serves both), so the interval is the one of the mean per-query difference: the
queries' own difficulty, which both models share, cancels instead of widening it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


def mean_interval(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """The mean of ``values`` and its bootstrap interval; NaN everywhere when empty."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    array = np.asarray(values, dtype=np.float64)
    if array.size == 0:
        return Interval(float("nan"), float("nan"), float("nan"))
    draws = np.random.default_rng(seed).integers(0, array.size, size=(resamples, array.size))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(array[draws].mean(axis=1), [tail, 100 - tail])
    return Interval(float(array.mean()), float(low), float(high))


def paired_difference(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Mean of ``candidate[i] - baseline[i]`` over the queries and its paired bootstrap
    interval; NaN everywhere when there is no query."""
    a = np.asarray(candidate, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired scores differ in length: {a.size} and {b.size}")
    return mean_interval(list(a - b), confidence=confidence, resamples=resamples, seed=seed)
