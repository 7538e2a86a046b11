"""Each kind's result read as its type from the JSON a worker stored, and returned by the API
in the ``Task.outcome`` field named for the kind."""

from __future__ import annotations

from embedding_studio.v1 import common_pb2
from es_core.tasks.model import QUEUE_FOR_KIND, TASK_KINDS, Task
from es_core.tasks.results import (
    DeploymentResult,
    ImprovementResult,
    RankingFitResult,
    ReindexResult,
    result_of,
)
from es_server.convert import task_to_proto


def _task(kind: str, result: dict[str, object]) -> Task:
    return Task("0f8fad5b-d9cb-469f-a165-70867728950e", kind, "done", result=result)  # type: ignore[arg-type]


def test_stored_json_reads_back_typed_with_whole_numbers_as_ints() -> None:
    stored = {
        "improved_sessions": 3.0,  # JSON through a Struct keeps numbers as floats
        "skipped_sessions": 1,
        "copies_written": 7,
        "skipped_because": {"no clicks": 1.0},
        "unknown_key": "left out",
    }
    typed = result_of(_task("improvement", stored))
    assert typed == ImprovementResult(3, 1, 7, {"no clicks": 1})
    assert isinstance(typed.improved_sessions, int)


def test_missing_or_null_figures_read_as_empty() -> None:
    fit = result_of(_task("ranking_fit", {"version": None, "went_live": False, "spec": None}))
    assert fit == RankingFitResult(version=0, went_live=False, metrics={}, note="")
    assert result_of(_task("reindex", {"copied": 2, "gone": 1})) == ReindexResult(copied=2, gone=1)
    assert ReindexResult(copied=2, already_present=3, gone=1).done == 6


def test_kinds_without_a_typed_result_and_tasks_without_one_read_as_none() -> None:
    assert result_of(_task("fine_tuning", {"model_id": "m"})) is None
    assert result_of(_task("upsertion", {})) is None


def test_the_api_returns_the_outcome_named_for_the_kind() -> None:
    proto = task_to_proto(
        _task(
            "deployment",
            {
                "action": "deploy",
                "model_id": "m",
                "triton_models": ["q", "i"],
                "deployed": True,
                "triton_url": "x:1",
            },
        )
    )
    assert proto.WhichOneof("outcome") == "deployment"
    assert proto.deployment == common_pb2.DeploymentResult(
        action="deploy", model_id="m", triton_models=["q", "i"], deployed=True
    )
    assert result_of(_task("deployment", {"deployed": True})) == DeploymentResult(deployed=True)
    reindex = task_to_proto(_task("reindex", {"copied": 5, "item_count": 5, "subtasks": 2}))
    assert (reindex.reindex.copied, reindex.reindex.item_count, reindex.reindex.subtasks) == (
        5,
        5,
        2,
    )
    # The untyped result stays, with what the typed one leaves out.
    assert reindex.result["subtasks"] == 2
    assert task_to_proto(_task("fine_tuning", {"model_id": "m"})).WhichOneof("outcome") is None


def test_a_categories_switch_reads_back_typed_and_every_kind_has_a_queue_and_an_enum() -> None:
    proto = task_to_proto(
        _task(
            "categories_switch",
            {
                "items_model_id": "m-v1",
                "previous_categories_collection_id": "categories/m-v1",
                "categories_collection_id": "categories/m-v2",
                "categories_copied": 8.0,
            },
        )
    )
    assert proto.kind == common_pb2.TASK_KIND_CATEGORIES_SWITCH
    assert proto.WhichOneof("outcome") == "categories_switch"
    assert proto.categories_switch == common_pb2.CategoriesSwitchResult(
        items_model_id="m-v1",
        previous_categories_collection_id="categories/m-v1",
        categories_collection_id="categories/m-v2",
        categories_copied=8,
    )
    for kind in TASK_KINDS:
        assert kind in QUEUE_FOR_KIND
        assert f"TASK_KIND_{kind.upper()}" in common_pb2.TaskKind.keys()
