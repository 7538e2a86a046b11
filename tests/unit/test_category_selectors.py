"""Category selectors: the calibrated softmax, the thresholds, and their refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from es_core.categories.selectors import (
    DistanceSelector,
    ProbabilitySelector,
    UnsetSelector,
    check_selector,
    probabilities,
    select,
)
from es_core.errors import InvalidArgument


def test_softmax_of_negative_distances_over_temperature() -> None:
    d = [0.2, 0.3, 0.7]
    p = probabilities(d, 0.1)
    expected = np.exp(-np.array(d) / 0.1) / np.exp(-np.array(d) / 0.1).sum()
    assert np.allclose(p, expected)
    assert math.isclose(float(p.sum()), 1.0)
    assert p[0] > p[1] > p[2]


def test_a_lower_temperature_sharpens_and_a_higher_one_flattens() -> None:
    d = [0.2, 0.3, 0.4]
    sharp, mild, flat = probabilities(d, 0.01), probabilities(d, 0.1), probabilities(d, 10.0)
    assert sharp[0] > mild[0] > flat[0]
    assert np.allclose(flat, 1 / 3, atol=0.01)


def test_softmax_does_not_overflow_on_far_distances() -> None:
    p = probabilities([1000.0, 1000.5, 5000.0], 0.001)
    assert np.isfinite(p).all() and math.isclose(float(p.sum()), 1.0)
    assert p[0] == pytest.approx(1.0)


def test_softmax_refuses_a_temperature_that_is_not_positive() -> None:
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            probabilities([0.1], bad)
    assert probabilities([], 1.0).size == 0


def test_distance_selector_keeps_what_is_within_the_threshold_closest_first() -> None:
    d = [0.5, 0.1, 0.3, 0.9]
    chosen = select(d, DistanceSelector(0.5), 0.1, limit=10)
    assert [c.index for c in chosen] == [1, 2, 0]
    assert [c.distance for c in chosen] == [0.1, 0.3, 0.5]
    # Probabilities are the calibrated ones, over all four.
    assert chosen[0].probability == pytest.approx(float(probabilities(d, 0.1)[1]))
    assert [c.index for c in select(d, DistanceSelector(0.5), 0.1, limit=2)] == [1, 2]
    assert select(d, DistanceSelector(0.05), 0.1, limit=10) == []


def test_probability_selector_keeps_what_is_probable_enough() -> None:
    d = [0.30, 0.31, 0.60]
    p = probabilities(d, 0.05)
    chosen = select(d, ProbabilitySelector(0.0, 0.2), 0.05, limit=10)
    assert [c.index for c in chosen] == [i for i in (0, 1) if p[i] >= 0.2]
    assert all(c.probability >= 0.2 for c in chosen)
    # min_probability 0: every category, most probable first, within the limit.
    assert [c.index for c in select(d, ProbabilitySelector(0.0, 0.0), 0.05, limit=2)] == [0, 1]


def test_the_selector_temperature_overrides_the_calibrated_one() -> None:
    d = [0.2, 0.4]
    own = select(d, ProbabilitySelector(1.0, 0.0), 0.01, limit=2)
    assert own[0].probability == pytest.approx(float(probabilities(d, 1.0)[0]))
    default = select(d, ProbabilitySelector(0.0, 0.0), 0.01, limit=2)
    assert default[0].probability == pytest.approx(float(probabilities(d, 0.01)[0]))


def test_ties_keep_the_given_order() -> None:
    chosen = select([0.4, 0.2, 0.2], ProbabilitySelector(), 0.1, limit=3)
    assert [c.index for c in chosen] == [1, 2, 0]


def _field(error: InvalidArgument) -> str:
    return error.violations[0].field


@pytest.mark.parametrize(
    ("selector", "metric", "field"),
    [
        (UnsetSelector(), "cosine", "selector"),
        (DistanceSelector(-0.1), "cosine", "selector.distance.max_distance"),
        (DistanceSelector(2.5), "cosine", "selector.distance.max_distance"),
        (DistanceSelector(math.nan), "dot", "selector.distance.max_distance"),
        (DistanceSelector(math.inf), "euclidean", "selector.distance.max_distance"),
        (DistanceSelector(-1.0), "euclidean", "selector.distance.max_distance"),
        (ProbabilitySelector(-0.5, 0.1), "cosine", "selector.probability.temperature"),
        (ProbabilitySelector(math.inf, 0.1), "cosine", "selector.probability.temperature"),
        (ProbabilitySelector(math.nan, 0.1), "cosine", "selector.probability.temperature"),
        (ProbabilitySelector(0.1, 1.0), "cosine", "selector.probability.min_probability"),
        (ProbabilitySelector(0.1, -0.01), "cosine", "selector.probability.min_probability"),
        (ProbabilitySelector(0.1, math.nan), "cosine", "selector.probability.min_probability"),
    ],
)
def test_bad_selectors_name_their_field(selector: object, metric: str, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_selector(selector, metric)  # type: ignore[arg-type]
    assert _field(info.value) == field


@pytest.mark.parametrize(
    ("selector", "metric"),
    [
        (DistanceSelector(0.0), "cosine"),
        (DistanceSelector(2.0), "cosine"),
        (DistanceSelector(-3.0), "dot"),
        (DistanceSelector(7.0), "euclidean"),
        (ProbabilitySelector(0.0, 0.0), "cosine"),
        (ProbabilitySelector(0.5, 0.999), "cosine"),
    ],
)
def test_selectors_in_range_pass(selector: object, metric: str) -> None:
    assert check_selector(selector, metric) == selector  # type: ignore[arg-type]
