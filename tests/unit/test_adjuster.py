"""The per-user adjuster moves clicked objects towards the query and skipped ones away, batched."""

from __future__ import annotations

from itertools import product
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from es_core.domain import Aggregation, Metric
from es_core.improvement.adjuster import (
    AdjusterSettings,
    Key,
    SessionExample,
    adjust,
    adjust_one_by_one,
)

DIM = 16
METRICS: tuple[Metric, ...] = ("cosine", "dot", "euclidean")
AGGREGATIONS: tuple[Aggregation, ...] = ("min", "avg")
COMBOS = list(product(METRICS, AGGREGATIONS))


def _unit(rng: np.random.Generator, *shape: int) -> npt.NDArray[np.float32]:
    v = rng.standard_normal(shape).astype(np.float32)
    unit: npt.NDArray[np.float32] = v / np.linalg.norm(v, axis=-1, keepdims=True)
    return unit


def _distance(
    query: npt.NDArray[Any], parts: npt.NDArray[Any], metric: Metric, aggregation: Aggregation
) -> float:
    """The index's distance (smaller = closer): per part, then MIN or AVG over the parts."""
    if metric == "cosine":
        d = 1 - parts @ query / (np.linalg.norm(parts, axis=1) * np.linalg.norm(query))
    elif metric == "dot":
        d = -(parts @ query)
    else:
        d = np.linalg.norm(parts - query, axis=1)
    return float(d.min() if aggregation == "min" else d.mean())


def _one_session() -> tuple[SessionExample, dict[Key, npt.NDArray[np.float32]]]:
    rng = np.random.default_rng(7)
    items = {
        ("u1", "clicked"): _unit(rng, 2, DIM),
        ("u1", "skipped-a"): _unit(rng, 3, DIM),
        ("u1", "skipped-b"): _unit(rng, 1, DIM),
        ("u1", "not-shown"): _unit(rng, 2, DIM),
        ("u2", "clicked"): _unit(rng, 2, DIM),  # another user's copy of the same object
    }
    session = SessionExample("u1", _unit(rng, DIM), ["clicked"], ["skipped-a", "skipped-b"])
    return session, items


def _disjoint_sessions(
    n: int, seed: int = 0
) -> tuple[list[SessionExample], dict[Key, npt.NDArray[np.float32]]]:
    """One user per session, 5 shown objects of 1-3 parts, 1-2 clicks, some weighted."""
    rng = np.random.default_rng(seed)
    sessions, items = [], {}
    for s in range(n):
        user = f"user-{s}"
        objects = [f"obj-{j}" for j in range(5)]
        for o in objects:
            items[(user, o)] = _unit(rng, int(rng.integers(1, 4)), DIM)
        n_clicked = int(rng.integers(1, 3))
        weights = {objects[0]: 2.0} if s % 2 else None
        sessions.append(
            SessionExample(user, _unit(rng, DIM), objects[:n_clicked], objects[n_clicked:], weights)
        )
    return sessions, items


@pytest.mark.parametrize(("metric", "aggregation"), COMBOS)
def test_clicked_gets_closer_and_skipped_farther(metric: Metric, aggregation: Aggregation) -> None:
    # Without the skip floor (the seed's push): here the skipped objects already score below the
    # clicked one, so the hinge would leave them alone (tested apart below).
    session, items = _one_session()
    settings = AdjusterSettings(skip_floor=False)
    out = adjust([session], items, metric=metric, aggregation=aggregation, settings=settings)

    q = session.query_vector
    for o in session.clicked:
        key = ("u1", o)
        assert _distance(q, out[key], metric, aggregation) < _distance(
            q, items[key], metric, aggregation
        )
    for o in session.not_clicked:
        key = ("u1", o)
        assert _distance(q, out[key], metric, aggregation) > _distance(
            q, items[key], metric, aggregation
        )
    # Exactly the shown objects of this user come back, with their shapes; nothing else.
    assert list(out) == [("u1", "clicked"), ("u1", "skipped-a"), ("u1", "skipped-b")]
    for key, parts in out.items():
        assert parts.shape == items[key].shape
        assert parts.dtype == np.float32


