"""Categories follow their model on real PostgreSQL: a reindex into another model copies the
source model's categories re-encoded by the destination's model (a step of the parent
reindex task, replayable), category writes during the reindex reach both models, the blue
switch and its rollback move PredictCategories with the items, and deleting a model's last
item collection drops its categories.

Models are hash "encoders" salted by model id (tests/integration/blue_green.py), so every
model gives its own vectors and a copy's vectors say which model encoded them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.categories.model import Category
from es_core.categories.predict import PredictCategoriesInput, predict_categories
from es_core.categories.selectors import DistanceSelector
from es_core.categories.use_case import (
    DeleteCategoriesInput,
    UpsertCategoriesInput,
    delete_categories,
    list_categories,
    upsert_categories,
)
from es_core.collections import blue as blue_switch
from es_core.collections.lifecycle import delete_collection
from es_core.collections.write_targets import categories_in_step, write_targets
from es_core.context import Context
from es_core.domain import Collection, Model
from es_core.errors import FailedPrecondition, NotFound
from es_core.pagination import PageRequest
from es_core.plugins.text_categories import TextCategoriesPlugin
from es_core.reindex import categories as categories_step
from es_core.reindex.categories import copy_categories
from es_core.reindex.pages import build_destination_rows, read_items
from es_core.reindex.start import create_reindex
from es_core.search.use_case import SearchContext
from es_core.storage import catalog
from es_core.tasks import store
from es_core.tasks.model import Task, Waiting
from es_core.tasks.results import ReindexResult, parse_result
from es_core.upsertion import run_upsertion
from es_workers import reindex as reindex_worker
from es_workers import upsertion as upsertion_worker
from es_workers.runtime import WorkerContext
from tests.integration.blue_green import (
    World,
    claim,
    fresh_world,
    keep_going,
    run_subtask,
    text_items,
)
from tests.integration.helpers import RecordingSender
from tests.integration.tiny_plugin import TinyDotPlugin
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

FRUIT = [
    Category("apples", "Apples", "apple pie"),
    Category("pears", "Pears", "pear tart", {"aisle": 3}),
    Category("plums", "Plums", ""),  # no text: the name is encoded
]


@dataclass
class Stage:
    """The hash world with the categories use cases and the workers' own handlers."""

    world: World
    sender: RecordingSender
    plugin: TextCategoriesPlugin

    @property
    def pool(self) -> asyncpg.Pool:
        return self.world.pool

    @property
    def ctx(self) -> Context:
        w = self.world
        return Context(w.settings, w.pool, self.sender, w.index, TOKENS)

    @property
    def search(self) -> SearchContext:
        return SearchContext(self.world.settings, self.pool, self.world.registry, TOKENS)

    @property
    def worker(self) -> WorkerContext:
        w = self.world
        return WorkerContext(w.settings, w.pool, w.registry, TinyDotPlugin(w.settings))

    async def run_write(self, task: Task) -> Task:
        """An upsertion or deletion through the upsertion worker's own handler."""
        handler = upsertion_worker._upsert if task.kind == "upsertion" else upsertion_worker._delete
        result = await handler(self.worker, task, keep_going)
        await self.pool.execute(
            "UPDATE tasks SET status = 'done', result = $2 WHERE task_id = $1::uuid",
            task.task_id,
            result,
        )
        return await store.get_task(self.pool, task.task_id)

    async def upsert(self, categories: list[Category], collection_id: str = "") -> Task:
        task = await upsert_categories(
            self.ctx, self.plugin, UpsertCategoriesInput(categories, collection_id)
        )
        return await self.run_write(task)

    async def delete(self, ids: list[str], collection_id: str = "") -> Task:
        return await self.run_write(
            await delete_categories(self.ctx, DeleteCategoriesInput(ids, collection_id))
        )

    async def start_reindex(self, model: Model | None = None) -> tuple[Task, Collection]:
        """A reindex of blue into ``model`` (a new hash model when None)."""
        destination_model = model or await self.world.add_model()
        async with self.pool.acquire() as conn:
            started = await create_reindex(
                conn,
                self.world.settings,
                self.world.index,
                source_collection_id="",
                destination_model_id=destination_model.model_id,
            )
        return started.task, await self.world.collection(started.destination_collection_id)

    async def run_parent(self, parent_id: str) -> list[Task]:
        """The parent's run through the reindex worker's own handler (its categories step,
        then its plan); returns the subtasks it would send."""
        sent: list[Task] = []

        async def keep(_: Any, child: Task) -> None:
            sent.append(child)

        parent = await claim(self.pool, parent_id, "parent-worker")
        outcome = await reindex_worker._handler(keep)(self.worker, parent, keep_going)
        if isinstance(outcome, Waiting):
            await store.start_waiting(
                self.pool, parent_id, "parent-worker", outcome.result, outcome.message
            )
        else:
            await store.finish_task(self.pool, parent_id, "parent-worker", "done", result=outcome)
        return sent

    async def reindex(self, model: Model | None = None) -> tuple[Task, Collection]:
        """A whole reindex of blue into a new model, as the workers run it."""
        parent, destination = await self.start_reindex(model)
        for child in await self.run_parent(parent.task_id):
            await run_subtask(self.world, child.task_id, "range-worker")
        return await store.get_task(self.pool, parent.task_id), destination

    async def categories(self, model: Model) -> dict[str, dict[str, Any]]:
        """The model's blue categories: id -> {payload, text, vector, version}."""
        async with self.pool.acquire() as conn:
            collection_id = await conn.fetchval(
                "SELECT collection_id FROM categories_blue WHERE model_id = $1", model.model_id
            )
            assert collection_id is not None, f"{model.model_id} has no categories"
            collection = await catalog.get_collection(conn, collection_id, kind="categories")
        rows = await self.pool.fetch(
            f"SELECT p.object_id, p.text, p.vector, h.payload, h.version"
            f" FROM {catalog.items_table(collection)} p JOIN {catalog.items_table(collection)} h"
            f" ON h.object_id = p.object_id AND h.is_average"
            f" WHERE NOT p.is_average ORDER BY p.object_id"
        )
        return {
            r["object_id"]: {
                "payload": r["payload"],
                "text": r["text"],
                "vector": np.asarray(r["vector"].to_numpy()),
                "version": r["version"],
            }
            for r in rows
        }

    def encoded(self, model: Model, text: str) -> Any:
        return self.world.registry.get(model).encode_items([text])[0]


