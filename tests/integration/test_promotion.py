"""deploy_as_blue on a real PostgreSQL: a fine-tuning task whose model passed the gate deploys
it, reindexes blue into the model's green collection and switches; a step that fails fails
the task and keeps the model; a canceled chain stops; a second promotion deletes the stale
collection and undeploys its model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import pytest_asyncio

from embedding_studio.v1 import fine_tune_pb2
from es_cli.embedded import EmbeddedPostgres
from es_core.domain import Model
from es_core.errors import FailedPrecondition, NotFound
from es_core.plugins.protocol import FineTuningMethod
from es_core.serving.deploy import run_deployment, start_deploy
from es_core.serving.deploy_as_blue import (
    Promotion,
    advance,
    cancel_with_chain,
    first_promotion,
    waiting_chains,
)
from es_core.storage import catalog
from es_core.tasks import store
from es_core.tasks.model import Task
from es_core.upsertion import run_upsertion
from es_server.convert import fine_tuning_task_to_proto
from tests.integration.blue_green import (
    World,
    claim,
    fresh_world,
    hash_model,
    keep_going,
    run_reindex,
    text_items,
)

pytestmark = pytest.mark.integration

ITEMS = 12
# Stands in for the plugin in run_deployment, which only asks where the model's files are.
LOADABLE = cast(
    FineTuningMethod,
    SimpleNamespace(
        get_inference_client_factory=lambda: SimpleNamespace(model_path=lambda model: Path("."))
    ),
)


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn) as w:
        await run_upsertion(w.pool, w.blue, text_items(ITEMS), w.registry, w.settings, keep_going)
        yield w


async def _chain(world: World, *, deployed: bool = False) -> tuple[str, Model]:
    """A fine-tuning task that registered a new model and handed itself over to its chain."""
    model = await world.add_model(replace(hash_model(), deployed=deployed))
    async with world.pool.acquire() as conn:
        task, _ = await store.create_task(conn, "fine_tuning", {"deploy_as_blue": True})
    await claim(world.pool, task.task_id, "ft-worker")
    promotion = first_promotion(
        deploy_as_blue=True, deployable=True, model_id=model.model_id, margin=0.0
    )
    assert promotion is not None
    result = {"model_id": model.model_id, "deployable": True, "promotion": promotion.as_json()}
    assert await store.start_waiting(world.pool, task.task_id, "ft-worker", result, "")
    return task.task_id, model


async def _advance(world: World, task_id: str) -> tuple[list[Task], Task]:
    started = await advance(world.pool, world.settings, world.index, task_id)
    return started, await store.get_task(world.pool, task_id)


async def _deploy(world: World, task: Task, *, fail: str = "") -> None:
    """What the deployment worker does with the chain's task."""
    task = await claim(world.pool, task.task_id, "deploy-worker")
    if fail:
        await store.finish_task(world.pool, task.task_id, "deploy-worker", "failed", error=fail)
        return

    async def progress(fraction: float, message: str) -> bool:
        return True

    result = await run_deployment(world.pool, world.settings, LOADABLE, task, progress)
    await store.finish_task(world.pool, task.task_id, "deploy-worker", "done", result=result)


def _promotion(task: Task) -> dict[str, Any]:
    return dict(task.result["promotion"])


