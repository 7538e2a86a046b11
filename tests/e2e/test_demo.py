"""`es demo` as a user runs it: against a real stack on a tiny generated catalogue, through the
route that overrides the deploy gate; and its one-line errors for a stack that is not there and
for a dataset that is not BEIR."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2
from es_cli.demo_catalogue import generate_catalogue, write_beir
from es_cli.demo_report import CHART_NAME, JSON_NAME
from es_cli.embedded import free_port
from es_harness.lifecycle import split_dev
from es_harness.throwaway import StackInfo, ThrowawayStack

pytestmark = pytest.mark.e2e

# 60 products of 4 kinds, 40 queries (8 of them dev): the whole loop in about a minute.
TINY = {"kinds": 4, "items_per_kind": 15, "queries_per_kind": 10}
# One cheap epoch (four of the six layers frozen): the gate is overridden, so what is learnt
# does not matter here, only that a new version goes through the whole loop.
CHEAP_TRIAL = {"learning_rate": [2e-4], "frozen_layers": [4], "epochs": [1]}


def es_demo(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "es_cli.main", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def gated_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """A stack whose deploy gate refuses every model (no model gains 1.0 NDCG@10)."""
    data_dir = Path(tmp_path_factory.mktemp("demo-stack"))
    with ThrowawayStack(data_dir, extra_env={"ES_FINE_TUNING_GATE_MARGIN": "1.0"}) as info:
        yield info


def sessions(client: Client) -> list[clickstream_pb2.Session]:
    found: list[clickstream_pb2.Session] = []
    token = ""
    while True:
        reply = client.clickstream.ListSessions(
            clickstream_pb2.ListSessionsRequest(page_size=1000, page_token=token), timeout=30
        )
        found += reply.sessions
        token = reply.next_page_token
        if not token:
            return found


def test_the_demo_runs_the_loop_and_overrides_the_gate(
    gated_stack: StackInfo, tmp_path: Path
) -> None:
    data = generate_catalogue(5, **TINY)
    write_beir(data, tmp_path / "tiny")
    out = tmp_path / "out"
    done = es_demo(
        "--dataset",
        str(tmp_path / "tiny"),
        "--target",
        gated_stack.grpc_address,
        "--users",
        "2",
        "--hyperparameters",
        json.dumps(CHEAP_TRIAL),
        "--out",
        str(out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert "dev split: integer query id % 5 == 0" in done.stdout
    assert "GATE OVERRIDDEN FOR THE DEMO" in done.stdout
    for step in (
        "upsert",
        "measure before",
        "simulate",
        "improve",
        "rank",
        "fine-tune",
        "promote",
    ):
        assert f"   {step} took " in done.stdout
    for bar in ("upsert", "simulate", "ranking fit", "fine-tuning", "deploy", "reindex", "search"):
        assert f"{bar}:" in done.stderr, f"no progress bar for {bar}"

    figures = json.loads((out / JSON_NAME).read_text())
    assert (out / CHART_NAME).read_bytes().startswith(b"\x89PNG")
    assert figures["route"] == "gate overridden"
    assert not figures["gate"]["deployable"]
    assert figures["gate"]["promotion"]["step"] == "skipped"
    new_model = figures["gate"]["fine_tuned_model_id"]
    assert figures["model_before"] == "all-minilm-l6-v2"
    assert figures["model_after"] == new_model != figures["model_before"]
    assert figures["sizes"] == {"docs": 60, "train": 32, "dev": 8}
    assert figures["settings"]["hyperparameters"] == CHEAP_TRIAL
    # The ranking step ran its fit on the training queries' sessions and says what it did.
    ranking = figures["ranking"]
    assert ranking["note"] and ranking["went_live"] in (True, False)
    learned = ranking["metrics"].get("train.queries", 0) + ranking["metrics"].get(
        "heldout.queries", 0
    )
    assert 0 < learned <= 32 or "nothing learned" in ranking["note"]
    if not figures["ranking"]["went_live"]:
        assert figures["ranked"] == figures["before"]
    for when in ("before", "ranked", "after"):
        assert set(figures[when]) == {"ndcg@10", "recall@10", "mrr@10"}
        assert all(0.0 <= v <= 1.0 for v in figures[when].values())
    assert f"{figures['before']['ndcg@10']:.4f}" in done.stdout
    assert f"{figures['after']['ndcg@10']:.4f}" in done.stdout

    split = split_dev(data.queries)
    with Client(gated_stack.grpc_address) as client:
        blue = client.get_blue_collection(timeout=30)
        assert blue.model_id == new_model and blue.item_count == 60
        searched = {s.query_text for s in sessions(client)}
    assert searched == set(split.train.values()), "only training queries get sessions"
    assert not searched & set(split.dev.values())


def test_a_stack_that_is_not_there_is_one_line_and_exit_1(tmp_path: Path) -> None:
    target = f"127.0.0.1:{free_port()}"
    done = es_demo("--target", target, cwd=tmp_path, timeout=120)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert target in done.stderr and "`es up`" in done.stderr


def test_a_dataset_that_is_not_beir_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a dataset")
    for dataset in (tmp_path / "missing", tmp_path):
        done = es_demo("--dataset", str(dataset), "--target", "127.0.0.1:1", cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and str(dataset) in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
