"""The fine-tuning worker with deploy_as_blue: a task whose model passed the gate is handed over
(not ended) and its chain's first task is started at once; one that did not pass ends DONE.

The worker runs in this process against a fresh database. Training is replaced by its
outcome, and sending tasks by a list: what is tested is the worker's wiring around them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

import es_workers.fine_tuning as fine_tuning_worker
from es_cli.embedded import EmbeddedPostgres
from es_core.config import get_settings
from es_core.serving.deploy_as_blue import first_promotion
from es_core.storage import catalog
from es_core.tasks import store
from es_core.tasks.model import Task
from es_workers import runtime
from tests.integration.blue_green import hash_model
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def worker_db(
    pg_server: EmbeddedPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[asyncpg.Pool, list[Task]]]:
    """The worker's own context on a fresh database; tasks it sends land in the list."""
    async with fresh_database(pg_server.dsn) as dsn:
        monkeypatch.setenv("ES_POSTGRES_DSN", dsn)
        monkeypatch.setenv("ES_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("ES_TRITON_URL", "")
        get_settings.cache_clear()
        monkeypatch.setattr(runtime, "_context", None)
        sent: list[Task] = []

        async def keep(pool: asyncpg.Pool, task: Task) -> bool:
            sent.append(task)
            return True

        monkeypatch.setattr(runtime, "dispatch", keep)
        ctx = await runtime.context()
        try:
            yield ctx.pool, sent
        finally:
            await ctx.pool.close()
            runtime._context = None
            get_settings.cache_clear()


def _trained(model_id: str, deployable: bool) -> Callable[..., Any]:
    async def run_fine_tuning(*args: Any) -> dict[str, Any]:
        promotion = first_promotion(
            deploy_as_blue=True, deployable=deployable, model_id=model_id, margin=0.005
        )
        assert promotion is not None
        return {"model_id": model_id, "deployable": deployable, "promotion": promotion.as_json()}

    return run_fine_tuning


async def _task_and_model(pool: asyncpg.Pool) -> tuple[str, str]:
    model = replace(hash_model(dims=384), deployed=False)
    async with pool.acquire() as conn:
        await catalog.insert_model(conn, model)
        task, _ = await store.create_task(conn, "fine_tuning", {"deploy_as_blue": True})
    return task.task_id, model.model_id


async def test_a_version_that_passed_the_gate_waits_for_its_chain(
    worker_db: tuple[asyncpg.Pool, list[Task]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, sent = worker_db
    task_id, model_id = await _task_and_model(pool)
    monkeypatch.setattr(fine_tuning_worker, "run_fine_tuning", _trained(model_id, True))

    assert await fine_tuning_worker.run_fine_tuning_task(task_id) == "waiting"

    task = await store.get_task(pool, task_id)
    assert task.status == "waiting" and task.finish_time is None
    promotion = task.result["promotion"]
    assert promotion["step"] == "deploying"
    assert [(t.kind, t.params) for t in sent] == [
        ("deployment", {"action": "deploy", "model_id": model_id})
    ]
    assert promotion["deploy_task_id"] == sent[0].task_id
    assert task.progress_message.startswith(f"deploying {model_id}")


async def test_a_version_the_gate_refused_ends_done_without_a_chain(
    worker_db: tuple[asyncpg.Pool, list[Task]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pool, sent = worker_db
    task_id, model_id = await _task_and_model(pool)
    monkeypatch.setattr(fine_tuning_worker, "run_fine_tuning", _trained(model_id, False))

    assert await fine_tuning_worker.run_fine_tuning_task(task_id) == "done"

    task = await store.get_task(pool, task_id)
    assert task.status == "done" and task.result["promotion"]["step"] == "skipped"
    assert sent == []
    assert await pool.fetchval("SELECT count(*) FROM tasks WHERE kind = 'deployment'") == 0
