"""The demo's figures: the JSON holds what was measured, the chart is a PNG, the table shows the
change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from es_cli.demo_report import CHART_NAME, JSON_NAME, DemoFigures, table, write_chart, write_json

BEFORE = {"ndcg@10": 0.2, "recall@10": 0.1, "mrr@10": 0.0}
AFTER = {"ndcg@10": 0.5, "recall@10": 0.15, "mrr@10": 0.4}
RANKED = {"ndcg@10": 0.3, "recall@10": 0.12, "mrr@10": 0.25}


def figures() -> DemoFigures:
    return DemoFigures(
        dataset="test catalogue",
        dev_rule="integer query id % 5 == 0",
        sizes={"docs": 60, "train": 32, "dev": 8},
        before=dict(BEFORE),
        after=dict(AFTER),
        ranked=dict(RANKED),
        model_before="base",
        model_after="base-ft-v1",
        route="gate overridden",
        steps_seconds={"upsert": 1.5},
    )


def test_changes_are_relative_and_none_from_zero() -> None:
    changes = figures().changes()
    assert changes["ndcg@10"] == pytest.approx(150.0)
    assert changes["recall@10"] == pytest.approx(50.0)
    assert changes["mrr@10"] is None


def test_the_json_holds_the_figures(tmp_path: Path) -> None:
    path = write_json(figures(), tmp_path / "out")
    assert path == tmp_path / "out" / JSON_NAME
    data = json.loads(path.read_text())
    assert data["before"] == BEFORE and data["after"] == AFTER and data["ranked"] == RANKED
    assert data["change_percent"]["ndcg@10"] == pytest.approx(150.0)
    assert data["change_percent"]["mrr@10"] is None
    assert data["model_after"] == "base-ft-v1" and data["route"] == "gate overridden"
    assert data["sizes"] == {"docs": 60, "train": 32, "dev": 8}


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    path = write_chart(figures(), tmp_path)
    assert path == tmp_path / CHART_NAME
    content = path.read_bytes()
    assert content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) > 5000


def test_the_table_shows_before_ranked_after_and_change() -> None:
    lines = table(figures()).splitlines()
    assert lines[0].split() == ["dev", "queries", "before", "ranked", "after", "change"]
    assert lines[1].split() == ["NDCG@10", "0.2000", "0.3000", "0.5000", "+150.0%"]
    assert lines[3].split() == ["MRR@10", "0.0000", "0.2500", "0.4000", "-"]


def test_without_a_ranking_step_the_ranked_column_repeats_before() -> None:
    unranked = figures()
    unranked.ranked = {}
    assert table(unranked).splitlines()[1].split() == [
        "NDCG@10",
        "0.2000",
        "0.2000",
        "0.5000",
        "+150.0%",
    ]
