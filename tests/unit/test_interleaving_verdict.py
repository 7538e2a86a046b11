"""The interleaving verdict: session winners, the sign test, its interval, and the
promotion's decision."""

from __future__ import annotations

import math
import random

import pytest
from pydantic import ValidationError

from es_core.config import Settings
from es_core.interleaving.gate import promotion_decision
from es_core.interleaving.verdict import (
    decide,
    decide_sequentially,
    looks,
    session_winner,
    sign_test_p_value,
    wilson_interval,
)


def test_session_winner() -> None:
    assert session_winner(2, 1) == "green"
    assert session_winner(0, 1) == "blue"
    assert session_winner(1, 1) == "tie"
    assert session_winner(0, 0) is None


def test_sign_test_on_tiny_counts() -> None:
    assert sign_test_p_value(0, 0) == 1.0
    assert sign_test_p_value(5, 5) == 1.0
    assert math.isclose(sign_test_p_value(10, 0), 2 / 1024)
    assert math.isclose(sign_test_p_value(0, 10), 2 / 1024)
    assert math.isclose(sign_test_p_value(1, 4), 2 * 6 / 32)
    assert 0 < sign_test_p_value(1600, 1400) < 0.001  # no overflow with many sessions


def test_wilson_interval_holds_its_proportion() -> None:
    assert wilson_interval(0, 0, 0.95) == (0.0, 1.0)
    lower, upper = wilson_interval(50, 100, 0.95)
    assert lower < 0.5 < upper and math.isclose(0.5 - lower, upper - 0.5)
    lower, upper = wilson_interval(100, 100, 0.95)
    assert 0.95 < lower < upper <= 1.0


def test_a_clear_preference_for_green_gives_green() -> None:
    sessions = [(1, 0)] * 18 + [(0, 1)] * 2 + [(1, 1)] * 5 + [(0, 0)] * 10
    verdict = decide(sessions, 0.95)
    assert verdict.decision == "green_better"
    assert (verdict.sessions, verdict.green_wins, verdict.blue_wins, verdict.ties) == (
        35,
        18,
        2,
        5,
    )
    assert verdict.sessions_with_clicks == 25
    assert verdict.green_win_rate == 0.9 and verdict.lower > 0.5
    assert "green better" in verdict.describe()


def test_a_clear_preference_for_blue_gives_blue() -> None:
    verdict = decide([(0, 2)] * 12 + [(1, 0)], 0.95)
    assert verdict.decision == "blue_better" and verdict.upper < 0.5


def test_a_tie_stays_a_tie_within_its_interval() -> None:
    verdict = decide([(1, 0), (0, 1)] * 30 + [(2, 2)] * 10, 0.95)
    assert verdict.decision == "no_difference"
    assert verdict.p_value == 1.0
    assert verdict.lower < 0.5 < verdict.upper
    assert decide([], 0.95).decision == "no_difference"
    # A lean that is not significant at the confidence asked is no difference yet.
    assert decide([(1, 0)] * 5, 0.95).decision == "no_difference"  # p = 0.0625
    assert decide([(1, 0)] * 5, 0.9).decision == "green_better"


def test_the_planned_looks_double_up_to_the_limit() -> None:
    assert looks(10, 2000) == [10, 20, 40, 80, 160, 320, 640, 1280]
    assert looks(10, 4) == [10]
    with pytest.raises(ValueError, match="first look"):
        looks(0, 10)


def test_a_sequential_verdict_speaks_only_at_a_planned_look() -> None:
    """Six green wins in a row reject a tie for a single test (p = 0.031) but not at a planned
    look: the first is at 10 decided sessions, where 10 to 0 does (p = 0.002 < 0.05 / 8)."""
    assert decide([(1, 0)] * 6, 0.95).decision == "green_better"
    six = decide_sequentially([(1, 0)] * 6, 0.95, 10, 2000)
    assert six.decision == "no_difference" and six.green_wins == 6
    ten = decide_sequentially([(1, 0)] * 10 + [(0, 0)], 0.95, 10, 2000)
    assert ten.decision == "green_better" and ten.sessions == 11
    blue = decide_sequentially([(0, 1)] * 19 + [(1, 0)], 0.95, 10, 2000)
    assert blue.decision == "blue_better"
    # 9 to 1 at the first look (p = 0.021) is not enough once the error is split eight ways.
    assert decide_sequentially([(1, 0)] * 9 + [(0, 1)], 0.95, 10, 2000).decision == (
        "no_difference"
    )


def test_asking_after_every_session_finds_differences_that_are_not_there() -> None:
    """Users with no preference (a fair coin per session), asked after every session up to 160:
    acting on the first 'yes' of the single test declares a winner far more often than 5 % of
    the time; the planned looks stay within it."""
    rng = random.Random(7)
    runs, n = 200, 160
    peeking = planned = 0
    for _ in range(runs):
        stream = [(1, 0) if rng.random() < 0.5 else (0, 1) for _ in range(n)]
        wins = 0
        for i, (green, _blue) in enumerate(stream, start=1):
            wins += green
            if sign_test_p_value(wins, i - wins) < 0.05:
                peeking += 1
                break
        planned += decide_sequentially(stream, 0.95, 10, n).decision != "no_difference"
    assert peeking / runs > 0.10
    assert planned / runs <= 0.05


def test_confidence_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        decide([], 1.0)
    with pytest.raises(ValueError, match="confidence"):
        decide([], 0.5)


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_settings_refuse_a_share_out_of_range(share: float) -> None:
    with pytest.raises(ValidationError, match="interleaving_share"):
        Settings(interleaving_share=share)
    assert Settings(interleaving_share=0.25).interleaving_share == 0.25
    assert Settings().interleaving_share == 0.0  # off by default


def test_settings_refuse_a_confidence_out_of_range() -> None:
    with pytest.raises(ValidationError, match="interleaving_confidence"):
        Settings(interleaving_confidence=1.0)


SETTINGS = Settings(interleaving_max_sessions=100, interleaving_max_seconds=3600)


def test_promotion_switches_only_when_green_is_better() -> None:
    action, why = promotion_decision(decide([(1, 0)] * 12, 0.95), 10, SETTINGS)
    assert action == "switch" and "green better" in why
    action, why = promotion_decision(decide([(0, 1)] * 12, 0.95), 10, SETTINGS)
    assert action == "keep" and "blue better" in why


def test_promotion_waits_then_keeps_blue_at_its_limits() -> None:
    undecided = decide([(1, 0), (0, 1)] * 10, 0.95)
    assert promotion_decision(undecided, 10, SETTINGS)[0] == "wait"
    action, why = promotion_decision(undecided, 3600, SETTINGS)
    assert action == "keep" and "ES_INTERLEAVING_MAX_SECONDS" in why
    many = decide([(1, 0), (0, 1)] * 50, 0.95)
    action, why = promotion_decision(many, 10, SETTINGS)
    assert action == "keep" and "ES_INTERLEAVING_MAX_SESSIONS" in why
