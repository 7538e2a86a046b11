"""How a query's distances to every category become the categories a prediction returns.

Two selectors, as in the seed: every category within a distance, or every category whose
calibrated probability is high enough. Probabilities are a softmax of ``-distance / T`` over
all the categories of the collection, computed exactly (a categories collection holds at most
``Settings.categories_max_per_collection`` categories, 10,000 by default), so they sum to 1
over the collection whichever selector returned them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from es_core.domain import Metric
from es_core.errors import InvalidArgument

DISTANCE_FIELD = "selector.distance.max_distance"
TEMPERATURE_FIELD = "selector.probability.temperature"
MIN_PROBABILITY_FIELD = "selector.probability.min_probability"


@dataclass(frozen=True)
class DistanceSelector:
    """Every category at ``max_distance`` or closer, in the model's metric."""

    max_distance: float


@dataclass(frozen=True)
class ProbabilitySelector:
    """Every category whose probability is at least ``min_probability``; ``temperature`` 0
    means the plugin's calibrated temperature."""

    temperature: float = 0.0
    min_probability: float = 0.0


@dataclass(frozen=True)
class UnsetSelector:
    """A selector the request set without choosing a kind: refused."""


CategorySelector = DistanceSelector | ProbabilitySelector
RequestedSelector = CategorySelector | UnsetSelector


def check_selector(selector: RequestedSelector, metric: Metric) -> CategorySelector:
    """The selector, or INVALID_ARGUMENT naming the field that is out of range."""
    if isinstance(selector, DistanceSelector):
        check_max_distance(selector.max_distance, metric)
        return selector
    if isinstance(selector, ProbabilitySelector):
        check_temperature(selector.temperature, allow_default=True)
        if not math.isfinite(selector.min_probability) or not (
            0.0 <= selector.min_probability < 1.0
        ):
            raise InvalidArgument.field_error(MIN_PROBABILITY_FIELD, "must be in [0, 1)")
        return selector
    raise InvalidArgument.field_error("selector", "set exactly one of distance or probability")


def check_max_distance(max_distance: float, metric: Metric) -> None:
    """Finite, and within what the metric can give: [0, 2] for cosine, >= 0 for euclidean
    (dot distances are negated inner products: any finite value)."""
    if not math.isfinite(max_distance):
        raise InvalidArgument.field_error(DISTANCE_FIELD, "must be a finite number")
    if metric == "cosine" and not 0.0 <= max_distance <= 2.0:
        raise InvalidArgument.field_error(DISTANCE_FIELD, "must be in [0, 2] for cosine")
    if metric == "euclidean" and max_distance < 0.0:
        raise InvalidArgument.field_error(DISTANCE_FIELD, "must not be negative for euclidean")


def check_temperature(temperature: float, *, allow_default: bool) -> None:
    """Finite and > 0; 0 too when it stands for the plugin's calibrated temperature."""
    if not math.isfinite(temperature) or temperature < 0.0:
        raise InvalidArgument.field_error(TEMPERATURE_FIELD, "must be a finite number >= 0")
    if temperature == 0.0 and not allow_default:
        raise InvalidArgument.field_error(TEMPERATURE_FIELD, "must be > 0")


def probabilities(distances: npt.ArrayLike, temperature: float) -> npt.NDArray[np.float64]:
    """softmax(-distance / temperature), shifted by the smallest distance so no term
    overflows; an empty input gives an empty output."""
    if temperature <= 0.0 or not math.isfinite(temperature):
        raise ValueError(f"temperature must be a finite number > 0, not {temperature}")
    d = np.asarray(distances, dtype=np.float64)
    if d.size == 0:
        return d
    z = np.exp(-(d - d.min()) / temperature)
    result: npt.NDArray[np.float64] = z / z.sum()
    return result


@dataclass(frozen=True)
class Selected:
    """A chosen category: its index in the distances given, its distance and probability."""

    index: int
    distance: float
    probability: float


def select(
    distances: npt.ArrayLike,
    selector: CategorySelector,
    calibrated_temperature: float,
    limit: int,
) -> list[Selected]:
    """The categories ``selector`` keeps, most probable (closest) first, at most ``limit``;
    ties keep the order of ``distances``. Probabilities use the selector's temperature when it
    sets one, else the calibrated one."""
    d = np.asarray(distances, dtype=np.float64)
    temperature = calibrated_temperature
    if isinstance(selector, ProbabilitySelector) and selector.temperature > 0.0:
        temperature = selector.temperature
    p = probabilities(d, temperature)
    if isinstance(selector, DistanceSelector):
        keep = d <= selector.max_distance
    else:
        keep = p >= selector.min_probability
    order = [int(i) for i in np.argsort(d, kind="stable") if keep[i]]
    return [Selected(i, float(d[i]), float(p[i])) for i in order[:limit]]
