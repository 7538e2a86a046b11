"""Ordered writes on a real PostgreSQL: a write task replayed after a newer write of the same
item (its worker was killed, the sweeper sent it again) leaves the newer one, and says so.

Requests are accepted by the use cases the server calls; tasks run in this process through the
worker runtime (claim, handler, outcome), with the test's database and hash encoders. A worker
killed mid-task is a claim whose lease has run out: the next run is a replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

import es_workers.upsertion as upsertion_worker
from es_cli.embedded import EmbeddedPostgres
from es_core.context import Context
from es_core.domain import Collection
from es_core.item_input import ItemInput
from es_core.items_use_case import (
    DeleteItemsInput,
    GetItemsInput,
    UpsertItemsInput,
    delete_items,
    get_items,
    upsert_items,
)
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.reindex.pages import build_destination_rows, read_items, write_page
from es_core.reindex.start import create_reindex
from es_core.storage import catalog, item_rows
from es_core.tasks import store
from es_core.tasks.model import Task
from es_core.tasks.results import DeletionResult, UpsertionResult, result_of
from es_core.upsertion import build_rows
from es_workers import runtime
from tests.integration.blue_green import (
    World,
    fresh_world,
    hash_model,
    plan_reindex,
    run_subtask,
    text_items,
)
from tests.integration.helpers import RecordingSender
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def world(
    pg_server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[World]:
    """A fresh database the worker runtime of this process runs tasks against."""
    async with fresh_world(pg_server.dsn) as w:
        plugin = TextMiniLMPlugin(w.settings)
        monkeypatch.setattr(
            runtime, "_context", runtime.WorkerContext(w.settings, w.pool, w.registry, plugin)
        )
        yield w


def _context(world: World) -> Context:
    return Context(world.settings, world.pool, RecordingSender(), world.index, TOKENS)


async def _upsert(world: World, **payloads: str) -> Task:
    """Accept an upsert of one item per keyword (object id = its payload's ``v``)."""
    items = [ItemInput(oid, {"v": v}, text=f"{oid} says {v}") for oid, v in payloads.items()]
    return await upsert_items(_context(world), UpsertItemsInput("", items))


async def _delete(world: World, *object_ids: str) -> Task:
    return await delete_items(_context(world), DeleteItemsInput("", list(object_ids)))


async def _kill_worker_of(world: World, task: Task) -> None:
    """A worker took the task and died before finishing it: its lease has run out."""
    assert await store.claim_task(world.pool, task.task_id, "killed-worker", 0) is not None


async def _killed_before_recording(world: World, task: Task) -> Task:
    """The task's row as a worker leaves it that wrote everything and died before saying so."""
    await world.pool.execute(
        "UPDATE tasks SET status = 'processing', lease_owner = 'killed-worker',"
        " lease_expires_at = now() - interval '1 second', result = '{}', finish_time = NULL"
        " WHERE task_id = $1",
        task.task_id,
    )
    return await store.get_task(world.pool, task.task_id)


async def _run(world: World, task: Task) -> Task:
    """Run (or replay) the task as a worker does; returns it as it ended."""
    handler = upsertion_worker._upsert if task.kind == "upsertion" else upsertion_worker._delete
    assert await runtime.execute(task.task_id, handler) == "done"
    return await store.get_task(world.pool, task.task_id)


async def _stored(world: World, collection: Collection, *object_ids: str) -> dict[str, Any]:
    """object_id -> (payload's v, version) of the originals the collection holds."""
    items = await item_rows.get_items(
        world.pool, collection, list(object_ids), include_vectors=False
    )
    return {i.object_id: (i.payload["v"], i.version) for i in items}


def _version(task: Task) -> int:
    return int(task.params["version"])


async def test_a_replayed_older_upsert_leaves_the_newer_one_and_names_it(world: World) -> None:
    first = await _upsert(world, x="a1", y="a1")
    await _kill_worker_of(world, first)
    second = await _upsert(world, x="b2")
    assert _version(second) > _version(first)  # fixed when accepted, in order
    second = await _run(world, second)
    assert result_of(second) == UpsertionResult(upserted_count=1)

    replayed = await _run(world, first)

    assert await _stored(world, world.blue, "x", "y") == {
        "x": ("b2", _version(second)),
        "y": ("a1", _version(first)),
    }
    assert result_of(replayed) == UpsertionResult(
        upserted_count=1, superseded_count=1, superseded_object_ids=["x"]
    )
    # Through the read use case too: the newer item, one head, its own parts.
    read = await get_items(_context(world), GetItemsInput("", ["x"]))
    assert [(i.payload, i.version) for i in read.items] == [({"v": "b2"}, _version(second))]
    assert [p.text for p in read.items[0].parts] == ["x says b2"]

    # A replay of the newer task itself writes again: the same request, the same rows.
    again = await _killed_before_recording(world, second)
    assert result_of(await _run(world, again)) == UpsertionResult(upserted_count=1)
    assert await _stored(world, world.blue, "x") == {"x": ("b2", _version(second))}


async def test_a_replayed_older_delete_leaves_an_item_written_after_it(world: World) -> None:
    await _run(world, await _upsert(world, x="a1", z="a1"))
    deletion = await _delete(world, "x", "z", "never-written")
    await _kill_worker_of(world, deletion)
    rewrite = await _run(world, await _upsert(world, x="b3"))

    replayed = await _run(world, deletion)

    assert await _stored(world, world.blue, "x", "z") == {"x": ("b3", _version(rewrite))}
    assert result_of(replayed) == DeletionResult(
        deleted_count=1, missing_count=1, superseded_count=1, superseded_object_ids=["x"]
    )


async def test_a_replayed_older_upsert_does_not_bring_back_a_deleted_item(world: World) -> None:
    await _run(world, await _upsert(world, x="a1"))
    upsert = await _upsert(world, x="a2", w="a2")
    await _kill_worker_of(world, upsert)
    deletion = await _run(world, await _delete(world, "x", "w"))
    assert result_of(deletion) == DeletionResult(deleted_count=1, missing_count=1)

    replayed = await _run(world, upsert)

    assert await _stored(world, world.blue, "x", "w") == {}
    assert await item_rows.count_originals(world.pool, world.blue) == 0  # searches find nothing
    assert result_of(replayed) == UpsertionResult(
        superseded_count=2, superseded_object_ids=["x", "w"]
    )
    # The tombstone stops older writes only: an upsert accepted after the deletion lands.
    later = await _run(world, await _upsert(world, x="c9"))
    assert await _stored(world, world.blue, "x") == {"x": ("c9", _version(later))}


async def test_a_reindex_in_flight_keeps_the_newer_version_in_the_green_collection(
    world: World,
) -> None:
    await _run(world, await _upsert(world, **{i.object_id: "old" for i in text_items(12)}, y="old"))
    stale = await _upsert(world, **{"doc-0003": "stale"}, y="stale")
    await _kill_worker_of(world, stale)
    destination_model = await world.add_model(hash_model(metric="dot"))
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=destination_model.model_id,
        )
    green = await world.collection(started.destination_collection_id)
    children = await plan_reindex(world, started.task.task_id)
    # Part of the copy is done when the newer writes come, the rest after the replay.
    await run_subtask(world, children[0].task_id, "reindex-worker")
    newer = await _run(world, await _upsert(world, **{"doc-0003": "new"}))
    deletion = await _run(world, await _delete(world, "y"))
    assert result_of(deletion) == DeletionResult(deleted_count=1)
    replayed = await _run(world, stale)
    for child in children[1:]:
        await run_subtask(world, child.task_id, "reindex-worker")

    assert (await store.get_task(world.pool, started.task.task_id)).status == "done"
    assert result_of(replayed) == UpsertionResult(
        superseded_count=2, superseded_object_ids=["doc-0003", "y"]
    )
    for collection in (world.blue, green):
        assert await _stored(world, collection, "doc-0003", "y") == {
            "doc-0003": ("new", _version(newer))
        }
    assert sorted(await world.originals(green)) == sorted(await world.originals(world.blue))
    # The copy carried each item's version: an older write replayed now is refused there too.
    again = await _killed_before_recording(world, stale)
    assert result_of(await _run(world, again)) == result_of(replayed)