async def test_the_chain_deploys_reindexes_and_switches(world: World) -> None:
    task_id, model = await _chain(world)
    assert await waiting_chains(world.pool) == [task_id]

    started, task = await _advance(world, task_id)
    assert [t.kind for t in started] == ["deployment"]
    assert started[0].params == {"action": "deploy", "model_id": model.model_id}
    assert task.status == "waiting" and _promotion(task)["step"] == "deploying"
    assert _promotion(task)["deploy_task_id"] == started[0].task_id
    # Asked again (the sweeper, another worker) before the deploy ended: nothing new.
    again, task = await _advance(world, task_id)
    assert again == [] and _promotion(task)["step"] == "deploying"

    await _deploy(world, started[0])
    started, task = await _advance(world, task_id)
    assert [t.kind for t in started] == ["reindex"]
    promotion = _promotion(task)
    assert promotion["step"] == "reindexing" and promotion["collection_id"] == model.model_id
    assert promotion["reindex_task_id"] == started[0].task_id
    assert promotion["source_collection_id"] == world.blue.collection_id
    assert task.status == "waiting" and 0.95 <= task.progress < 1.0

    assert (await run_reindex(world, started[0].task_id)).status == "done"
    started, task = await _advance(world, task_id)
    assert started == []
    assert task.status == "done" and task.progress == 1.0 and task.finish_time is not None
    promotion = _promotion(task)
    assert promotion["step"] == "switched"
    assert promotion["previous_collection_id"] == world.blue.collection_id
    assert "deleted_collection_id" not in promotion  # there was no older rollback target
    assert await world.alias() == (model.model_id, world.blue.collection_id)
    new_blue = await world.collection(model.model_id)
    assert new_blue.state == "blue"
    assert sorted(await world.originals(new_blue)) == sorted(await world.originals(world.blue))
    assert len(await world.originals(new_blue)) == ITEMS
    assert await waiting_chains(world.pool) == []

    proto = fine_tuning_task_to_proto(task).promotion
    assert proto.step == fine_tune_pb2.PROMOTION_STEP_SWITCHED
    assert proto.collection_id == model.model_id
    assert proto.previous_collection_id == world.blue.collection_id
    assert proto.deploy_task_id and proto.reindex_task_id

    # Done is final: asking again changes nothing.
    assert (await _advance(world, task_id))[0] == []


async def test_a_failed_deploy_fails_the_task_and_keeps_the_model(world: World) -> None:
    task_id, model = await _chain(world)
    started, _ = await _advance(world, task_id)
    await _deploy(world, started[0], fail="Triton did not load it")
    started, task = await _advance(world, task_id)
    assert started == []
    assert task.status == "failed" and task.finish_time is not None
    assert f"registered {model.model_id}, but deploy_as_blue stopped while deploying" in task.error
    assert "Triton did not load it" in task.error
    promotion = _promotion(task)
    assert promotion["step"] == "failed" and promotion["failed_step"] == "deploying"
    assert "Triton did not load it" in promotion["reason"]
    assert fine_tuning_task_to_proto(task).promotion.step == fine_tune_pb2.PROMOTION_STEP_FAILED
    async with world.pool.acquire() as conn:
        assert (await catalog.get_model(conn, model.model_id)).model_id == model.model_id
    assert await world.alias() == (world.blue.collection_id, None)


async def test_a_failed_reindex_fails_the_task_and_blue_stays(world: World) -> None:
    task_id, model = await _chain(world, deployed=True)
    started, task = await _advance(world, task_id)
    assert [t.kind for t in started] == ["reindex"]  # already deployed: no deployment task
    assert "deploy_task_id" not in _promotion(task)
    await store.cancel_task(world.pool, started[0].task_id)
    _, task = await _advance(world, task_id)
    assert task.status == "failed"
    assert "while reindexing" in task.error and "canceled" in task.error
    assert await world.alias() == (world.blue.collection_id, None)


async def test_the_cap_on_deployed_models_fails_the_chain_naming_the_setting(
    world: World,
) -> None:
    world.settings = world.settings.model_copy(update={"max_deployed_models": 1})
    task_id, _ = await _chain(world)
    started, task = await _advance(world, task_id)
    assert started == []
    assert task.status == "failed" and "max_deployed_models" in task.error
    assert await world.pool.fetchval("SELECT count(*) FROM tasks WHERE kind = 'deployment'") == 0


async def test_a_canceled_chain_does_not_move(world: World) -> None:
    task_id, _ = await _chain(world)
    await store.cancel_task(world.pool, task_id)
    assert await waiting_chains(world.pool) == []
    started, task = await _advance(world, task_id)
    assert started == [] and task.status == "canceled"
    assert await world.pool.fetchval("SELECT count(*) FROM tasks WHERE kind = 'deployment'") == 0


async def test_canceling_the_task_cancels_the_deployment_its_chain_started(world: World) -> None:
    task_id, _ = await _chain(world)
    started, _ = await _advance(world, task_id)
    assert [t.kind for t in started] == ["deployment"]
    canceled = await cancel_with_chain(world.pool, task_id)
    assert canceled.status == "canceled"
    assert (await store.get_task(world.pool, started[0].task_id)).status == "canceled"


