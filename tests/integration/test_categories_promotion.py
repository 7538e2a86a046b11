"""A categories fine-tuning's deploy_as_blue chain on a real PostgreSQL: the version is
deployed first, then a categories switch task copies the categories the blue item model's
predictions read into the version's own collection and points them at it. A deployment that
fails, or a switch that fails, leaves the pointer where it was; a replayed copy writes the
same categories again and changes nothing else; canceling the chain cancels the switch."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from embedding_studio.v1 import common_pb2, fine_tune_pb2
from es_cli.embedded import EmbeddedPostgres
from es_core.categories.fine_tuning import first_category_promotion
from es_core.categories.store import blue_categories, ensure_blue_categories
from es_core.categories.switch import KIND, run_categories_switch
from es_core.domain import Collection, Model
from es_core.serving.deploy_as_blue import advance, cancel_with_chain, waiting_chains
from es_core.storage import catalog
from es_core.tasks import store
from es_core.tasks.model import Task
from es_server.convert import fine_tuning_task_to_proto, task_to_proto
from tests.integration.blue_green import World, claim, fresh_world, hash_model, keep_going
from tests.integration.helpers import load_items
from tests.integration.test_promotion import _deploy

pytestmark = pytest.mark.integration

CATEGORIES = {"tent": "tent", "boot": "hiking boots", "lamp": "head lamp"}


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn) as w:
        async with w.pool.acquire() as conn, conn.transaction():
            collection = await ensure_blue_categories(conn, w.blue.model, w.index)
        encoder = w.registry.get(w.blue.model)
        vectors = encoder.encode_items(list(CATEGORIES.values()))
        await load_items(
            w.pool,
            collection,
            [
                (c, vectors[i : i + 1], {"name": text, "text": text})
                for i, (c, text) in enumerate(CATEGORIES.items())
            ],
            {c: [text] for c, text in CATEGORIES.items()},
        )
        yield w


async def _chain(world: World) -> tuple[str, Model]:
    """A categories fine-tuning task that registered a version which passed the gate, handed
    over to its chain."""
    model = await world.add_model(replace(hash_model(), deployed=False))
    async with world.pool.acquire() as conn:
        task, _ = await store.create_task(
            conn, "fine_tuning", {"deploy_as_blue": True, "target": "categories"}
        )
    await claim(world.pool, task.task_id, "ft-worker")
    promotion = first_category_promotion(
        deploy_as_blue=True,
        deployable=True,
        model_id=model.model_id,
        items_model_id=world.blue.model.model_id,
        reason="passed",
    )
    assert promotion is not None
    result = {"model_id": model.model_id, "deployable": True, "promotion": promotion.as_json()}
    assert await store.start_waiting(world.pool, task.task_id, "ft-worker", result, "")
    return task.task_id, model


async def _advance(world: World, task_id: str) -> tuple[list[Task], Task]:
    started = await advance(world.pool, world.settings, world.index, task_id)
    return started, await store.get_task(world.pool, task_id)


async def _switch(world: World, task: Task, *, finish: bool = True) -> dict[str, Any]:
    """What the categories switch worker does with the chain's task."""
    task = await claim(world.pool, task.task_id, "switch-worker")
    result = await run_categories_switch(
        world.pool, world.settings, world.index, world.registry, task, keep_going
    )
    if finish:
        await store.finish_task(world.pool, task.task_id, "switch-worker", "done", result=result)
    return result


async def _pointer(world: World) -> str:
    async with world.pool.acquire() as conn:
        categories = await blue_categories(conn, world.blue.model)
    assert categories is not None
    return categories.collection_id


async def _rows(world: World, collection: Collection) -> list[tuple[str, str, bool]]:
    rows = await world.pool.fetch(
        f"SELECT object_id, part_id, is_average FROM {catalog.items_table(collection)}"
        " ORDER BY object_id, part_id, is_average"
    )
    return [(r["object_id"], r["part_id"], r["is_average"]) for r in rows]


def _promotion(task: Task) -> dict[str, Any]:
    return dict(task.result["promotion"])


async def test_the_chain_deploys_then_switches_the_categories(world: World) -> None:
    before = await _pointer(world)
    task_id, model = await _chain(world)
    started, task = await _advance(world, task_id)
    assert [t.kind for t in started] == ["deployment"]
    assert task.status == "waiting" and _promotion(task)["step"] == "deploying"

    await _deploy(world, started[0])
    started, task = await _advance(world, task_id)
    assert [t.kind for t in started] == [KIND]
    assert started[0].params == {
        "items_model_id": world.blue.model.model_id,
        "model_id": model.model_id,
        "source_collection_id": before,
        "fine_tuning_task_id": task_id,
    }
    assert _promotion(task)["step"] == "copying_categories"
    assert _promotion(task)["categories_task_id"] == started[0].task_id
    assert await _pointer(world) == before  # nothing switched before the copy ran
    # Asked again (the sweeper) before the switch ran: nothing new.
    assert (await _advance(world, task_id))[0] == []

    switched = await _switch(world, started[0])
    destination = f"categories/{model.model_id}"
    assert switched == {
        "items_model_id": world.blue.model.model_id,
        "previous_categories_collection_id": before,
        "categories_collection_id": destination,
        "categories_copied": len(CATEGORIES),
    }
    started, task = await _advance(world, task_id)
    assert started == []
    assert task.status == "done" and task.finish_time is not None
    promotion = _promotion(task)
    assert promotion["step"] == "switched"
    assert promotion["categories_collection_id"] == destination
    assert promotion["previous_categories_collection_id"] == before
    assert await waiting_chains(world.pool) == []

    # Predictions of the blue item model read the version's categories, encoded by it ...
    assert await _pointer(world) == destination
    async with world.pool.acquire() as conn:
        copied = await catalog.get_collection(conn, destination, kind="categories")
        assert (await catalog.get_model(conn, model.model_id)).deployed
    tent = await world.pool.fetchval(
        f"SELECT vector FROM {catalog.items_table(copied)} WHERE object_id = 'tent'"
        " AND NOT is_average"
    )
    expected = world.registry.get(model).encode_items(["tent"])[0]
    np.testing.assert_allclose(np.asarray(tent.to_numpy()), expected, atol=1e-5)
    # ... the items' blue collection is as it was, and the previous categories are kept.
    assert await world.alias() == (world.blue.collection_id, None)
    async with world.pool.acquire() as conn:
        kept = await catalog.get_collection(conn, before, kind="categories")
    assert len(await _rows(world, kept)) == len(await _rows(world, copied))

    proto = fine_tuning_task_to_proto(task).promotion
    assert proto.step == fine_tune_pb2.PROMOTION_STEP_SWITCHED
    assert proto.categories_task_id and proto.deploy_task_id
    assert proto.categories_collection_id == destination
    assert proto.previous_categories_collection_id == before
    switch_task = task_to_proto(await store.get_task(world.pool, proto.categories_task_id))
    assert switch_task.kind == common_pb2.TASK_KIND_CATEGORIES_SWITCH
    assert switch_task.categories_switch.categories_collection_id == destination
    assert switch_task.categories_switch.categories_copied == len(CATEGORIES)