@pytest_asyncio.fixture
async def stage(pg_server: EmbeddedPostgres) -> AsyncIterator[Stage]:
    async with fresh_world(pg_server.dsn) as world:
        await run_upsertion(
            world.pool, world.blue, text_items(6), world.registry, world.settings, keep_going
        )
        yield Stage(world, RecordingSender(), TextCategoriesPlugin(world.settings))


async def _collection(stage: Stage, collection_id: str) -> Collection:
    async with stage.pool.acquire() as conn:
        return await catalog.get_collection(conn, collection_id, kind="categories")


def _assert_encoded_by(stage: Stage, model: Model, held: dict[str, dict[str, Any]]) -> None:
    for category_id, row in held.items():
        assert row["vector"] == pytest.approx(stage.encoded(model, row["text"]), abs=1e-6), (
            category_id
        )


# ---- the copy step -------------------------------------------------------------------------


async def test_a_reindex_into_another_model_brings_its_categories_re_encoded(
    stage: Stage,
) -> None:
    source_model = stage.world.blue.model
    await stage.upsert(FRUIT)
    parent, destination = await stage.reindex()
    assert parent.status == "done"
    assert parent.result["categories_copied"] == 3
    assert parse_result(ReindexResult, parent.result).categories_copied == 3
    assert parent.result["item_count"] == 6  # the items came along as before

    new_model = destination.model
    row = await stage.pool.fetchrow(
        "SELECT c.kind, c.state, b.collection_id FROM categories_blue b"
        " JOIN collections c USING (collection_id) WHERE b.model_id = $1",
        new_model.model_id,
    )
    assert dict(row) == {
        "kind": "categories",
        "state": "blue",
        "collection_id": f"categories/{new_model.model_id}",
    }
    old, new = await stage.categories(source_model), await stage.categories(new_model)
    assert sorted(new) == ["apples", "pears", "plums"]
    for category_id, copy in new.items():
        assert copy["payload"] == old[category_id]["payload"]
        assert copy["text"] == old[category_id]["text"]
        assert copy["version"] == old[category_id]["version"]  # the write that wrote it
        assert not np.allclose(copy["vector"], old[category_id]["vector"])
    _assert_encoded_by(stage, new_model, new)
    _assert_encoded_by(stage, source_model, old)
    listed = await list_categories(stage.ctx, destination.collection_id, PageRequest(10))
    assert listed.categories == sorted(FRUIT, key=lambda c: c.category_id)
    assert listed.categories_collection_id == f"categories/{new_model.model_id}"


