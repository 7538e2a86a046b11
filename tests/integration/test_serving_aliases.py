"""The MLflow aliases ``blue`` and ``rollback`` follow every switch and rollback (a real
sqlite MLflow store, a real database): they name the registry versions of the blue collection
and of the rollback target, and a model the registry does not hold leaves its alias unset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.collections import blue
from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.local import BASE_MODEL_SOURCE
from es_core.fine_tuning.experiments import MLFLOW_SOURCE_PREFIX, MlflowExperiments, models_uri
from es_core.serving.serving_aliases import BLUE_ALIAS, ROLLBACK_ALIAS, AliasFollower
from es_core.storage import catalog
from tests.integration.blue_green import World, fresh_world, hash_model

pytestmark = pytest.mark.integration

NAME = "es-test-registered"


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn) as w:
        yield w


def _version(experiments: MlflowExperiments, tmp_path: Path, n: int) -> str:
    directory = tmp_path / f"model-{n}"
    directory.mkdir()
    (directory / "weights.txt").write_text(str(n))
    run = experiments.start_task(f"task-{n}", {})
    experiments.finish_task(run, {}, "FINISHED")
    trial = experiments.log_trial(run, 0, {}, {"ndcg@10": 0.5}, directory)
    return experiments.register(NAME, trial, {}, {}, deployable=True)


async def _collection_of(world: World, source: str) -> str:
    model = hash_model()
    model = Model(**{**model.__dict__, "source": source})
    await world.add_model(model)
    async with world.pool.acquire() as conn:
        created = await catalog.create_collection(
            conn, model.model_id, model, state="green", hnsw_m=16, hnsw_ef_construction=64
        )
    return created.collection_id


def _aliases(experiments: MlflowExperiments) -> dict[str, str]:
    aliases = experiments.client().get_registered_model(NAME).aliases
    return {a: str(v) for a, v in aliases.items() if a in (BLUE_ALIAS, ROLLBACK_ALIAS)}


async def test_the_aliases_follow_switches_and_rollbacks(world: World, tmp_path: Path) -> None:
    experiments = MlflowExperiments(Settings(data_dir=tmp_path / "data"))
    base = experiments.upload_initial_model(NAME, _model_dir(tmp_path))
    v2 = _version(experiments, tmp_path, 2)
    v3 = _version(experiments, tmp_path, 3)
    follower = AliasFollower(experiments)
    registered = {
        v: await _collection_of(world, MLFLOW_SOURCE_PREFIX + models_uri(NAME, v)) for v in (v2, v3)
    }
    base_collection = await _collection_of(world, BASE_MODEL_SOURCE)

    async def switch(collection_id: str) -> None:
        async with world.pool.acquire() as conn:
            await blue.switch_blue(conn, collection_id)
        await follower.follow(world.pool)

    await follower.follow(world.pool)  # blue is the world's hash model: nothing to name
    assert _aliases(experiments) == {}
    await switch(base_collection)  # from a hash model to the base: still no registered model
    await switch(registered[v2])
    assert _aliases(experiments) == {BLUE_ALIAS: v2, ROLLBACK_ALIAS: base}
    await switch(registered[v3])
    assert _aliases(experiments) == {BLUE_ALIAS: v3, ROLLBACK_ALIAS: v2}
    async with world.pool.acquire() as conn:
        await blue.rollback_blue(conn)
    await follower.follow(world.pool)
    assert _aliases(experiments) == {BLUE_ALIAS: v2, ROLLBACK_ALIAS: v3}
    await switch(await _collection_of(world, hash_model().source))  # outside the registry
    assert _aliases(experiments) == {ROLLBACK_ALIAS: v2}


async def test_an_unreachable_registry_is_retried_at_the_next_call(
    world: World, tmp_path: Path
) -> None:
    good = MlflowExperiments(Settings(data_dir=tmp_path / "data"))
    v2 = _version(good, tmp_path, 2)
    collection = await _collection_of(world, MLFLOW_SOURCE_PREFIX + models_uri(NAME, v2))
    async with world.pool.acquire() as conn:
        await blue.switch_blue(conn, collection)
    # A store that cannot be opened fails at once (an HTTP one that does not answer is
    # retried by MLflow for minutes; the server does not wait for it, see the use case).
    unusable = "sqlite:////nonexistent-dir/mlflow.db"
    down = AliasFollower(MlflowExperiments(Settings(mlflow_tracking_uri=unusable)))
    await down.follow(world.pool)  # logged, not raised: the switch stands
    assert _aliases(good) == {}
    await AliasFollower(good).follow(world.pool)
    assert _aliases(good) == {BLUE_ALIAS: v2}


def _model_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "base-model"
    directory.mkdir()
    (directory / "weights.txt").write_text("base")
    return directory
