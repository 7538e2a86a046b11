"""Users' improved copies across a reindex on a real PostgreSQL. With
ES_REINDEX_USER_COPIES=recompute the reindex's end creates an improvement task, which rebuilds
the copies in the destination from the users' sessions, their queries encoded by the
destination's model; with ``drop`` (the default) nothing follows the reindex.

The models are the hash encoders of ``blue_green``; the adjuster is the real one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pydantic
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.clickstream import store as clicks
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.domain import Collection
from es_core.improvement.recompute import (
    NO_TEXT,
    PARAM,
    recompute_params,
    recompute_user_copies,
)
from es_core.improvement.run import improve_queued
from es_core.reindex.start import create_reindex
from es_core.storage import catalog
from es_core.storage.bulk_index import build_vector_index
from es_core.tasks import store, workflow
from es_core.upsertion import run_upsertion
from tests.integration.blue_green import (
    World,
    claim,
    copy_subtask,
    fresh_world,
    hash_model,
    keep_going,
    plan_reindex,
    run_reindex,
    text_items,
)

pytestmark = pytest.mark.integration

Copies = dict[tuple[str, str], np.ndarray]  # (object_id, part_id) -> vector


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn, reindex_user_copies="recompute") as w:
        await run_upsertion(w.pool, w.blue, text_items(12), w.registry, w.settings, keep_going)
        yield w


async def _clicked_session(
    world: World,
    session_id: str,
    user_id: str,
    query: str,
    clicked: str,
    *,
    text: bool = True,
    collection: Collection | None = None,
) -> None:
    """A search by ``user_id`` (on blue unless told) showing doc-0000.. doc-0004, one click,
    queued for improvement."""
    collection = collection or world.blue
    shown = [f"doc-{i:04d}" for i in range(5)]
    vector = world.registry.get(collection.model).encode_queries([query])[0]
    session = Session(
        session_id=session_id,
        results=[ShownResult(o, rank) for rank, o in enumerate(shown)],
        user_id=user_id,
        query_text=query if text else "",
        collection_id=collection.collection_id,
    )
    now = datetime.now(UTC)
    async with world.pool.acquire() as conn:
        assert (await clicks.register_session(conn, session, now, vector))[1]
        event = Event(f"{session_id}-click", session_id, clicked, "click")
        assert await clicks.push_events(conn, [event], now) == 1
        assert await clicks.queue_for_improvement(conn, [session_id]) == 1


async def _copies(world: World, collection: Collection, user_id: str) -> Copies:
    rows = await world.pool.fetch(
        f"SELECT object_id, part_id, vector FROM {catalog.items_table(collection)}"
        " WHERE user_id = $1",
        user_id,
    )
    return {(r["object_id"], r["part_id"]): r["vector"].to_numpy() for r in rows}


async def _original_parts(world: World, collection: Collection, object_id: str) -> Any:
    rows = await world.pool.fetch(
        f"SELECT vector FROM {catalog.items_table(collection)}"
        " WHERE object_id = $1 AND user_id IS NULL AND NOT is_average ORDER BY part_id",
        object_id,
    )
    return np.stack([r["vector"].to_numpy() for r in rows])


def _same(a: Copies, b: Copies) -> bool:
    return sorted(a) == sorted(b) and all(np.allclose(a[k], b[k], atol=1e-6) for k in a)


def _best_cosine(parts: np.ndarray, query: np.ndarray) -> float:
    return float(np.max(parts @ query / (np.linalg.norm(parts, axis=1) * np.linalg.norm(query))))


async def _reindexed(world: World) -> tuple[Collection, Any]:
    """A finished reindex of blue into a new model's collection, and its parent task."""
    model = await world.add_model(hash_model())
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
        )
    parent = await run_reindex(world, started.task.task_id)
    assert parent.status == "done", parent.error
    return await world.collection(started.destination_collection_id), parent