async def test_a_failed_deployment_leaves_the_categories_pointer(world: World) -> None:
    before = await _pointer(world)
    task_id, model = await _chain(world)
    started, _ = await _advance(world, task_id)
    await _deploy(world, started[0], fail="Triton did not load it")
    started, task = await _advance(world, task_id)
    assert started == []
    assert task.status == "failed"
    assert "stopped while deploying" in task.error and "Triton did not load it" in task.error
    promotion = _promotion(task)
    assert promotion["step"] == "failed" and promotion["failed_step"] == "deploying"
    assert "categories_task_id" not in promotion
    assert await _pointer(world) == before
    assert not await world.pool.fetchval("SELECT count(*) FROM tasks WHERE kind = $1", KIND)
    assert not await world.pool.fetchval(
        "SELECT count(*) FROM collections WHERE collection_id = $1",
        f"categories/{model.model_id}",
    )
    assert await world.alias() == (world.blue.collection_id, None)


async def test_a_replayed_copy_writes_the_same_categories_and_the_pointer_stays(
    world: World,
) -> None:
    task_id, model = await _chain(world)
    started, _ = await _advance(world, task_id)
    await _deploy(world, started[0])
    started, _ = await _advance(world, task_id)
    # The worker switched, then died before it could say so; the task is taken over.
    first = await _switch(world, started[0], finish=False)
    await world.pool.execute(
        "UPDATE tasks SET lease_expires_at = now() - interval '1 second' WHERE task_id = $1",
        started[0].task_id,
    )
    replayed = await _switch(world, started[0])
    destination = f"categories/{model.model_id}"
    assert replayed["categories_collection_id"] == first["categories_collection_id"] == destination
    assert (
        replayed["previous_categories_collection_id"] == first["previous_categories_collection_id"]
    )
    async with world.pool.acquire() as conn:
        copied = await catalog.get_collection(conn, destination, kind="categories")
        kept = await catalog.get_collection(
            conn, first["previous_categories_collection_id"], kind="categories"
        )
    assert await _rows(world, copied) == await _rows(world, kept)  # no duplicates
    assert await _pointer(world) == destination
    _, task = await _advance(world, task_id)
    assert task.status == "done" and _promotion(task)["step"] == "switched"


async def test_a_failed_switch_fails_the_chain_and_the_pointer_stays(world: World) -> None:
    before = await _pointer(world)
    task_id, _ = await _chain(world)
    started, _ = await _advance(world, task_id)
    await _deploy(world, started[0])
    started, _ = await _advance(world, task_id)
    switch = await claim(world.pool, started[0].task_id, "switch-worker")
    await store.finish_task(
        world.pool, switch.task_id, "switch-worker", "failed", error="encoder unavailable"
    )
    _, task = await _advance(world, task_id)
    assert task.status == "failed" and "encoder unavailable" in task.error
    assert _promotion(task)["failed_step"] == "copying_categories"
    assert await _pointer(world) == before


async def test_canceling_the_chain_cancels_its_switch(world: World) -> None:
    before = await _pointer(world)
    task_id, _ = await _chain(world)
    started, _ = await _advance(world, task_id)
    await _deploy(world, started[0])
    started, _ = await _advance(world, task_id)
    assert (await cancel_with_chain(world.pool, task_id)).status == "canceled"
    assert (await store.get_task(world.pool, started[0].task_id)).status == "canceled"
    assert (await _advance(world, task_id))[0] == []
    assert await _pointer(world) == before


def test_the_gate_decides_whether_the_chain_starts() -> None:
    kwargs: dict[str, Any] = {"model_id": "m-v2", "items_model_id": "m-v1", "reason": "no gain"}
    assert first_category_promotion(deploy_as_blue=False, deployable=True, **kwargs) is None
    refused = first_category_promotion(deploy_as_blue=True, deployable=False, **kwargs)
    assert refused is not None and refused.step == "skipped" and not refused.waiting
    assert "no gain" in refused.reason
    chain = first_category_promotion(deploy_as_blue=True, deployable=True, **kwargs)
    assert chain is not None and chain.step == "deploying" and chain.waiting
    assert chain.as_json()["target"] == "categories"