async def test_a_page_does_not_copy_over_a_newer_deletion_in_the_destination(
    world: World,
) -> None:
    """Writes reach both collections, so this needs a write to the destination alone: the
    page must still never undo it."""
    await _run(world, await _upsert(world, p="v1", q="v1"))
    model = await world.add_model(hash_model())
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
        )
        green = await world.collection(started.destination_collection_id)
        newer = await conn.fetchval("SELECT nextval('item_write_versions')")
        await item_rows.delete_items(conn, green, ["p"], version=newer)
    items = await read_items(world.pool, world.blue, ["p", "q"])
    rows = build_destination_rows(items, green, world.registry)
    async with world.pool.acquire() as conn, conn.transaction():
        outcome = await write_page(conn, world.blue, green, ["p", "q"], items, rows)
    assert (outcome.copied, outcome.already_present, outcome.gone) == (1, 0, 1)
    assert sorted(await world.originals(green)) == ["q"]


async def test_racing_writes_of_a_new_item_end_as_the_newest_one_says(world: World) -> None:
    """No rows to lock yet: the versions row alone makes racing writers take turns, so the item
    never ends with rows and a newer tombstone, or without the newest upsert's rows."""
    rows = {
        v: build_rows(
            [ItemInput("n", {"v": str(v)}, text=f"n {v}")],
            world.blue,
            world.registry,
            world.settings,
        )
        for v in (1, 2, 3)
    }

    async def write(version: int, delete: bool) -> None:
        async with world.pool.acquire() as conn:
            if delete:
                await item_rows.delete_items(conn, world.blue, ["n"], version=version)
            else:
                await item_rows.replace_items(
                    conn, world.blue, rows[version], ["n"], version=version
                )

    for newest_deletes in (True, False, True, False):
        await world.pool.execute(f"DELETE FROM {catalog.versions_table(world.blue)}")
        await world.pool.execute(f"DELETE FROM {catalog.items_table(world.blue)}")
        writes = [(1, False), (2, not newest_deletes), (3, newest_deletes)]
        await asyncio.gather(
            *(write(v, d) for v, d in (writes if newest_deletes else writes[::-1]))
        )
        latest = await world.pool.fetchrow(
            f"SELECT version, deleted FROM {catalog.versions_table(world.blue)}"
        )
        stored = await _stored(world, world.blue, "n")
        assert (latest["version"], latest["deleted"]) == (3, newest_deletes)
        assert stored == ({} if newest_deletes else {"n": ("3", 3)})
