"""The cascade click model: determinism, position bias, grade effect, validation."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping

import pytest

from es_core.evaluation.click_model import DEFAULT_CLICK_PROBABILITY, CascadeClickModel

SHOWN = [f"d{i}" for i in range(10)]
DRAWS = 4000


def click_rate(
    model: CascadeClickModel, relevance: Mapping[str, int], doc_id: str, seed: int = 7
) -> float:
    """Share of DRAWS sessions over SHOWN in which ``doc_id`` is clicked."""
    rng = random.Random(seed)
    rank = SHOWN.index(doc_id)
    return sum(rank in model.simulate(SHOWN, relevance, rng) for _ in range(DRAWS)) / DRAWS


def test_defaults() -> None:
    model = CascadeClickModel()
    assert (model.eta, model.stop_after_click) == (1.0, 0.6)
    assert dict(model.click_probability) == {0: 0.05, 1: 0.7, 2: 0.9}
    assert dict(DEFAULT_CLICK_PROBABILITY) == {0: 0.05, 1: 0.7, 2: 0.9}
    assert [model.examination(r) for r in (0, 1, 3)] == [1.0, 0.5, 0.25]
    assert CascadeClickModel(eta=2.0).examination(1) == 0.25
    assert CascadeClickModel(eta=0.0).examination(9) == 1.0


def test_deterministic_for_a_seed() -> None:
    model = CascadeClickModel()
    relevance = {"d0": 1, "d2": 2, "d5": 1}

    def sessions(seed: int) -> list[list[int]]:
        rng = random.Random(seed)
        return [model.simulate(SHOWN, relevance, rng) for _ in range(200)]

    assert sessions(3) == sessions(3)
    assert sessions(3) != sessions(4)
    assert any(len(clicks) > 1 for clicks in sessions(3))  # continuing after a click happens
    assert all(clicks == sorted(set(clicks)) for clicks in sessions(3))


def test_examination_falls_with_rank() -> None:
    model = CascadeClickModel()
    at_0 = click_rate(model, {"d0": 1}, "d0")
    at_5 = click_rate(model, {"d5": 1}, "d5")
    assert at_0 == pytest.approx(0.7, abs=0.03)  # always examined at rank 0
    assert at_5 < at_0 / 3
    assert click_rate(model, {"d2": 1}, "d2") > at_5


def test_higher_grade_gets_more_clicks() -> None:
    model = CascadeClickModel()
    rates = [click_rate(model, {"d1": grade}, "d1") for grade in (0, 1, 2)]
    assert rates[0] < rates[1] < rates[2]
    assert rates == pytest.approx([0.05 / 2, 0.7 / 2, 0.9 / 2], abs=0.03)


def test_relevant_beats_non_relevant_at_the_same_rank() -> None:
    model = CascadeClickModel()
    assert click_rate(model, {"d3": 1}, "d3") > 3 * click_rate(model, {}, "d3")


def test_unlisted_grades_fall_back_to_the_nearest_lower_grade() -> None:
    model = CascadeClickModel()
    assert model.click_probability_for(3) == 0.9
    assert model.click_probability_for(-1) == 0.05
    assert CascadeClickModel(click_probability={1: 0.5}).click_probability_for(0) == 0.5


def test_extreme_settings() -> None:
    rng = random.Random(0)
    everything = CascadeClickModel(eta=0.0, click_probability={0: 1.0}, stop_after_click=0.0)
    assert everything.simulate(SHOWN, {}, rng) == list(range(10))
    first_only = CascadeClickModel(eta=0.0, click_probability={0: 1.0}, stop_after_click=1.0)
    assert first_only.simulate(SHOWN, {}, rng) == [0]
    never = CascadeClickModel(click_probability={0: 0.0, 1: 0.0})
    assert never.simulate(SHOWN, {d: 1 for d in SHOWN}, rng) == []
    assert CascadeClickModel().simulate([], {}, rng) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"click_probability": {0: 0.05, 1: 1.5}},
        {"click_probability": {0: -0.01}},
        {"click_probability": {0: math.nan}},
        {"click_probability": {}},
        {"stop_after_click": 1.01},
        {"stop_after_click": -0.5},
        {"eta": -1.0},
        {"eta": math.inf},
    ],
)
def test_invalid_parameters_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        CascadeClickModel(**kwargs)  # type: ignore[arg-type]


def test_negative_rank_is_rejected() -> None:
    with pytest.raises(ValueError):
        CascadeClickModel().examination(-1)


def test_the_model_is_frozen_and_keeps_its_own_copy() -> None:
    table = {0: 0.1, 1: 0.8}
    model = CascadeClickModel(click_probability=table)
    table[1] = 0.0
    assert model.click_probability_for(1) == 0.8
    assert model == CascadeClickModel(click_probability={0: 0.1, 1: 0.8})
    assert hash(model) == hash(CascadeClickModel(click_probability={0: 0.1, 1: 0.8}))
    with pytest.raises(AttributeError):
        model.eta = 2.0  # type: ignore[misc]