async def test_recompute_rebuilds_copies_in_the_destination_from_the_sessions(
    world: World,
) -> None:
    await _clicked_session(world, "s-alice-1", "alice", "first question", "doc-0003")
    await _clicked_session(world, "s-alice-2", "alice", "second question", "doc-0002")
    await _clicked_session(world, "s-bob", "bob", "vector only", "doc-0001", text=False)
    await _clicked_session(world, "s-frank", "frank", "frank's question", "doc-0004")
    improved = await improve_queued(world.pool, world.settings, world.registry)
    assert improved.improved == 4
    source_alice = await _copies(world, world.blue, "alice")
    source_bob = await _copies(world, world.blue, "bob")
    assert source_alice and source_bob

    destination, parent = await _reindexed(world)
    assert parent.params["user_copies"] == "recompute"
    follow_up = await store.get_task(world.pool, parent.result["user_copies_task_id"])
    assert follow_up.kind == "improvement" and follow_up.status == "pending"
    assert follow_up.params == recompute_params(world.blue.collection_id, destination.collection_id)
    # The reindex itself copied originals only.
    assert await _copies(world, destination, "alice") == {}

    report = await recompute_user_copies(
        world.pool, world.settings, world.registry, follow_up.params[PARAM]
    )
    assert (report.improved, report.skipped, report.users) == (3, 1, 2)
    assert report.notes == {NO_TEXT: 1}
    rebuilt = await _copies(world, destination, "alice")
    # The same items as in the source (what alice's sessions showed down to her clicks) ...
    assert sorted(rebuilt) == sorted(source_alice)
    # ... but in the destination's space: the clicked item moved towards the query as the
    # destination's model encodes it.
    query = world.registry.get(destination.model).encode_queries(["first question"])[0]
    before = _best_cosine(await _original_parts(world, destination, "doc-0003"), query)
    clicked = np.stack([v for (o, p), v in rebuilt.items() if o == "doc-0003" and p != ""])
    assert _best_cosine(clicked, query) > before
    assert await _copies(world, destination, "bob") == {}, "bob's query has no text"
    # The source keeps its copies as they were.
    assert _same(await _copies(world, world.blue, "alice"), source_alice)
    assert _same(await _copies(world, world.blue, "bob"), source_bob)
    assert not _same(rebuilt, source_alice), "the source's vectors were copied as they were"

    # A retried task rebuilds the same copies, from the originals again.
    again = await recompute_user_copies(
        world.pool, world.settings, world.registry, follow_up.params[PARAM]
    )
    assert again.as_dict() == report.as_dict()
    assert _same(await _copies(world, destination, "alice"), rebuilt)

    # Exactly what frank's one session gives when searched in the destination in the first
    # place: the twin's session is the same search, registered there and improved there.
    await _clicked_session(
        world, "s-twin", "frank-twin", "frank's question", "doc-0004", collection=destination
    )
    await improve_queued(world.pool, world.settings, world.registry)
    assert _same(
        await _copies(world, destination, "frank"), await _copies(world, destination, "frank-twin")
    )


async def test_a_session_improved_in_the_destination_joins_the_rebuild(world: World) -> None:
    await _clicked_session(world, "s-carol-1", "carol", "old question", "doc-0004")
    await improve_queued(world.pool, world.settings, world.registry)
    destination, parent = await _reindexed(world)
    # After the switch carol searches the new collection, and that session is improved there
    # before the recompute runs.
    query = world.registry.get(destination.model).encode_queries(["new question"])[0]
    session = Session(
        session_id="s-carol-2",
        results=[ShownResult(f"doc-{i:04d}", i) for i in range(6, 10)],
        user_id="carol",
        query_text="new question",
        collection_id=destination.collection_id,
    )
    now = datetime.now(UTC)
    async with world.pool.acquire() as conn:
        await clicks.register_session(conn, session, now, query)
        await clicks.push_events(
            conn, [Event("s-carol-2-c", "s-carol-2", "doc-0008", "click")], now
        )
        await clicks.queue_for_improvement(conn, ["s-carol-2"])
    await improve_queued(world.pool, world.settings, world.registry)
    assert {o for o, _ in await _copies(world, destination, "carol")} == {
        "doc-0006",
        "doc-0007",
        "doc-0008",
    }

    task = await store.get_task(world.pool, parent.result["user_copies_task_id"])
    report = await recompute_user_copies(
        world.pool, world.settings, world.registry, task.params[PARAM]
    )
    assert (report.improved, report.skipped) == (2, 0)
    objects = {o for o, _ in await _copies(world, destination, "carol")}
    assert objects == {f"doc-{i:04d}" for i in (0, 1, 2, 3, 4, 6, 7, 8)}