async def test_canceling_the_task_cancels_its_reindex_and_blue_stays(world: World) -> None:
    task_id, _ = await _chain(world, deployed=True)
    started, _ = await _advance(world, task_id)
    assert [t.kind for t in started] == ["reindex"]
    await cancel_with_chain(world.pool, task_id)
    assert (await store.get_task(world.pool, started[0].task_id)).status == "canceled"
    assert await world.alias() == (world.blue.collection_id, None)


async def test_a_deployment_asked_for_by_someone_else_goes_on(world: World) -> None:
    task_id, model = await _chain(world)
    async with world.pool.acquire() as conn:
        theirs, _ = await start_deploy(conn, world.settings, model.model_id)
    started, task = await _advance(world, task_id)
    assert started == [] and _promotion(task)["deploy_task_id"] == theirs.task_id
    await cancel_with_chain(world.pool, task_id)
    assert (await store.get_task(world.pool, theirs.task_id)).status == "pending"


async def test_canceling_an_ended_task_is_refused_and_changes_nothing(world: World) -> None:
    task_id, _ = await _chain(world)
    started, _ = await _advance(world, task_id)
    await cancel_with_chain(world.pool, task_id)
    with pytest.raises(FailedPrecondition, match="task_id"):
        await cancel_with_chain(world.pool, task_id)
    with pytest.raises(NotFound):
        await cancel_with_chain(world.pool, "00000000-0000-0000-0000-000000000000")


async def _promote(world: World) -> tuple[Task, Model]:
    task_id, model = await _chain(world, deployed=True)
    started, _ = await _advance(world, task_id)
    assert (await run_reindex(world, started[0].task_id)).status == "done"
    started, task = await _advance(world, task_id)
    assert task.status == "done", task.error
    return task, model


async def test_a_second_promotion_deletes_the_stale_collection_and_undeploys_it(
    world: World,
) -> None:
    base = world.blue
    _, first = await _promote(world)
    task_id, _ = await _chain(world, deployed=True)
    started, _ = await _advance(world, task_id)
    assert (await run_reindex(world, started[0].task_id)).status == "done"
    sent, task = await _advance(world, task_id)
    promotion = _promotion(task)
    assert task.status == "done"
    assert promotion["previous_collection_id"] == first.model_id
    assert promotion["deleted_collection_id"] == base.collection_id
    assert [(t.kind, t.params) for t in sent] == [
        ("deployment", {"action": "undeploy", "model_id": base.model.model_id})
    ]
    deleted = await world.pool.fetchrow(
        "SELECT state, delete_time FROM collections WHERE collection_id = $1", base.collection_id
    )
    assert deleted["state"] == "retired" and deleted["delete_time"] is not None
    assert (await world.alias())[1] == first.model_id


async def test_the_stale_collection_is_kept_when_configured(world: World) -> None:
    world.settings = world.settings.model_copy(update={"promotion_delete_stale": False})
    await _promote(world)
    task, _ = await _promote(world)
    assert "deleted_collection_id" not in _promotion(task)
    assert await world.pool.fetchval(
        "SELECT delete_time IS NULL FROM collections WHERE collection_id = $1",
        world.blue.collection_id,
    )


def test_the_first_promotion_follows_the_gate() -> None:
    assert first_promotion(deploy_as_blue=False, deployable=True, model_id="m", margin=0.0) is None
    first = first_promotion(deploy_as_blue=True, deployable=True, model_id="m", margin=0.0)
    assert first is not None and first.as_json() == {"step": "deploying", "model_id": "m"}
    skipped = first_promotion(deploy_as_blue=True, deployable=False, model_id="m", margin=0.01)
    assert skipped is not None and skipped.step == "skipped"
    assert "0.01" in skipped.reason and "ES_FINE_TUNING_GATE_MARGIN" in skipped.reason
    # What is stored reads back as it was; a key the chain does not know is dropped.
    assert Promotion.of({**skipped.as_json(), "unknown": 1}) == skipped
