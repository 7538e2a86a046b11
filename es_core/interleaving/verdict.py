"""The verdict of interleaved sessions: which collection users preferred, and how sure.

Each session with clicks is a win for the team credited with more clicked items, or a tie.
Over sessions, an exact two-sided sign test on wins against losses (ties left out) decides;
the interval is Wilson's score interval on green's share of the decided sessions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from statistics import NormalDist
from typing import Literal

Decision = Literal["green_better", "blue_better", "no_difference"]
Winner = Literal["green", "blue", "tie"]


def session_winner(green_clicks: int, blue_clicks: int) -> Winner | None:
    """None for a session nobody clicked in: it says nothing about either side."""
    if green_clicks == blue_clicks:
        return None if green_clicks == 0 else "tie"
    return "green" if green_clicks > blue_clicks else "blue"


def sign_test_p_value(wins: int, losses: int) -> float:
    """Exact two-sided binomial test of wins against losses under p = 1/2."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    tail = float(Fraction(sum(math.comb(n, i) for i in range(k + 1)), 2**n))
    return min(1.0, 2 * tail)


def wilson_interval(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval of a proportion; (0, 1) with no observations."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Verdict:
    sessions: int  # interleaved sessions, with or without clicks
    green_wins: int
    blue_wins: int
    ties: int
    p_value: float
    # Green's share of the decided sessions (0.5 when none), and its interval.
    green_win_rate: float
    lower: float
    upper: float
    confidence: float
    decision: Decision

    @property
    def sessions_with_clicks(self) -> int:
        return self.green_wins + self.blue_wins + self.ties

    def describe(self) -> str:
        return (
            f"{self.decision.replace('_', ' ')}: green won {self.green_wins}, blue won"
            f" {self.blue_wins}, {self.ties} ties in {self.sessions} interleaved sessions"
            f" (sign test p = {self.p_value:.3g}, green's win rate {self.green_win_rate:.3f},"
            f" {self.confidence:.0%} interval {self.lower:.3f}..{self.upper:.3f})"
        )


def decide(clicks: Iterable[tuple[int, int]], confidence: float) -> Verdict:
    """The verdict over sessions given as (green clicks, blue clicks) each."""
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}")
    counts: dict[Winner, int] = {"green": 0, "blue": 0, "tie": 0}
    sessions = 0
    for green, blue in clicks:
        sessions += 1
        winner = session_winner(green, blue)
        if winner is not None:
            counts[winner] += 1
    wins, losses = counts["green"], counts["blue"]
    p_value = sign_test_p_value(wins, losses)
    decided = wins + losses
    decision: Decision = "no_difference"
    if p_value < 1 - confidence:
        decision = "green_better" if wins > losses else "blue_better"
    lower, upper = wilson_interval(wins, decided, confidence)
    return Verdict(
        sessions=sessions,
        green_wins=wins,
        blue_wins=losses,
        ties=counts["tie"],
        p_value=p_value,
        green_win_rate=wins / decided if decided else 0.5,
        lower=lower,
        upper=upper,
        confidence=confidence,
        decision=decision,
    )