async def test_a_deleted_destination_is_reported_and_nothing_is_written(world: World) -> None:
    await _clicked_session(world, "s-dan", "dan", "a question", "doc-0002")
    await improve_queued(world.pool, world.settings, world.registry)
    params = recompute_params(world.blue.collection_id, "no-such-collection")[PARAM]
    report = await recompute_user_copies(world.pool, world.settings, world.registry, params)
    assert report.as_dict()["skipped_because"] == {"the destination collection was deleted": 1}
    assert report.improved == report.copies_written == 0
    users = await world.pool.fetchval(
        f"SELECT count(DISTINCT user_id) FROM {catalog.items_table(world.blue)}"
        " WHERE user_id IS NOT NULL"
    )
    assert users == 1


async def test_the_workflow_gives_the_follow_up_to_the_worker_that_ended_the_reindex(
    world: World,
) -> None:
    """Through ``es_core.tasks.workflow.after_run``, as the worker runtime calls it after each
    range: the range that ends the parent gets the follow-up to send; the others nothing."""
    model = await world.add_model(hash_model())
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
        )
    children = await plan_reindex(world, started.task.task_id)
    assert len(children) > 1
    sent = []
    for child in children:
        await copy_subtask(world, child.task_id, f"worker-{child.params['range_index']}")
        sent.append(
            await workflow.after_run(world.pool, world.settings, world.index, child.task_id)
        )
    # The range that ends the copy gets the subtask that builds the destination's index.
    assert sent[:-1] == [[]] * (len(children) - 1)
    [index_task] = sent[-1]
    assert index_task.params["build_index"] is True and index_task.status == "pending"
    assert (await store.get_task(world.pool, started.task.task_id)).status == "waiting"
    await claim(world.pool, index_task.task_id, "index-worker")
    result = await build_vector_index(world.pool, world.settings, started.destination_collection_id)
    await store.finish_task(world.pool, index_task.task_id, "index-worker", "done", result=result)
    followed = await workflow.after_run(world.pool, world.settings, world.index, index_task.task_id)
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "done"
    assert [t.task_id for t in followed] == [parent.result["user_copies_task_id"]]
    assert followed[0].kind == "improvement" and followed[0].status == "pending"
    # Asked again (the sweeper), the ended parent gives nothing more.
    assert await workflow.sweep(world.pool, world.settings, world.index) == []


async def test_with_drop_no_task_follows_the_reindex(pg_server: EmbeddedPostgres) -> None:
    async with fresh_world(pg_server.dsn) as world:
        assert world.settings.reindex_user_copies == "drop"
        await run_upsertion(
            world.pool, world.blue, text_items(6), world.registry, world.settings, keep_going
        )
        await _clicked_session(world, "s-erin", "erin", "a question", "doc-0002")
        await improve_queued(world.pool, world.settings, world.registry)
        destination, parent = await _reindexed(world)
        assert parent.params["user_copies"] == "drop"
        assert "user_copies_task_id" not in parent.result
        assert (
            await world.pool.fetchval("SELECT count(*) FROM tasks WHERE kind = 'improvement'") == 0
        )
        assert await _copies(world, destination, "erin") == {}


def test_an_unknown_choice_is_refused_naming_the_setting() -> None:
    with pytest.raises(pydantic.ValidationError, match="reindex_user_copies"):
        Settings(reindex_user_copies="keep")  # type: ignore[arg-type]