async def test_the_copy_replayed_after_a_killed_worker_gives_the_same_state(
    stage: Stage,
) -> None:
    many = [Category(f"c{i}", f"C {i}", f"topic {i}") for i in range(7)]  # two pages of 5
    await stage.upsert(many)
    parent, destination = await stage.start_reindex()
    task = await claim(stage.pool, parent.task_id, "doomed-worker")

    async def lease_lost(fraction: float, message: str) -> bool:
        return False  # the first page committed, then the worker learns it lost the task

    stopped = await copy_categories(
        stage.pool, stage.world.registry, stage.world.index, task, batch_size=5, progress=lease_lost
    )
    assert stopped is None
    assert sorted(await stage.categories(destination.model)) == ["c0", "c1", "c2", "c3", "c4"]

    # Meanwhile a newer write and a deletion reach both models' categories.
    async with stage.pool.acquire() as conn:
        source = await catalog.get_collection(
            conn, f"categories/{stage.world.blue.model.model_id}", kind="categories"
        )
    read_before = await read_items(stage.pool, source, ["c3"])
    await stage.upsert([Category("c3", "C 3 renamed", "another topic")])
    await stage.delete(["c5"])
    # A page read before that write and written after it leaves the newer write alone.
    destination_categories = await _collection(stage, f"categories/{destination.model.model_id}")
    rows = build_destination_rows(read_before, destination_categories, stage.world.registry)
    assert await categories_step._write(stage.pool, destination_categories, read_before, rows) == 0
    # The worker that takes the task over copies again from the start.
    again = await copy_categories(
        stage.pool,
        stage.world.registry,
        stage.world.index,
        task,
        batch_size=5,
        progress=keep_going,
    )
    assert again == 6  # what the source holds; c5's tombstone keeps it out
    first = await stage.categories(destination.model)
    assert sorted(first) == ["c0", "c1", "c2", "c3", "c4", "c6"]
    assert first["c3"]["payload"]["name"] == "C 3 renamed"
    assert first["c3"]["vector"] == pytest.approx(
        stage.encoded(destination.model, "another topic"), abs=1e-6
    )
    # Once more: the same rows, the same count.
    third = await copy_categories(
        stage.pool, stage.world.registry, stage.world.index, task, batch_size=5, progress=keep_going
    )
    assert third == 6
    replayed = await stage.categories(destination.model)
    assert sorted(replayed) == sorted(first)
    for category_id, row in replayed.items():
        assert row["version"] == first[category_id]["version"]
        assert row["payload"] == first[category_id]["payload"]
        assert row["vector"] == pytest.approx(first[category_id]["vector"])
    collections = await stage.pool.fetchval(
        "SELECT count(*) FROM collections WHERE kind = 'categories'"
    )
    assert collections == 2


async def test_nothing_is_copied_for_the_same_model_or_a_model_without_categories(
    stage: Stage,
) -> None:
    parent, destination = await stage.reindex()
    assert parent.status == "done" and parent.result["categories_copied"] == 0
    assert await stage.pool.fetchval("SELECT count(*) FROM categories_blue") == 0

    await stage.upsert(FRUIT)
    blue = stage.world.blue
    same = replace(
        parent,
        params={
            **parent.params,
            "resolved_source_collection_id": blue.collection_id,
            "destination_collection_id": blue.collection_id,
        },
    )
    copied = await copy_categories(
        stage.pool, stage.world.registry, stage.world.index, same, batch_size=5, progress=keep_going
    )
    assert copied == 0
    # blue and its reindexed green are kept in step: the upsert created both models' categories.
    models = await stage.pool.fetch("SELECT model_id FROM categories_blue ORDER BY model_id")
    assert sorted(r["model_id"] for r in models) == sorted(
        [blue.model.model_id, destination.model.model_id]
    )
    assert (
        await stage.pool.fetchval("SELECT count(*) FROM collections WHERE kind = 'categories'") == 2
    )