@pytest.mark.parametrize(("metric", "aggregation"), COMBOS)
@pytest.mark.parametrize(
    "settings",
    [
        AdjusterSettings(),
        AdjusterSettings(
            adjustment_rate=0.05, num_iterations=7, softmin_temperature=0.3, weight_decay=0.01
        ),
        AdjusterSettings(adjustment_rate=0.05, max_step=0.05, skip_floor=False),
    ],
    ids=["defaults", "custom", "seed-push-tight-trust-region"],
)
def test_batched_equals_one_by_one_on_disjoint_sessions(
    metric: Metric, aggregation: Aggregation, settings: AdjusterSettings
) -> None:
    sessions, items = _disjoint_sessions(12)
    clicked = {(s.user_id, o) for s in sessions for o in s.clicked}
    batched = adjust(sessions, items, metric=metric, aggregation=aggregation, settings=settings)
    looped = adjust_one_by_one(
        sessions, items, metric=metric, aggregation=aggregation, settings=settings
    )
    assert list(batched) == list(looped) == list(items)  # every object is shown once
    for key in items:
        assert batched[key].shape == items[key].shape
        np.testing.assert_allclose(batched[key], looped[key], atol=1e-4, rtol=0)
        if key in clicked or not settings.skip_floor:
            assert not np.allclose(batched[key], items[key])  # it did move


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_cosine_output_has_unit_parts(aggregation: Aggregation) -> None:
    sessions, items = _disjoint_sessions(4)
    items = {k: 3.0 * v for k, v in items.items()}  # not unit on the way in
    for fn in (adjust, adjust_one_by_one):
        out = fn(sessions, items, metric="cosine", aggregation=aggregation)
        for parts in out.values():
            np.testing.assert_allclose(np.linalg.norm(parts, axis=1), 1.0, atol=1e-5)


def test_an_object_shown_in_two_sessions_learns_from_both() -> None:
    rng = np.random.default_rng(3)
    items = {("u", "a"): _unit(rng, 2, DIM), ("u", "b"): _unit(rng, 1, DIM)}
    q1, q2 = _unit(rng, DIM), _unit(rng, DIM)
    s1 = SessionExample("u", q1, ["a"], ["b"])
    s2 = SessionExample("u", q2, ["a"], [])
    both = adjust([s1, s2], items, metric="cosine", aggregation="avg")
    first_only = adjust([s1], items, metric="cosine", aggregation="avg")
    for q in (q1, q2):
        assert _distance(q, both[("u", "a")], "cosine", "avg") < _distance(
            q, items[("u", "a")], "cosine", "avg"
        )
    assert not np.allclose(both[("u", "a")], first_only[("u", "a")])
    np.testing.assert_allclose(both[("u", "b")], first_only[("u", "b")], atol=1e-6)


def test_zero_weight_click_leaves_the_object_alone() -> None:
    session, items = _one_session()
    session = SessionExample("u1", session.query_vector, ["clicked"], [], {"clicked": 0.0})
    out = adjust([session], items, metric="dot", aggregation="min")
    np.testing.assert_array_equal(out[("u1", "clicked")], items[("u1", "clicked")])


def test_deterministic_and_inputs_untouched() -> None:
    sessions, items = _disjoint_sessions(6, seed=5)
    before = {k: v.copy() for k, v in items.items()}
    first = adjust(sessions, items, metric="euclidean", aggregation="min")
    second = adjust(sessions, items, metric="euclidean", aggregation="min")
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])
        np.testing.assert_array_equal(items[key], before[key])


def test_empty_input_gives_empty_output() -> None:
    _, items = _one_session()
    for fn in (adjust, adjust_one_by_one):
        assert fn([], items, metric="cosine", aggregation="min") == {}
        assert fn([], {}, metric="dot", aggregation="avg") == {}
        nothing_shown = SessionExample("u1", np.ones(DIM, np.float32), [], [])
        assert fn([nothing_shown], items, metric="cosine", aggregation="min") == {}


def _bad(session: SessionExample, items: dict[Key, Any], match: str) -> None:
    for fn in (adjust, adjust_one_by_one):
        with pytest.raises(ValueError, match=match):
            fn([session], items, metric="cosine", aggregation="min")


def test_bad_input_raises_value_error() -> None:
    session, items = _one_session()
    q = session.query_vector
    _bad(SessionExample("u1", q, ["nope"], []), items, r"clicked\[0\]: unknown object.*'nope'")
    _bad(SessionExample("u3", q, ["clicked"], []), items, "unknown object.*'u3'")
    _bad(SessionExample("u1", q[:8], ["clicked"], []), items, "dimension 16.*dimension 8")
    _bad(
        SessionExample("u1", q, ["clicked"], []),
        {("u1", "clicked"): np.ones(DIM, np.float32)},
        "n_parts x d",
    )
    _bad(SessionExample("u1", q, ["clicked"], ["clicked"]), items, "listed twice")
    _bad(SessionExample("u1", q, ["clicked"], [], {"skipped-a": 1.0}), items, "not clicked")
    _bad(SessionExample("u1", q, ["clicked"], [], {"clicked": -1.0}), items, ">= 0")
    _bad(SessionExample("u1", q * np.nan, ["clicked"], []), items, "non-finite")
    two = [session, SessionExample("u1", np.ones(8, np.float32), [], [])]
    with pytest.raises(ValueError, match=r"sessions\[1\].query_vector has dimension 8"):
        adjust(two, items, metric="dot", aggregation="avg")
    with pytest.raises(ValueError, match="metric must be one of"):
        adjust([session], items, metric="l1", aggregation="min")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aggregation must be one of"):
        adjust([session], items, metric="dot", aggregation="max")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adjustment_rate"):
        AdjusterSettings(adjustment_rate=0.0)
    with pytest.raises(ValueError, match="softmin_temperature"):
        AdjusterSettings(softmin_temperature=-1.0)


