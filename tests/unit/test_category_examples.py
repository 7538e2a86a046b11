"""Category examples from hand-made sessions; reading the category out of a payload; the
category evaluation and its gate on hand-made rankings; the target field of StartFineTuning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from embedding_studio.v1 import fine_tune_pb2
from es_core.categories.evaluation import ACCURACY, MRR, judge, score_rankings
from es_core.categories.examples import build_category_examples, category_of
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.start import StartFineTuningInput, _create
from es_core.fine_tuning.trainer import training_rows
from es_core.tasks.model import Task
from es_server.convert import fine_tuning_task_to_proto

WEIGHTS = {"click": 1.0, "purchase": 3.0}
T0 = datetime(2026, 11, 1, tzinfo=UTC)
CATEGORIES = ("headphones", "tent", "jacket")
ITEMS = {"p1": "headphones", "p2": "headphones", "p3": "tent", "p4": "jacket", "p5": "unknown"}


def session(
    session_id: str,
    query: str,
    events: list[tuple[str, str]],
    *,
    irrelevant: bool = False,
    minute: int = 0,
) -> Session:
    shown = ["p1", "p2", "p3", "p4", "p5", "p6"]
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


def build(sessions: list[Session]) -> tuple[list[Example], dict[str, int]]:
    examples, report = build_category_examples(sessions, WEIGHTS, ITEMS, CATEGORIES)
    return examples, report.as_dict()


def test_a_click_stands_for_its_category_and_every_other_category_is_a_negative() -> None:
    [example], report = build([session("s1", "vorta red", [("p2", "click")])])
    assert example.query == "vorta red"
    assert example.positives == {"headphones": 1.0}
    assert example.negatives == ("jacket", "tent")
    assert example.session_ids == ("s1",)
    assert report["examples"] == 1


def test_clicks_on_one_category_add_up_and_sessions_of_a_query_merge() -> None:
    examples, report = build(
        [
            session("s1", "Vorta  red", [("p1", "click"), ("p2", "purchase")]),
            session("s2", "vorta red", [("p3", "click")], minute=1),
        ]
    )
    [example] = examples
    # The strongest event per item, then summed per category.
    assert example.positives == {"headphones": 4.0, "tent": 1.0}
    assert example.negatives == ("jacket",)
    assert example.session_ids == ("s1", "s2")
    assert report["merged"] == 1


def test_sessions_that_teach_nothing_are_counted_not_kept() -> None:
    examples, report = build(
        [
            session("irrelevant", "a", [("p1", "click")], irrelevant=True),
            session("no-query", "  ", [("p1", "click")]),
            session("no-click", "b", []),
            session("unweighted", "c", [("p1", "view")]),
            # p5 names a category the collection does not hold; p6 names none.
            session("unknown", "d", [("p5", "click"), ("p6", "click")]),
            session("kept", "e", [("p4", "click")]),
        ]
    )
    assert [e.query for e in examples] == ["e"]
    assert report == {
        "sessions": 6,
        "irrelevant": 1,
        "without_query": 1,
        "without_positives": 2,
        "without_category": 1,
        "merged": 0,
        "examples": 1,
    }


def test_no_sessions_no_examples() -> None:
    examples, report = build([])
    assert examples == [] and set(report.values()) == {0}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"category": "tent"}, "tent"),
        ({"category": 7}, "7"),
        ({"category": "  "}, None),
        ({"category": True}, None),
        ({"category": 1.5}, None),
        ({"category": ["tent"]}, None),
        ({"category": None}, None),
        ({"kind": "tent"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_category_of_a_payload(payload: dict[str, object] | None, expected: str | None) -> None:
    assert category_of(payload, "category") == expected


def test_training_rows_pair_each_query_with_its_category_text_against_another() -> None:
    [example], _ = build([session("s1", "vorta red", [("p1", "click")])])
    texts = {"headphones": ["headphones"], "tent": ["tent"], "jacket": ["jacket"]}
    rows = training_rows([example], texts)
    assert set(rows["anchor"]) == {"vorta red"}
    assert set(rows["positive"]) == {"headphones"}
    assert set(rows["negative"]) <= {"tent", "jacket"} and rows["negative"]


def test_scores_are_top_1_accuracy_and_reciprocal_rank() -> None:
    examples = [
        Example("a", {"tent": 1.0}),
        Example("b", {"tent": 1.0, "jacket": 1.0}),
        Example("c", {"headphones": 1.0}),
    ]
    rankings = [
        ["tent", "jacket", "headphones"],
        ["headphones", "jacket", "tent"],
        ["tent", "jacket"],  # its category is not ranked at all
    ]
    scores = score_rankings(rankings, examples)
    assert scores[ACCURACY] == [1.0, 0.0, 0.0]
    assert scores[MRR] == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError):
        score_rankings(rankings[:2], examples)


def test_the_gate_refuses_a_worse_or_equal_model_and_passes_a_clearly_better_one() -> None:
    worse = {ACCURACY: [0.0] * 20, MRR: [0.5] * 20}
    better = {ACCURACY: [1.0] * 20, MRR: [1.0] * 20}
    refused = judge(worse, better, margin=0.0, confidence=0.95, seed=0)
    assert not refused.deployable and "not above" in refused.reason
    assert not judge(better, better, margin=0.0, confidence=0.95, seed=0).deployable
    passed = judge(better, worse, margin=0.0, confidence=0.95, seed=0)
    assert passed.deployable
    assert passed.figures["gain.mrr"] == pytest.approx(0.5)
    assert passed.figures["in_service.accuracy@1"] == 0.0


def test_no_held_out_queries_is_never_deployable() -> None:
    assert not judge({}, {}, margin=0.0, confidence=0.95, seed=0).deployable


async def test_an_unknown_target_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidArgument) as raised:
        # Refused before the database or the plugin is asked anything.
        await _create(None, Settings(), None, StartFineTuningInput(target="labels"))  # type: ignore[arg-type]
    assert [v.field for v in raised.value.violations] == ["target"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, fine_tune_pb2.FINE_TUNING_TARGET_ITEMS),  # tasks from before the field
        ({"target": "items"}, fine_tune_pb2.FINE_TUNING_TARGET_ITEMS),
        ({"target": "categories"}, fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES),
    ],
)
def test_a_fine_tuning_task_says_its_target(params: dict[str, str], expected: int) -> None:
    result = {"model_id": "m-v2", "metrics": {"mrr": 0.8}, "in_service_metrics": {"mrr": 0.5}}
    task = Task("t1", "fine_tuning", "done", params=params, result=result)
    converted = fine_tuning_task_to_proto(task)
    assert converted.target == expected
    assert converted.metrics["mrr"] == 0.8 and converted.metrics["in_service.mrr"] == 0.5
