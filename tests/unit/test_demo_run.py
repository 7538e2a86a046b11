"""`es demo` without a stack: bad datasets, following a deploy_as_blue chain with its bars, and
what the demo does with each way a promotion can end."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from embedding_studio.client import Client, to_struct
from embedding_studio.v1 import common_pb2, deployment_pb2
from es_cli import demo
from es_cli.demo_catalogue import generate_catalogue, write_beir

PROCESSING, DONE = common_pb2.TASK_STATUS_PROCESSING, common_pb2.TASK_STATUS_DONE


def task(
    task_id: str, status: common_pb2.TaskStatus, progress: float, **result: Any
) -> common_pb2.Task:
    return common_pb2.Task(
        task_id=task_id, status=status, progress=progress, result=to_struct(result)
    )


# ---- bad input: exit 2, one line, before any connection ----


def run(dataset: Path) -> tuple[int, str]:
    err = io.StringIO()
    options = demo.DemoOptions(target="127.0.0.1:1", dataset=dataset)
    code = demo.run_demo(options, out=io.StringIO(), err=err)
    return code, err.getvalue()


def test_a_missing_directory_is_refused(tmp_path: Path) -> None:
    code, err = run(tmp_path / "nowhere")
    assert code == 2
    assert err == f"es demo: --dataset {tmp_path / 'nowhere'}: no such directory\n"


def test_a_directory_without_the_beir_files_is_refused(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text("")
    code, err = run(tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and "not in the BEIR layout" in err
    assert "queries.jsonl" in err and "qrels/<split>.tsv" in err


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    write_beir(generate_catalogue(kinds=2, items_per_kind=5, queries_per_kind=5), tmp_path)
    (tmp_path / "corpus.jsonl").write_text("{not json\n")
    code, err = run(tmp_path)
    assert code == 2
    assert err.count("\n") == 1 and "cannot be read as BEIR" in err


def test_a_dataset_without_dev_queries_is_refused(tmp_path: Path) -> None:
    write_beir(generate_catalogue(kinds=1, items_per_kind=20, queries_per_kind=4), tmp_path)
    code, err = run(tmp_path)  # query ids 1..4: none is dev
    assert code == 2
    assert "0 for dev" in err and err.count("\n") == 1


def test_another_qrels_split_is_used_when_there_is_no_train(tmp_path: Path) -> None:
    write_beir(generate_catalogue(kinds=2, items_per_kind=5, queries_per_kind=5), tmp_path, "test")
    name, data = demo.load_input(tmp_path)
    assert name.endswith("(qrels/test.tsv)") and data.qrels


# ---- following a deploy_as_blue chain ----


class FakeTasks:
    """Each read of a task returns its next state; the last one repeats."""

    def __init__(self, states: dict[str, list[common_pb2.Task]]) -> None:
        self._states = {k: iter(v) for k, v in states.items()}
        self._last: dict[str, common_pb2.Task] = {}
        self.reads: list[str] = []

    def __call__(self, task_id: str) -> common_pb2.Task:
        self.reads.append(task_id)
        state = next(self._states[task_id], None)
        if state is not None:
            self._last[task_id] = state
        return self._last[task_id]


@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(demo, "POLL_SECONDS", 0.0)
    yield


def test_bars_follow_the_chain_tasks_as_they_appear() -> None:
    deploying = {"step": "deploying", "model_id": "m", "deploy_task_id": "dep"}
    reindexing = {**deploying, "step": "reindexing", "reindex_task_id": "rx"}
    switched = {**reindexing, "step": "switched", "collection_id": "m"}
    fake = FakeTasks(
        {
            "ft": [
                task("ft", PROCESSING, 0.5),
                task("ft", PROCESSING, 0.95, promotion=deploying),
                task("ft", PROCESSING, 0.97, promotion=reindexing),
                task("ft", DONE, 1.0, promotion=switched),
            ],
            "dep": [task("dep", PROCESSING, 0.3), task("dep", DONE, 1.0)],
            "rx": [task("rx", DONE, 1.0)],
        }
    )
    err = io.StringIO()
    bars = demo.TaskBars(fake, err)
    final = bars.follow("ft", "fine-tuning", children=demo.chain_tasks)
    bars.close()
    assert final.status == DONE and demo.promotion_of(final)["step"] == "switched"
    assert {k: t.status for k, t in bars.latest.items()} == {"ft": DONE, "dep": DONE, "rx": DONE}
    assert fake.reads == ["ft", "ft", "dep", "ft", "dep", "rx", "ft"]
    shown = err.getvalue()
    assert "fine-tuning" in shown and "deploy" in shown and "reindex" in shown


def test_a_failed_task_ends_the_demo_naming_it() -> None:
    failed = common_pb2.Task(
        task_id="t", status=common_pb2.TASK_STATUS_FAILED, error="no room in Triton"
    )
    with pytest.raises(demo.DemoError, match="deploy task t ended FAILED: no room in Triton"):
        demo.require_done(failed, "deploy")


# ---- what each end of a promotion leads to ----


class NoStack:
    """Stands for a client: any use of it says which RPC the demo tried."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the demo called the stack: {name}")