@pytest.mark.parametrize("metric", METRICS)
def test_trust_region_bounds_how_far_one_call_moves_a_part(metric: Metric) -> None:
    sessions, items = _disjoint_sessions(6, seed=11)
    loose = AdjusterSettings(adjustment_rate=0.2, num_iterations=20, max_step=float("inf"))
    tight = AdjusterSettings(adjustment_rate=0.2, num_iterations=20, max_step=0.05)
    # Under cosine the bound is on the move before re-normalisation: its chord on the sphere.
    bound = 0.05 if metric != "cosine" else float(np.sqrt(2 - 2 * np.sqrt(1 - 0.05**2)))
    free = adjust(sessions, items, metric=metric, aggregation="avg", settings=loose)
    assert max(np.linalg.norm(free[k] - items[k], axis=1).max() for k in free) > 5 * bound
    for fn in (adjust, adjust_one_by_one):
        capped = fn(sessions, items, metric=metric, aggregation="avg", settings=tight)
        moves = [np.linalg.norm(capped[k] - items[k], axis=1).max() for k in capped]
        assert max(moves) <= bound + 1e-5
        assert max(moves) > 0.9 * bound  # the cap binds, and the parts still move


def _page(users: tuple[str, ...]) -> tuple[npt.NDArray[np.float32], dict[Key, Any]]:
    """30 one-part objects whose cosine to the query falls from 0.80 in steps of 0.004."""
    rng = np.random.default_rng(1)
    query = np.zeros(DIM, np.float32)
    query[0] = 1.0
    items: dict[Key, Any] = {}
    for i in range(30):
        s = 0.8 - 0.004 * i
        rest = rng.standard_normal(DIM - 1)
        part = np.concatenate([[s], np.sqrt(1 - s * s) * rest / np.linalg.norm(rest)])
        for user in users:
            items[(user, f"o{i}")] = part.astype(np.float32)[None, :]
    return query, items


def _top10(query: npt.NDArray[Any], view: dict[str, npt.NDArray[Any]]) -> list[str]:
    return sorted(view, key=lambda o: _distance(query, view[o], "cosine", "min"))[:10]


@pytest.mark.parametrize("fn", [adjust, adjust_one_by_one])
def test_a_noise_click_does_not_push_relevant_results_out_of_the_top_10(fn: Any) -> None:
    query, items = _page(("u1", "u2"))
    # o0 and o1 are relevant; the user skips them and clicks o6 by mistake (a noise click).
    noise = SessionExample("u1", query, ["o6"], [f"o{i}" for i in range(6)])
    rate = 0.01  # big steps, so that the push overshoots without the floor
    guarded = fn(
        [noise],
        items,
        metric="cosine",
        aggregation="min",
        settings=AdjusterSettings(adjustment_rate=rate),
    )
    seed = fn(
        [noise],
        items,
        metric="cosine",
        aggregation="min",
        settings=AdjusterSettings(adjustment_rate=rate, skip_floor=False, max_step=float("inf")),
    )

    def view(out: dict[Key, Any], user: str) -> dict[str, Any]:
        return {o: out.get((u, o), v) for (u, o), v in items.items() if u == user}

    assert _top10(query, view(guarded, "u1"))[0] == "o6"  # the click still counts
    assert {"o0", "o1"} <= set(_top10(query, view(guarded, "u1")))
    assert not {"o0", "o1"} & set(_top10(query, view(seed, "u1")))  # what the floor prevents
    # Every skipped result ends no lower than the click was: the rest of the page keeps order.
    assert _top10(query, view(guarded, "u1"))[1:7] == [f"o{i}" for i in range(6)]
    # The bystander: no key of u2 is adjusted, so u2's ranking is the original one.
    assert not any(u == "u2" for u, _ in guarded)
    assert _top10(query, view(guarded, "u2")) == [f"o{i}" for i in range(10)]
