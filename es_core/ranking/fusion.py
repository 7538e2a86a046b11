"""Fusing retrievers' scores and business signals into one ranking score (higher first).

Pure functions over a candidate pool, shared by search and by the task that learns weights
from clicks, so a learned setting ranks exactly as it will in service.

- weighted: each component (vector similarity, BM25, each boost) is standardised over the
  pool (z-score per query, so scales never matter), then summed with its weight;
- rrf: each component contributes ``weight / (k + rank)`` by its rank in its own list (the
  retrievers' top-``window`` lists; boosts rank the pool items that have the field).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from es_core.ranking.spec import Boost, RankingSpec

FloatArray = npt.NDArray[np.float64]


@dataclass
class Candidate:
    """One pool item with its raw scores. ``vector_rank`` / ``lexical_rank``: 1-based rank in
    that retriever's own list, None when it did not list the item."""

    object_id: str
    distance: float
    lexical: float
    payload: dict[str, Any] = field(default_factory=dict)
    vector_rank: int | None = None
    lexical_rank: int | None = None
    matched_part_id: str = ""
    personal: bool = False


def payload_value(payload: dict[str, Any], path: str) -> Any:
    value: Any = payload
    for segment in path.split("."):
        if not isinstance(value, dict) or segment not in value:
            return None
        value = value[segment]
    return value


def _seconds(value: Any) -> float | None:
    """A timestamp as seconds since the epoch: a number, or an ISO 8601 string (UTC if naive)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC).timestamp()
        return moment.timestamp()
    return None


def boost_value(boost: Boost, payload: dict[str, Any], now: float) -> float | None:
    """The signal's raw value for one item; None when the item lacks a usable value."""
    raw = payload_value(payload, boost.field)
    if boost.function == "decay":
        moment = _seconds(raw)
        if moment is None:
            return None
        age = max(now - moment, 0.0)
        return float(0.5 ** (age / boost.half_life_seconds))
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        return None
    if boost.function == "log":
        return math.log1p(max(float(raw), 0.0))
    return float(raw)


def standardised(values: FloatArray) -> FloatArray:
    """z-scores over the pool; all zeros when the values do not vary."""
    if len(values) == 0:
        return values
    std = float(values.std())
    if not math.isfinite(std) or std == 0.0:
        return np.zeros_like(values)
    return np.asarray((values - values.mean()) / std, dtype=np.float64)


def _ranks(values: Sequence[float | None]) -> list[int | None]:
    """1-based ranks, highest value first (ties by position); None stays None."""
    present = sorted((i for i, v in enumerate(values) if v is not None), key=lambda i: -values[i])  # type: ignore[operator]
    ranks: list[int | None] = [None] * len(values)
    for rank, i in enumerate(present, start=1):
        ranks[i] = rank
    return ranks


def fused_scores(
    pool: Sequence[Candidate], spec: RankingSpec, now: float | None = None
) -> FloatArray:
    """One score per pool item, in pool order; higher ranks first."""
    if not pool:
        return np.zeros(0)
    moment = datetime.now().timestamp() if now is None else now
    signals = [[boost_value(b, c.payload, moment) for c in pool] for b in spec.boosts]
    if spec.fusion == "rrf":
        k = spec.rrf_k
        scores = np.zeros(len(pool))
        for i, c in enumerate(pool):
            if c.vector_rank is not None:
                scores[i] += spec.vector_weight / (k + c.vector_rank)
            if c.lexical_rank is not None:
                scores[i] += spec.lexical_weight / (k + c.lexical_rank)
        for boost, values in zip(spec.boosts, signals, strict=True):
            for i, rank in enumerate(_ranks(values)):
                if rank is not None:
                    scores[i] += boost.weight / (k + rank)
        return scores
    similarity = -np.asarray([c.distance for c in pool], dtype=np.float64)
    lexical = np.asarray([c.lexical for c in pool], dtype=np.float64)
    scores = spec.vector_weight * standardised(similarity) + spec.lexical_weight * standardised(
        lexical
    )
    for boost, values in zip(spec.boosts, signals, strict=True):
        raw = np.asarray([0.0 if v is None else v for v in values], dtype=np.float64)
        scores += boost.weight * standardised(raw)
    return np.asarray(scores, dtype=np.float64)


def ranked(
    pool: Sequence[Candidate], spec: RankingSpec, now: float | None = None
) -> list[tuple[float, Candidate]]:
    """The pool in ranking order as (score, candidate): score descending, then object_id."""
    scores = fused_scores(pool, spec, now)
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], pool[i].object_id))
    return [(float(scores[i]), pool[i]) for i in order]