async def test_a_reindex_whose_destination_was_deleted_fails_its_categories_step(
    stage: Stage,
) -> None:
    await stage.upsert(FRUIT)
    parent, destination = await stage.start_reindex()
    async with stage.pool.acquire() as conn:
        await delete_collection(conn, stage.world.settings, destination.collection_id)
    with pytest.raises(NotFound):
        await copy_categories(
            stage.pool,
            stage.world.registry,
            stage.world.index,
            parent,
            batch_size=5,
            progress=keep_going,
        )
    assert (
        await stage.pool.fetchval(
            "SELECT count(*) FROM categories_blue WHERE model_id = $1", destination.model.model_id
        )
        == 0
    )


# ---- writes during a reindex -----------------------------------------------------------------


async def test_category_writes_during_a_reindex_reach_both_models_in_version_order(
    stage: Stage,
) -> None:
    source_model = stage.world.blue.model
    await stage.upsert(FRUIT[:1])
    parent, destination = await stage.start_reindex()
    # A write accepted once the reindex started reaches both models even before the parent
    # runs: the use case creates the categories collection of every model kept in step.
    await stage.upsert(FRUIT[1:2])
    assert sorted(await stage.categories(destination.model)) == ["pears"]
    await stage.run_parent(parent.task_id)  # the copy brings what was written before
    assert sorted(await stage.categories(destination.model)) == ["apples", "pears"]
    async with stage.pool.acquire() as conn:
        in_step = [c.collection_id for c in await categories_in_step(conn)]
    assert in_step == [
        f"categories/{source_model.model_id}",
        f"categories/{destination.model.model_id}",
    ]

    # From then on every write reaches both, encoded by each model, whichever it names.
    await stage.upsert(FRUIT[2:])
    older = await upsert_categories(
        stage.ctx, stage.plugin, UpsertCategoriesInput([Category("figs", "Figs", "old figs")])
    )
    newer = await upsert_categories(
        stage.ctx,
        stage.plugin,
        UpsertCategoriesInput([Category("figs", "Figs", "fresh figs")], destination.collection_id),
    )
    await stage.run_write(newer)
    replayed = await stage.run_write(older)  # a late worker runs the older write
    assert replayed.result["superseded_object_ids"] == ["figs"]
    await stage.delete(["pears"], destination.collection_id)
    old, new = await stage.categories(source_model), await stage.categories(destination.model)
    assert sorted(old) == sorted(new) == ["apples", "figs", "plums"]
    assert old["figs"]["text"] == new["figs"]["text"] == "fresh figs"
    _assert_encoded_by(stage, source_model, old)
    _assert_encoded_by(stage, destination.model, new)


async def test_the_first_categories_of_a_model_mid_reindex_are_created_for_both(
    stage: Stage,
) -> None:
    parent, destination = await stage.start_reindex()
    await stage.run_parent(parent.task_id)  # no categories yet: nothing to copy
    assert await stage.pool.fetchval("SELECT count(*) FROM categories_blue") == 0
    task = await upsert_categories(stage.ctx, stage.plugin, UpsertCategoriesInput(FRUIT))
    assert task.params["collection_id"] == f"categories/{stage.world.blue.model.model_id}"
    await stage.run_write(task)
    assert sorted(await stage.categories(destination.model)) == ["apples", "pears", "plums"]
    async with stage.pool.acquire() as conn:
        addressed = await catalog.get_collection(conn, task.params["collection_id"], kind=None)
        assert len(await write_targets(conn, addressed)) == 2


# ---- switch, rollback, deletion -----------------------------------------------------------


async def _predict(stage: Stage, text: str) -> tuple[str, list[tuple[str, float]]]:
    found = await predict_categories(
        stage.search,
        stage.plugin,
        PredictCategoriesInput(text, selector=DistanceSelector(0.001)),
    )
    return found.categories_collection_id, [
        (p.category_id, round(p.distance, 4)) for p in found.predictions
    ]


