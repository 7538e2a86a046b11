"""The example builder on hand-made sessions, and the train / test split by query."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from es_core.clickstream.model import Event, Session, ShownResult
from es_core.fine_tuning.examples import (
    Example,
    build_examples,
    normalize_query,
    split_by_query,
)

WEIGHTS = {"click": 1.0, "add_to_cart": 2.0, "purchase": 3.0}
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def session(
    session_id: str,
    query: str,
    shown: list[str],
    events: list[tuple[str, str]],
    *,
    irrelevant: bool = False,
    minute: int = 0,
) -> Session:
    return Session(
        session_id=session_id,
        results=[ShownResult(o, rank) for rank, o in enumerate(shown)],
        query_text=query,
        irrelevant=irrelevant,
        create_time=T0 + timedelta(minutes=minute),
        events=[
            Event(f"{session_id}-{i}", session_id, obj, kind)
            for i, (obj, kind) in enumerate(events)
        ],
    )


def test_positives_and_hard_negatives_follow_the_cascade() -> None:
    s = session("s1", "aspirin heart", ["a", "b", "c", "d", "e"], [("c", "click")])
    [example], report = build_examples([s], WEIGHTS)
    assert example.positives == {"c": 1.0}
    # Shown above the deepest click and not clicked: a and b. Below it (d, e): no judgement.
    assert example.negatives == ("a", "b")
    assert example.shown == ("a", "b", "c", "d", "e")
    assert report.examples == 1 and report.positives == 1 and report.negatives == 2


def test_negatives_stop_at_the_deepest_positive_and_skip_other_positives() -> None:
    s = session("s1", "q", ["a", "b", "c", "d", "e"], [("b", "click"), ("d", "click")])
    [example], _ = build_examples([s], WEIGHTS)
    assert example.positives == {"b": 1.0, "d": 1.0}
    assert example.negatives == ("a", "c")


def test_click_on_the_top_result_has_no_hard_negative() -> None:
    [example], _ = build_examples([session("s1", "q", ["a", "b"], [("a", "click")])], WEIGHTS)
    assert example.negatives == ()


def test_weight_is_the_strongest_event_of_the_object_in_a_session() -> None:
    s = session("s1", "q", ["a", "b"], [("b", "click"), ("b", "purchase"), ("b", "click")])
    [example], _ = build_examples([s], WEIGHTS)
    assert example.positives == {"b": 3.0}
    assert example.grades() == {"b": 3}


def test_events_without_weight_are_not_positives() -> None:
    s = session("s1", "q", ["a", "b"], [("b", "hover"), ("a", "share")])
    examples, report = build_examples([s], WEIGHTS)
    assert examples == [] and report.without_positives == 1


def test_irrelevant_and_query_less_sessions_give_no_example() -> None:
    sessions = [
        session("s1", "q", ["a", "b"], [("b", "click")], irrelevant=True),
        session("s2", "   ", ["a", "b"], [("b", "click")]),
        session("s3", "", ["a", "b"], [("b", "click")]),
        session("s4", "kept", ["a", "b"], [("b", "click")]),
    ]
    examples, report = build_examples(sessions, WEIGHTS)
    assert [e.query for e in examples] == ["kept"]
    assert (report.irrelevant, report.without_query, report.examples) == (1, 2, 1)
    assert report.sessions == 4


def test_repeated_queries_merge_and_a_positive_is_never_a_negative() -> None:
    sessions = [
        # b is passed over here but clicked for the same query by someone else.
        session("s1", "Aspirin  Heart", ["a", "b", "c"], [("c", "click")], minute=0),
        session("s2", "aspirin heart", ["b", "d", "e"], [("b", "add_to_cart")], minute=1),
        session("s3", "aspirin heart ", ["c", "a"], [("c", "click")], minute=2),
    ]
    [example], report = build_examples(sessions, WEIGHTS)
    assert example.query == "Aspirin  Heart"  # the first session's wording
    assert example.positives == {"c": 2.0, "b": 2.0}
    assert example.negatives == ("a",)
    assert example.session_ids == ("s1", "s2", "s3")
    assert report.merged == 2 and report.examples == 1
    assert example.grades() == {"c": 2, "b": 2}


def test_examples_come_in_order_of_each_querys_first_session() -> None:
    sessions = [
        session("late", "second", ["a"], [("a", "click")], minute=5),
        session("early", "first", ["a"], [("a", "click")], minute=1),
    ]
    examples, _ = build_examples(sessions, WEIGHTS)
    assert [e.query for e in examples] == ["first", "second"]


def test_clicks_on_objects_not_shown_count_as_positives_without_negatives() -> None:
    s = session("s1", "q", ["a", "b"], [("zzz", "click")])
    [example], _ = build_examples([s], WEIGHTS)
    assert example.positives == {"zzz": 1.0}
    assert example.negatives == ()


def test_query_retriever_decides_the_query_text() -> None:
    s = session("s1", "Some Query", ["a"], [("a", "click")])
    [example], _ = build_examples([s], WEIGHTS, query_of=str.upper)
    assert example.query == "SOME QUERY"


def test_normalize_query() -> None:
    assert normalize_query("  A\tb  C ") == "a b c"


def _examples(n: int) -> list[Example]:
    return [Example(f"query {i}", {f"o{i}": 1.0}) for i in range(n)]


def test_split_keeps_each_query_on_one_side_and_is_stable() -> None:
    examples = _examples(100)
    train, test = split_by_query(examples, 0.2, seed=7)
    assert len(test) == 20 and len(train) == 80
    assert {e.key for e in train}.isdisjoint({e.key for e in test})
    # Order of the input does not change who is held out.
    train2, test2 = split_by_query(list(reversed(examples)), 0.2, seed=7)
    assert {e.key for e in test2} == {e.key for e in test}
    # Another seed holds out others.
    _, test3 = split_by_query(examples, 0.2, seed=8)
    assert {e.key for e in test3} != {e.key for e in test}


def test_split_gives_each_side_at_least_one_example() -> None:
    train, test = split_by_query(_examples(2), 0.01)
    assert len(train) == 1 and len(test) == 1
    train, test = split_by_query(_examples(1), 0.5)
    assert len(train) == 1 and test == []


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_split_rejects_fractions_outside_zero_one(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        split_by_query(_examples(3), fraction)
