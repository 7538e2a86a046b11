"""The worker's beat schedule follows the settings: the suggestions harvest runs at its interval,
and not at all when turned off."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from es_core.config import get_settings
from es_workers.app import SWEEPER_QUEUE, create_app


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_harvest_runs_at_its_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_SUGGESTIONS_HARVEST_INTERVAL_SECONDS", "42")
    entry = create_app().conf.beat_schedule["harvest-suggestions"]
    assert entry["task"] == "es.suggestions_harvest"
    assert entry["schedule"] == 42.0
    assert entry["options"]["queue"] == SWEEPER_QUEUE


def test_the_harvest_is_off_the_schedule_when_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_SUGGESTIONS_HARVEST", "false")
    schedule = create_app().conf.beat_schedule
    assert "harvest-suggestions" not in schedule
    assert "sweep-pending-tasks" in schedule


def test_the_worker_imports_the_harvest_task() -> None:
    assert "es_workers.suggestions_harvest" in create_app().conf.include
    from es_workers.suggestions_harvest import suggestions_harvest

    assert suggestions_harvest.name == "es.suggestions_harvest"