async def test_predict_categories_follows_the_blue_switch_and_its_rollback(stage: Stage) -> None:
    source_model = stage.world.blue.model
    await stage.upsert(FRUIT)
    _, destination = await stage.reindex()
    new_model = destination.model
    # The query encoder of a hash model is its item encoder: a category's own text is at 0.
    assert await _predict(stage, "pear tart") == (
        f"categories/{source_model.model_id}",
        [("pears", 0.0)],
    )
    async with stage.pool.acquire() as conn:
        await blue_switch.switch_blue(conn, destination.collection_id)
    assert await _predict(stage, "pear tart") == (
        f"categories/{new_model.model_id}",
        [("pears", 0.0)],
    )
    # The rollback target's categories are kept in step with blue's.
    await stage.upsert([Category("figs", "Figs", "fig jam")])
    assert await _predict(stage, "fig jam") == (f"categories/{new_model.model_id}", [("figs", 0.0)])
    async with stage.pool.acquire() as conn:
        await blue_switch.rollback_blue(conn)
    assert await _predict(stage, "fig jam") == (
        f"categories/{source_model.model_id}",
        [("figs", 0.0)],
    )


async def test_deleting_a_models_last_collection_drops_its_categories(stage: Stage) -> None:
    source_model = stage.world.blue.model
    await stage.upsert(FRUIT)
    _, destination = await stage.reindex()
    async with stage.pool.acquire() as conn:
        await blue_switch.switch_blue(conn, destination.collection_id)
        old = await catalog.get_collection(
            conn, f"categories/{source_model.model_id}", kind="categories"
        )
        # Blue is refused, and its categories stay.
        with pytest.raises(FailedPrecondition):
            await delete_collection(conn, stage.world.settings, destination.collection_id)
        await delete_collection(conn, stage.world.settings, stage.world.blue.collection_id)
        with pytest.raises(NotFound):
            await catalog.get_collection(conn, old.collection_id, kind="categories")
        assert await conn.fetchval("SELECT to_regclass($1)", old.table_name) is None
        row = await conn.fetchrow(
            "SELECT state, delete_time IS NOT NULL AS deleted FROM collections"
            " WHERE collection_id = $1",
            old.collection_id,
        )
        assert dict(row) == {"state": "retired", "deleted": True}
        pointers = await conn.fetch("SELECT model_id FROM categories_blue")
        assert [r["model_id"] for r in pointers] == [destination.model.model_id]
    # Writes now reach the remaining model's categories only.
    done = await stage.upsert([Category("figs", "Figs", "fig jam")])
    assert done.result == {"upserted_count": 1}
    assert sorted(await stage.categories(destination.model)) == ["apples", "figs", "pears", "plums"]

    # A reindex back into the first model brings the categories to life again, re-encoded.
    back, _ = await stage.reindex(source_model)
    assert back.status == "done" and back.result["categories_copied"] == 4
    revived = await stage.categories(source_model)
    assert sorted(revived) == ["apples", "figs", "pears", "plums"]
    _assert_encoded_by(stage, source_model, revived)


async def test_deleting_a_green_collection_mid_reindex_drops_its_models_categories(
    stage: Stage,
) -> None:
    source_model = stage.world.blue.model
    await stage.upsert(FRUIT)
    parent, destination = await stage.start_reindex()
    await stage.run_parent(parent.task_id)
    assert sorted(await stage.categories(destination.model)) == ["apples", "pears", "plums"]
    async with stage.pool.acquire() as conn:
        await delete_collection(conn, stage.world.settings, destination.collection_id)
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM categories_blue WHERE model_id = $1",
                destination.model.model_id,
            )
            == 0
        )
        assert [c.collection_id for c in await categories_in_step(conn)] == [
            f"categories/{source_model.model_id}"
        ]
    # The source model's categories are untouched, and writes reach them alone.
    done = await stage.upsert([Category("figs", "Figs", "fig jam")])
    assert done.result == {"upserted_count": 1}
    assert sorted(await stage.categories(source_model)) == ["apples", "figs", "pears", "plums"]
