"""A position-biased cascade click model that turns relevance judgements into clicks.

The user scans the results top-down. Rank r (0-based) is examined with probability
``1 / (1 + r) ** eta``; an examined result of grade g is clicked with probability
``click_probability[g]`` (the grade-0 value is the noise: clicks on non-relevant results); after a
click the user stops with probability ``stop_after_click``, otherwise goes on scanning.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

#: Click probability of an examined result by relevance grade.
DEFAULT_CLICK_PROBABILITY: Mapping[int, float] = MappingProxyType({0: 0.05, 1: 0.7, 2: 0.9})


def _check_probability(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")


@dataclass(frozen=True)
class CascadeClickModel:
    """Deterministic given the ``random.Random`` passed to ``simulate``.

    Grades missing from ``click_probability`` use the nearest grade below that is present (so with
    the defaults, grade 3 clicks like grade 2), or the lowest grade present; documents absent from
    the judgements have grade 0.
    """

    eta: float = 1.0
    click_probability: Mapping[int, float] = field(
        default_factory=lambda: DEFAULT_CLICK_PROBABILITY, hash=False
    )
    stop_after_click: float = 0.6

    def __post_init__(self) -> None:
        if not (math.isfinite(self.eta) and self.eta >= 0):
            raise ValueError(f"eta must be a finite number >= 0, got {self.eta!r}")
        if not self.click_probability:
            raise ValueError("click_probability must give at least one grade")
        for grade, probability in self.click_probability.items():
            _check_probability(f"click_probability[{grade}]", probability)
        _check_probability("stop_after_click", self.stop_after_click)
        # A private read-only copy, so later changes to the caller's dict cannot leak in.
        object.__setattr__(
            self, "click_probability", MappingProxyType(dict(self.click_probability))
        )

    def examination(self, rank: int) -> float:
        """Probability that the result at 0-based ``rank`` is looked at."""
        if rank < 0:
            raise ValueError(f"rank must be >= 0, got {rank}")
        return float(1.0 / (1 + rank) ** self.eta)

    def click_probability_for(self, grade: int) -> float:
        """Probability that an examined result of this grade is clicked."""
        table = self.click_probability
        if grade in table:
            return table[grade]
        below = [g for g in table if g < grade]
        return table[max(below)] if below else table[min(table)]

    def simulate(
        self, shown: Sequence[str], relevance: Mapping[str, int], rng: random.Random
    ) -> list[int]:
        """The 0-based ranks the simulated user clicks, in increasing order."""
        clicks: list[int] = []
        for rank, doc_id in enumerate(shown):
            if rng.random() >= self.examination(rank):
                continue
            if rng.random() >= self.click_probability_for(relevance.get(doc_id, 0)):
                continue
            clicks.append(rank)
            if rng.random() < self.stop_after_click:
                break
        return clicks
