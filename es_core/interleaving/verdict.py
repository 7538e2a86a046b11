"""The verdict of interleaved sessions: which collection users preferred, and how sure.

Each session with clicks is a win for the team credited with more clicked items, or a tie.
Over sessions, an exact two-sided sign test on wins against losses (ties left out) decides;
the interval is Wilson's score interval on green's share of the decided sessions.

Asking that question again and again as sessions arrive, and acting on the first "yes", would
find a difference that is not there far more often than the confidence says. deploy_as_blue,
which waits and asks until it gets an answer, therefore looks only at planned points (10, 20,
40, ... decided sessions, up to its session limit) and splits the error it may make among them
(Bonferroni): ``decide_sequentially``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
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


def looks(first: int, last: int) -> list[int]:
    """The planned looks: ``first``, twice that, ... up to ``last`` decided sessions (at least
    one look, at ``first``)."""
    if first < 1:
        raise ValueError(f"the first look must be at 1 session or more, got {first}")
    planned = [first]
    while planned[-1] * 2 <= last:
        planned.append(planned[-1] * 2)
    return planned


def decide_sequentially(
    clicks: Iterable[tuple[int, int]], confidence: float, first_look: int, last_look: int
) -> Verdict:
    """The verdict of a test that looks only at the planned ``looks`` (counted in decided
    sessions, oldest first) with ``1 - confidence`` split evenly among them, and stops at the
    first look that rejects a tie; its figures are those of every session."""
    sessions = list(clicks)
    planned = set(looks(first_look, last_look))
    alpha = (1 - confidence) / len(planned)
    decided = wins = 0
    for green, blue in sessions:
        winner = session_winner(green, blue)
        if winner not in ("green", "blue"):
            continue
        decided += 1
        wins += winner == "green"
        if decided in planned and sign_test_p_value(wins, decided - wins) < alpha:
            decision: Decision = "green_better" if 2 * wins > decided else "blue_better"
            return replace(decide(sessions, confidence), decision=decision)
    return replace(decide(sessions, confidence), decision="no_difference")
