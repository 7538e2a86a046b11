"""The categories target of the fine-tuning worker, for real and kept cheap: the worker's own
context on a fresh database (the built-in text plugin, its base model, MLflow in the data
directory), the shop's kinds as categories, nickname sessions clicking products of the right
kind, one training trial with five of six layers frozen. Then the switch: the categories
re-encoded by the new version into its own collection, which the blue item model's
predictions then read; the items' blue collection stays as it was."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio
from mlflow import MlflowClient

import es_workers.fine_tuning as fine_tuning_worker
from es_cli.demo_catalogue import COLOURS, KINDS
from es_core.categories.fine_tuning import switch_categories
from es_core.categories.store import blue_categories, ensure_blue_categories
from es_core.clickstream import store as clickstream
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import get_settings
from es_core.errors import FailedPrecondition
from es_core.fine_tuning.start import StartFineTuningInput, _create
from es_core.storage import catalog
from es_core.tasks.model import Task
from es_workers import runtime
from es_workers.runtime import WorkerContext
from tests.integration.helpers import as_array, fresh_database, load_items

pytestmark = pytest.mark.integration

ONE_CHEAP_TRIAL = {"learning_rate": [1e-4], "frozen_layers": [5], "epochs": [1]}


@pytest_asyncio.fixture
async def worker(
    pg_server: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[WorkerContext]:
    async with fresh_database(pg_server.dsn) as dsn:  # type: ignore[attr-defined]
        monkeypatch.setenv("ES_POSTGRES_DSN", dsn)
        monkeypatch.setenv("ES_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("ES_TRITON_URL", "")
        monkeypatch.setenv("ES_FINE_TUNING_MAX_TRIALS", "1")
        get_settings.cache_clear()
        monkeypatch.setattr(runtime, "_context", None)
        ctx = await runtime.context()
        try:
            yield ctx
        finally:
            await ctx.pool.close()
            runtime._context = None
            get_settings.cache_clear()


async def _keep_going(fraction: float, message: str) -> bool:
    return True


async def _catalogue(ctx: WorkerContext) -> None:
    """Three products of each kind (payload "category": the kind's noun), and the session
    batch: per kind four nickname queries, each clicking one product of its kind."""
    async with ctx.pool.acquire() as conn:
        blue = await catalog.get_blue_collection(conn)
    encoder = ctx.encoders.get(blue.model)
    texts = {
        f"{kind.noun[:4]}-{i}": f"{kind.features[i]} {kind.noun} in {COLOURS[i]}"
        for kind in KINDS
        for i in range(3)
    }
    vectors = encoder.encode_items(list(texts.values()))
    await load_items(
        ctx.pool,
        blue,
        [
            (object_id, vectors[i : i + 1], {"category": object_id.split("-")[0]})
            for i, object_id in enumerate(texts)
        ],
        {object_id: [text] for object_id, text in texts.items()},
    )
    now = datetime.now(UTC)
    events = []
    async with ctx.pool.acquire() as conn:
        for k, kind in enumerate(KINDS):
            for q in range(4):
                session_id = f"s-{k}-{q}"
                shown = [f"{other.noun[:4]}-{q % 3}" for other in KINDS]
                query = f"{kind.nickname} {COLOURS[q]} {kind.features[q]}"
                session = Session(
                    session_id,
                    [ShownResult(o, r) for r, o in enumerate(shown)],
                    query_text=query,
                    collection_id=blue.collection_id,
                )
                await clickstream.register_session(conn, session, now + timedelta(seconds=q), None)
                events.append(Event(f"{session_id}-c", session_id, shown[k], "click"))
        await clickstream.push_events(conn, events, now)


async def _categories(ctx: WorkerContext) -> None:
    """The kinds as categories: id = the products' category value, text = the noun."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        blue = await catalog.get_blue_collection(conn)
        collection = await ensure_blue_categories(
            conn, blue.model, ctx.plugin.get_search_index_info()
        )
    nouns = {kind.noun[:4]: kind.noun for kind in KINDS}
    vectors = ctx.encoders.get(blue.model).encode_items(list(nouns.values()))
    await load_items(
        ctx.pool,
        collection,
        [(c, vectors[i : i + 1], {"name": n, "text": n}) for i, (c, n) in enumerate(nouns.items())],
        {c: [n] for c, n in nouns.items()},
    )


async def _start(ctx: WorkerContext) -> Task:
    request = StartFineTuningInput(target="categories", hyperparameters=ONE_CHEAP_TRIAL)
    async with ctx.pool.acquire() as conn, conn.transaction():
        task, created = await _create(conn, ctx.settings, ctx.plugin, request)
    assert created
    return task


async def test_without_categories_the_categories_target_is_refused(worker: WorkerContext) -> None:
    await _catalogue(worker)
    with pytest.raises(FailedPrecondition) as raised:
        await _start(worker)
    assert [v.field for v in raised.value.violations] == ["target"]
    # Refused in the transaction that would have released the batch: no task, batch kept.
    assert not await worker.pool.fetchval("SELECT count(*) FROM tasks")
    assert await worker.pool.fetchval(
        "SELECT count(*) FROM session_batches WHERE state = 'collecting'"
    )


async def test_a_category_fine_tuning_trains_registers_and_switches_predictions(
    worker: WorkerContext,
) -> None:
    await _catalogue(worker)
    await _categories(worker)
    task = await _start(worker)
    assert task.params["target"] == "categories"
    result = await fine_tuning_worker._fine_tune(worker, task, _keep_going)
    assert isinstance(result, dict) and result["target"] == "categories"
    assert result["examples"]["examples"] == 32 and result["examples"]["test"] >= 1
    assert result["examples"]["train"] + result["examples"]["test"] == 32
    assert {"mrr", "accuracy@1", "mrr.low"} <= set(result["metrics"])
    assert {"mrr", "accuracy@1"} <= set(result["in_service_metrics"])
    assert "gain.mrr.low" in result["gate"] and result["gate"]["reason"]
    assert len(result["trials"]) == 1 and result["trials"][0]["train_rows"] > 0
    assert "categories_switch" not in result  # no deploy_as_blue: nothing switched

    async with worker.pool.acquire() as conn:
        blue = await catalog.get_blue_collection(conn)
        model = await catalog.get_model(conn, result["model_id"])
        before = await blue_categories(conn, blue.model)
    assert model.parent_model_id == blue.model.model_id
    assert before is not None and before.model.model_id == blue.model.model_id
    version = MlflowClient(worker.settings.resolved_mlflow_tracking_uri).get_model_version(
        result["registered_model"], str(result["model_version"])
    )
    assert version.tags["es.target"] == "categories"
    assert version.tags["es.parent_model_id"] == blue.model.model_id

    switched = await switch_categories(
        worker.pool, worker.settings, worker.plugin, worker.encoders, blue, model, _keep_going
    )
    assert switched == {
        "items_model_id": blue.model.model_id,
        "previous_categories_collection_id": before.collection_id,
        "categories_collection_id": f"categories/{model.model_id}",
        "categories_copied": len(KINDS),
    }
    async with worker.pool.acquire() as conn:
        after = await blue_categories(conn, blue.model)
        still_blue = await catalog.get_blue_collection(conn)
        kept = await catalog.get_collection(conn, before.collection_id, kind="categories")
        assert after is not None
        tent = await conn.fetchval(
            f"SELECT vector FROM {catalog.items_table(after)}"
            " WHERE object_id = 'tent' AND NOT is_average"
        )
    # Predictions of the blue item model now read categories the new version encoded ...
    assert after.collection_id == f"categories/{model.model_id}"
    assert after.model.model_id == model.model_id
    trained = worker.encoders.get(model)
    np.testing.assert_allclose(as_array(tent), trained.encode_items(["tent"])[0], atol=1e-4)
    # ... and searches are untouched; the previous categories collection is kept.
    assert still_blue.collection_id == blue.collection_id
    assert still_blue.model.model_id == blue.model.model_id
    assert kept.collection_id == before.collection_id
