"""The hyperparameter search: a space of candidate values per name, overridden per request,
and the trials drawn from it."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from es_core.errors import InvalidArgument

MAX_VALUES_PER_NAME = 16


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: its default candidates and the check every candidate must pass."""

    defaults: tuple[Any, ...]
    # Returns a description of what is wrong with a value, or "" when it is fine.
    check: Callable[[Any], str]


def number_in(low: float, high: float, *, integer: bool = False) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "must be a number"
        if integer and float(value) != int(value):
            return "must be a whole number"
        if not low <= float(value) <= high:
            return f"must be between {low:g} and {high:g}"
        return ""

    return check


def one_of(*choices: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        return "" if value in choices else f"must be one of {', '.join(choices)}"

    return check


def apply_overrides(
    dimensions: Mapping[str, Dimension], overrides: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """The default space with each override (a value or a list of values) in place of its
    defaults; InvalidArgument names the bad entry as ``hyperparameters.<name>[<i>]``."""
    space = {name: list(d.defaults) for name, d in dimensions.items()}
    for name, given in overrides.items():
        where = f"hyperparameters.{name}"
        if name not in dimensions:
            raise InvalidArgument.field_error(
                where, f"is not a hyperparameter; known: {', '.join(sorted(dimensions))}"
            )
        values = list(given) if isinstance(given, list | tuple) else [given]
        if not values:
            raise InvalidArgument.field_error(where, "must list at least one value")
        if len(values) > MAX_VALUES_PER_NAME:
            raise InvalidArgument.field_error(
                where, f"must list at most {MAX_VALUES_PER_NAME} values"
            )
        for i, value in enumerate(values):
            problem = dimensions[name].check(value)
            if problem:
                raise InvalidArgument.field_error(f"{where}[{i}]", problem)
        integer_default = all(type(v) is int for v in dimensions[name].defaults)
        space[name] = [int(v) if integer_default else v for v in dict.fromkeys(values)]
    return space


def combinations(space: Mapping[str, Sequence[Any]]) -> int:
    """How many trials the whole grid of ``space`` holds, counted, never built."""
    return math.prod(len(values) for values in space.values())


def check_space_size(space: Mapping[str, Sequence[Any]], limit: int) -> None:
    """InvalidArgument naming ``hyperparameters`` when the grid holds more than ``limit``
    combinations (ES_MAX_HYPERPARAMETER_COMBINATIONS): a few hundred bytes of candidates can
    multiply into millions of trials."""
    size = combinations(space)
    if size > limit:
        counts = ", ".join(f"{name} {len(v)}" for name, v in sorted(space.items()) if len(v) > 1)
        raise InvalidArgument.field_error(
            "hyperparameters",
            f"has {size} combinations of candidates ({counts}), more than the {limit} allowed "
            "(ES_MAX_HYPERPARAMETER_COMBINATIONS)",
        )


def trials(space: Mapping[str, list[Any]], max_trials: int, seed: int = 0) -> list[dict[str, Any]]:
    """Every combination when there are at most ``max_trials``, else a seeded sample of them.

    The first trial is always the first value of every dimension (the defaults' lead choice),
    so a search of one trial trains the plugin's recommended setting. Only the trials drawn
    are built: combinations are numbered in grid order and decoded one by one.
    """
    names = sorted(space)
    total = combinations(space)
    if total <= max_trials:
        picked: Sequence[int] = range(total)
    else:
        picked = [0, *random.Random(seed).sample(range(1, total), max_trials - 1)]
    return [_combination(names, space, index) for index in picked]


def _combination(names: list[str], space: Mapping[str, list[Any]], index: int) -> dict[str, Any]:
    """The ``index``-th combination in grid order (``itertools.product``: last name fastest)."""
    chosen: dict[str, Any] = {}
    for name in reversed(names):
        index, position = divmod(index, len(space[name]))
        chosen[name] = space[name][position]
    return {name: chosen[name] for name in names}
