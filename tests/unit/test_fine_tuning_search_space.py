"""The hyperparameter space: overrides, their checks, and the trials drawn from it."""

from __future__ import annotations

from typing import Any

import pytest

from es_core.errors import InvalidArgument
from es_core.fine_tuning.search_space import (
    apply_overrides,
    check_space_size,
    combinations,
    trials,
)
from es_core.fine_tuning.trainer import DIMENSIONS


def test_defaults_without_overrides() -> None:
    space = apply_overrides(DIMENSIONS, {})
    assert space == {name: list(d.defaults) for name, d in DIMENSIONS.items()}


def test_a_value_or_a_list_replaces_the_defaults() -> None:
    space = apply_overrides(DIMENSIONS, {"learning_rate": 1e-4, "epochs": [1.0, 2.0, 2]})
    assert space["learning_rate"] == [1e-4]
    # Whole floats (as a protobuf Struct sends them) become ints, duplicates go.
    assert space["epochs"] == [1, 2]
    assert all(type(v) is int for v in space["epochs"])


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"learning_rat": [1e-5]}, "hyperparameters.learning_rat", "not a hyperparameter"),
        ({"learning_rate": []}, "hyperparameters.learning_rate", "at least one"),
        ({"learning_rate": [-1.0]}, "hyperparameters.learning_rate[0]", "between"),
        ({"learning_rate": [1e-5, "fast"]}, "hyperparameters.learning_rate[1]", "number"),
        ({"learning_rate": [True]}, "hyperparameters.learning_rate[0]", "number"),
        ({"loss": ["nope"]}, "hyperparameters.loss[0]", "one of"),
        ({"epochs": [1.5]}, "hyperparameters.epochs[0]", "whole number"),
        ({"epochs": [0]}, "hyperparameters.epochs[0]", "between"),
        ({"frozen_layers": [-1]}, "hyperparameters.frozen_layers[0]", "between"),
        ({"epochs": list(range(1, 19))}, "hyperparameters.epochs", "at most 16"),
    ],
)
def test_bad_overrides_name_the_entry(overrides: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        apply_overrides(DIMENSIONS, overrides)
    assert caught.value.violations[0].field == field
    assert words in caught.value.message


def test_trials_enumerate_a_small_grid_with_the_defaults_first() -> None:
    space = {"a": [1, 2], "b": ["x", "y"]}
    plan = trials(space, max_trials=10)
    assert plan[0] == {"a": 1, "b": "x"}
    assert len(plan) == 4 and len({tuple(sorted(t.items())) for t in plan}) == 4


def test_trials_sample_a_large_grid_deterministically() -> None:
    space = {"a": list(range(10)), "b": list(range(10))}
    plan = trials(space, max_trials=5, seed=3)
    assert len(plan) == 5
    assert plan[0] == {"a": 0, "b": 0}
    assert plan == trials(space, max_trials=5, seed=3)
    assert plan != trials(space, max_trials=5, seed=4)
    assert len({tuple(sorted(t.items())) for t in plan}) == 5


def test_default_space_is_two_learning_rates_the_measured_best_first() -> None:
    plan = trials(apply_overrides(DIMENSIONS, {}), max_trials=100)
    assert [(t["learning_rate"], t["frozen_layers"], t["epochs"]) for t in plan] == [
        (5e-5, 0, 1),
        (2e-5, 0, 1),
    ]


def test_a_huge_space_is_refused_naming_the_field_before_any_trial_is_built() -> None:
    # Sixteen candidates for each of seven names: 16**7 combinations from a few hundred bytes.
    overrides = {
        "learning_rate": [1e-6 * (i + 1) for i in range(16)],
        "epochs": list(range(1, 17)),
        "frozen_layers": list(range(16)),
        "scale": [float(i + 1) for i in range(16)],
        "margin": [0.05 * (i + 1) for i in range(16)],
        "corpus_pairs": [0.5 * i for i in range(16)],
    }
    space = apply_overrides(DIMENSIONS, overrides)
    assert combinations(space) == 16**6
    with pytest.raises(InvalidArgument) as caught:
        check_space_size(space, 4096)
    assert caught.value.violations[0].field == "hyperparameters"
    assert f"has {16**6} combinations" in caught.value.message
    assert "learning_rate 16" in caught.value.message and "at most" not in caught.value.message
    # Drawing trials from it builds only the trials drawn, the defaults' lead choice first.
    plan = trials(space, max_trials=4, seed=1)
    assert len(plan) == 4 and plan[0] == {name: values[0] for name, values in space.items()}


def test_a_space_within_the_limit_passes() -> None:
    check_space_size(apply_overrides(DIMENSIONS, {"epochs": [1, 2, 3]}), 6)