def promote(result: dict[str, Any], *, respect_gate: bool = False) -> tuple[str, str]:
    out = io.StringIO()
    options = demo.DemoOptions(target="unused", respect_gate=respect_gate)
    runner = demo.Demo(options, cast(Client, NoStack()), out, io.StringIO())
    blue = deployment_pb2.Collection(collection_id="base", model_id="base")
    route, gate = runner.promote(result, blue)
    assert gate["held_out_queries"]["fine_tuned"] == result["metrics"]
    return route, out.getvalue()


GATE_FIGURES = {"metrics": {"ndcg@10": 0.70}, "in_service_metrics": {"ndcg@10": 0.76}}


def test_a_switched_chain_needs_nothing_more() -> None:
    promotion = {"step": "switched", "model_id": "m", "collection_id": "m"}
    route, out = promote(
        {"model_id": "m", "deployable": True, "promotion": promotion, **GATE_FIGURES}
    )
    assert route == "deploy_as_blue"
    assert "passed" in out and "switched blue" in out


def test_respect_gate_keeps_blue_when_the_gate_refused() -> None:
    promotion = {"step": "skipped", "model_id": "m", "reason": "the deploy gate: no gain"}
    route, out = promote(
        {"model_id": "m", "deployable": False, "promotion": promotion, **GATE_FIGURES},
        respect_gate=True,
    )
    assert route == "not promoted"
    assert "the deploy gate on the held-out queries: refused" in out
    assert "the deploy gate: no gain" in out and "OVERRIDDEN" not in out


def test_a_chain_the_server_left_waiting_is_promoted_by_hand(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    promoted: list[str] = []
    monkeypatch.setattr(
        demo.Demo, "promote_explicitly", lambda self, model_id, blue: promoted.append(model_id)
    )
    promotion = {"step": "deploying", "model_id": "m"}
    route, out = promote(
        {"model_id": "m", "deployable": True, "promotion": promotion, **GATE_FIGURES}
    )
    assert route == "explicit" and promoted == ["m"]
    assert "still at step 'deploying'" in out


def test_the_gate_is_overridden_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    promoted: list[str] = []
    monkeypatch.setattr(
        demo.Demo, "promote_explicitly", lambda self, model_id, blue: promoted.append(model_id)
    )
    promotion = {"step": "skipped", "model_id": "m", "reason": "the deploy gate: no gain"}
    route, out = promote(
        {"model_id": "m", "deployable": False, "promotion": promotion, **GATE_FIGURES}
    )
    assert route == "gate overridden" and promoted == ["m"]
    assert "GATE OVERRIDDEN FOR THE DEMO" in out


def test_a_failed_chain_ends_the_demo() -> None:
    promotion = {"step": "failed", "model_id": "m", "reason": "Triton is down"}
    with pytest.raises(demo.DemoError, match="Triton is down"):
        promote({"model_id": "m", "deployable": True, "promotion": promotion, **GATE_FIGURES})
