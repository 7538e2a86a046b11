"""Reindexing on a real PostgreSQL: the parent plans key-range subtasks, each copies its range
page by page with a checkpoint; writes and deletes during a reindex reach both collections;
a page re-checks the source, so nothing is lost, doubled, resurrected or stale."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import AlreadyExists, EsError, FailedPrecondition, InvalidArgument, NotFound
from es_core.item_input import ItemInput, PartInput
from es_core.reindex.copy_range import copy_range
from es_core.reindex.pages import build_destination_rows, read_items, write_page
from es_core.reindex.parent import subtasks
from es_core.reindex.start import StartedReindex, create_reindex
from es_core.storage import catalog
from es_core.tasks import store
from es_core.upsertion import run_deletion, run_upsertion
from tests.integration.blue_green import (
    DIMS,
    HashEncoder,
    World,
    claim,
    fresh_world,
    hash_model,
    keep_going,
    plan_reindex,
    run_reindex,
    run_subtask,
    text_items,
)
from tests.integration.helpers import load_items

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn) as w:
        yield w


async def _start(world: World, **model: Any) -> tuple[StartedReindex, Collection]:
    destination_model = await world.add_model(hash_model(**model))
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=destination_model.model_id,
        )
    return started, await world.collection(started.destination_collection_id)


def _assert_mirrors(
    world: World,
    source: dict[str, dict[str, Any]],
    destination: dict[str, dict[str, Any]],
    destination_collection: Collection,
) -> None:
    """The destination holds exactly the source's items, each part re-encoded by its model."""
    assert sorted(destination) == sorted(source)
    encoder = world.registry.get(destination_collection.model)
    for object_id, item in source.items():
        copy = destination[object_id]
        assert copy["heads"] == 1 and copy["payload"] == item["payload"]
        assert sorted(copy["parts"]) == sorted(item["parts"])
        for part_id, (text, source_vector) in item["parts"].items():
            copied_text, vector = copy["parts"][part_id]
            assert copied_text == text
            expected = source_vector if text is None else encoder.encode_items([text])[0]
            assert vector == pytest.approx(expected, abs=1e-6), (object_id, part_id)


async def _lexical_state(world: World, collection: Collection) -> tuple[Any, Any]:
    """The collection's BM25 postings and its term statistics (deltas summed per term)."""
    postings = await world.pool.fetch(
        f"SELECT term, object_id, tf, dl FROM {catalog.postings_table(collection)} ORDER BY 1, 2"
    )
    stats = await world.pool.fetch(
        "SELECT term, sum(df) AS df, sum(length) AS length"
        f" FROM {catalog.termstats_table(collection)}"
        " GROUP BY term HAVING sum(df) <> 0 OR sum(length) <> 0 ORDER BY term"
    )
    return [tuple(r) for r in postings], [tuple(r) for r in stats]


def _assert_same_lexical_index(
    source: tuple[Any, Any], destination: tuple[Any, Any], items: int
) -> None:
    """The destination's BM25 index equals the source's: same postings, same statistics."""
    assert destination == source
    recount: dict[str, list[int]] = {"": [items, sum(p[2] for p in source[0])]}
    for term, _, tf, _ in source[0]:
        counts = recount.setdefault(term, [0, 0])
        counts[0] += 1
        counts[1] += tf
    assert {term: [df, length] for term, df, length in source[1]} == recount


# ---- the whole reindex ---------------------------------------------------------------------


async def test_reindex_copies_every_item_re_encoded_in_parallel_ranges(world: World) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(23), world.registry, world.settings, keep_going
    )
    # A user's improved copy stays behind (ES_REINDEX_USER_COPIES=drop).
    await world.pool.execute(
        f"INSERT INTO {catalog.items_table(world.blue)}"
        " (object_id, part_id, is_average, user_id, vector)"
        " SELECT object_id, part_id, is_average, 'u1', vector"
        f" FROM {catalog.items_table(world.blue)} WHERE object_id = 'doc-0003' AND user_id IS NULL"
    )
    started, destination = await _start(world, metric="dot", aggregation="avg")
    assert destination.state == "green" and destination.collection_id == destination.model.model_id
    assert destination.reindex_task_id == started.task.task_id

    children = await plan_reindex(world, started.task.task_id)
    assert [c.params["expected_count"] for c in children] == [8, 8, 7]
    assert children[0].params["after"] is None and children[-1].params["until"] is None
    assert [c.params["until"] for c in children[:-1]] == [c.params["after"] for c in children[1:]]
    for child in children:
        result = await run_subtask(world, child.task_id, "w")
        assert result["copied"] == child.params["expected_count"]
        assert result["already_present"] == 0 and result["gone"] == 0
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "done" and parent.progress == 1.0
    assert parent.result["item_count"] == parent.result["source_item_count"] == 23
    assert parent.result["copied"] == 23

    source, copied = await world.originals(world.blue), await world.originals(destination)
    _assert_mirrors(world, source, copied, destination)
    for object_id, item in copied.items():
        assert item["update_time"] == source[object_id]["update_time"]
    users = await world.pool.fetchval(
        f"SELECT count(*) FROM {catalog.items_table(destination)} WHERE user_id IS NOT NULL"
    )
    assert users == 0
    assert destination.text_search_config == world.blue.text_search_config
    _assert_same_lexical_index(
        await _lexical_state(world, world.blue), await _lexical_state(world, destination), 23
    )


async def test_an_empty_source_finishes_at_once(world: World) -> None:
    started, destination = await _start(world)
    assert await plan_reindex(world, started.task.task_id) == []
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "done" and parent.result["item_count"] == 0


async def test_a_source_of_few_pages_gets_no_more_ranges_than_pages(world: World) -> None:
    # Pages of 5 items, 3 ranges at most: 6 items make 2 ranges, 4 items one.
    await run_upsertion(
        world.pool, world.blue, text_items(6), world.registry, world.settings, keep_going
    )
    started, _ = await _start(world)
    children = await plan_reindex(world, started.task.task_id)
    assert [c.params["expected_count"] for c in children] == [3, 3]
    await run_deletion(world.pool, world.blue, ["doc-0000", "doc-0001"])
    started, _ = await _start(world)
    children = await plan_reindex(world, started.task.task_id)
    assert [c.params["expected_count"] for c in children] == [4]


async def test_start_reindex_is_idempotent_and_checks_its_request(world: World) -> None:
    model = await world.add_model()
    undeployed = await world.add_model(replace(hash_model(), deployed=False))
    async with world.pool.acquire() as conn:
        first = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
            idempotency_key="k1",
        )
        again = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
            idempotency_key="k1",
        )
        assert first.created and not again.created
        assert again.task.task_id == first.task.task_id
        assert again.destination_collection_id == first.destination_collection_id
        cases: list[tuple[dict[str, str], type[EsError], str]] = [
            ({"destination_model_id": ""}, InvalidArgument, "destination_model_id"),
            ({"destination_model_id": "m" * 129}, InvalidArgument, "destination_model_id"),
            ({"destination_model_id": "no-such-model"}, NotFound, "destination_model_id"),
            (
                {"destination_model_id": world.blue.model.model_id},
                FailedPrecondition,
                "destination_model_id",
            ),
            (
                {"destination_model_id": undeployed.model_id},
                FailedPrecondition,
                "destination_model_id",
            ),
            # The model has a live collection already (the first reindex's).
            ({"destination_model_id": model.model_id}, AlreadyExists, "destination_model_id"),
            (
                {"destination_model_id": model.model_id, "source_collection_id": "nope"},
                NotFound,
                "source_collection_id",
            ),
            (
                {"destination_model_id": model.model_id, "source_collection_id": "s" * 129},
                InvalidArgument,
                "source_collection_id",
            ),
            (
                {"destination_model_id": model.model_id, "idempotency_key": "k" * 129},
                InvalidArgument,
                "idempotency_key",
            ),
            # The same key for another request.
            (
                {
                    "destination_model_id": model.model_id,
                    "idempotency_key": "k1",
                    "source_collection_id": world.blue.collection_id,
                },
                AlreadyExists,
                "idempotency_key",
            ),
        ]
        before = await conn.fetchval("SELECT count(*) FROM tasks")
        for request, error, field in cases:
            with pytest.raises(error) as info:
                await create_reindex(
                    conn,
                    world.settings,
                    world.index,
                    source_collection_id=request.get("source_collection_id", ""),
                    destination_model_id=request["destination_model_id"],
                    idempotency_key=request.get("idempotency_key", ""),
                )
            assert [v.field for v in info.value.violations] == [field], request
        assert await conn.fetchval("SELECT count(*) FROM tasks") == before


# ---- parts with vectors only ---------------------------------------------------------------


def _vector_item(object_id: str, dims: int = DIMS) -> ItemInput:
    rng = np.random.default_rng(len(object_id))
    return ItemInput(
        object_id=object_id,
        payload={"kind": "vector"},
        parts=[PartInput("v", vector=rng.normal(size=dims).astype(np.float32))],
    )


async def test_vector_only_parts_are_copied_when_dimensions_match(world: World) -> None:
    items = [*text_items(3), _vector_item("vec-1")]
    await run_upsertion(world.pool, world.blue, items, world.registry, world.settings, keep_going)
    started, destination = await _start(world)
    assert (await run_reindex(world, started.task.task_id)).status == "done"
    source, copied = await world.originals(world.blue), await world.originals(destination)
    _assert_mirrors(world, source, copied, destination)
    assert copied["vec-1"]["parts"]["v"][0] is None
    # Parts the new model encoded keep their text's hash (a later upsert of the same text
    # reuses them); a part copied with the user's vector has none, and neither do heads.
    hashes = await world.pool.fetch(
        f"SELECT object_id, text, is_average, content_hash FROM {catalog.items_table(destination)}"
    )
    for row in hashes:
        if row["is_average"] or row["object_id"] == "vec-1":
            assert row["content_hash"] is None
        else:
            assert row["content_hash"] == hashlib.sha256(row["text"].encode()).digest()
    assert any(row["content_hash"] for row in hashes)


async def test_vector_only_parts_refuse_a_model_of_other_dimensions(world: World) -> None:
    await run_upsertion(
        world.pool,
        world.blue,
        [_vector_item("vec-1")],
        world.registry,
        world.settings,
        keep_going,
    )
    with pytest.raises(FailedPrecondition, match="no text") as info:
        await _start(world, dims=DIMS * 2)
    assert [v.field for v in info.value.violations] == ["destination_model_id"]


async def test_a_vector_only_item_written_after_the_start_fails_the_reindex_clearly(
    world: World,
) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(4), world.registry, world.settings, keep_going
    )
    started, destination = await _start(world, dims=DIMS * 2)
    children = await plan_reindex(world, started.task.task_id)
    # Written straight into the source: an upsert is refused, since it must fit the
    # destination too.
    with pytest.raises(FailedPrecondition, match="16 dimensions"):
        await run_upsertion(
            world.pool,
            world.blue,
            [_vector_item("doc-0000-vec")],
            world.registry,
            world.settings,
            keep_going,
        )
    await load_items(world.pool, world.blue, [("doc-0000-vec", np.ones((1, DIMS)), {})])
    outcomes = [await run_subtask(world, c.task_id, "w") for c in children]
    assert any("no text" in str(o.get("failed", "")) for o in outcomes)
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "failed" and "no text" in parent.error


# ---- one page against concurrent writes ----------------------------------------------------


async def test_a_page_skips_items_deleted_or_rewritten_after_it_was_read(world: World) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(6), world.registry, world.settings, keep_going
    )
    _, destination = await _start(world)
    asked = [f"doc-{i:04d}" for i in range(6)]
    items = await read_items(world.pool, world.blue, asked)
    rows = build_destination_rows(items, destination, world.registry)

    # After the read: one item deleted, one rewritten through the API (which reaches the
    # destination), one changed behind the API's back (it must be read again).
    await run_deletion(world.pool, world.blue, ["doc-0001"])
    rewritten = ItemInput("doc-0002", {"n": "new"}, text="brand new text")
    await run_upsertion(
        world.pool, world.blue, [rewritten], world.registry, world.settings, keep_going
    )
    await world.pool.execute(
        f"UPDATE {catalog.items_table(world.blue)} SET update_time = now()"
        " WHERE object_id = 'doc-0003'"
    )
    async with world.pool.acquire() as conn, conn.transaction():
        outcome = await write_page(conn, world.blue, destination, asked, items, rows)
    assert (outcome.copied, outcome.already_present, outcome.gone) == (3, 1, 1)
    assert outcome.changed == ["doc-0003"]
    copied = await world.originals(destination)
    assert "doc-0001" not in copied  # not brought back
    assert copied["doc-0002"]["payload"] == {"n": "new"}  # the newer version, not the read one
    assert "doc-0003" not in copied  # left for the next attempt

    # Writing the same page again copies nothing twice.
    async with world.pool.acquire() as conn, conn.transaction():
        again = await write_page(conn, world.blue, destination, asked, items, rows)
    assert again.copied == 0 and again.already_present == 4 and again.changed == ["doc-0003"]


async def test_writes_and_deletes_racing_a_reindex_leave_both_collections_equal(
    world: World,
) -> None:
    """A writer upserts, rewrites and deletes items (some already copied, some not yet, some
    new) without pause while the subtasks copy; at the end the destination mirrors the source."""
    await run_upsertion(
        world.pool, world.blue, text_items(150), world.registry, world.settings, keep_going
    )
    started, destination = await _start(world)
    children = await plan_reindex(world, started.task.task_id)
    stop = asyncio.Event()
    writes = during_copy = 0

    async def writer(seed: int) -> None:
        nonlocal writes
        rng = random.Random(seed)
        # Until the copy is over, and at least 40 writes (the mirror must hold after it too).
        while not stop.is_set() or writes < 40:
            n = rng.randrange(200)  # ids past 150 are new items
            if rng.random() < 0.3:
                await run_deletion(world.pool, world.blue, [f"doc-{n:04d}"])
            else:
                item = ItemInput(f"doc-{n:04d}", {"v": writes}, text=f"version {writes} of {n}")
                await run_upsertion(
                    world.pool, world.blue, [item], world.registry, world.settings, keep_going
                )
            writes += 1

    async def copy_all() -> None:
        nonlocal during_copy
        await asyncio.gather(
            *(run_subtask(world, c.task_id, f"w{c.params['range_index']}") for c in children)
        )
        during_copy = writes
        stop.set()

    await asyncio.gather(writer(1), writer(2), copy_all())
    assert during_copy > 5 and writes >= 40
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "done", parent.error
    source, copied = await world.originals(world.blue), await world.originals(destination)
    _assert_mirrors(world, source, copied, destination)
    # Counted together when the last subtask finished (the writers went on a little longer).
    assert parent.result["item_count"] == parent.result["source_item_count"]
    # BM25 statistics stayed right through the racing upserts, rewrites and deletes.
    _assert_same_lexical_index(
        await _lexical_state(world, world.blue),
        await _lexical_state(world, destination),
        len(source),
    )


# ---- checkpoints, leases, cancel and restart -----------------------------------------------


class _CrashingEncoder(HashEncoder):
    """Encodes ``pages`` batches, then raises: a worker dying in the middle of a range."""

    def __init__(self, salt: str, dimensions: int, pages: int) -> None:
        super().__init__(salt, dimensions)
        self.pages = pages

    def encode_items(self, texts: list[str]) -> Any:
        if self.calls >= self.pages:
            raise RuntimeError("worker died")
        return super().encode_items(texts)


async def test_a_subtask_taken_over_after_a_crash_resumes_from_its_checkpoint(
    world: World,
) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(30), world.registry, world.settings, keep_going
    )
    started, destination = await _start(world)
    child = (await plan_reindex(world, started.task.task_id))[0]
    crashing = EncoderRegistry(lambda m: _CrashingEncoder(m.model_id, m.dimensions, pages=1))
    task = await claim(world.pool, child.task_id, "doomed", lease=0.5)
    with pytest.raises(RuntimeError, match="worker died"):
        await copy_range(
            world.pool, crashing, task, owner="doomed", lease_seconds=0.5, batch_size=5
        )
    saved = await store.get_task(world.pool, child.task_id)
    assert saved.status == "processing" and saved.result["checkpoint"] == "doc-0004"
    assert saved.result["copied"] == 5 and len(await world.originals(destination)) == 5
    assert await store.claim_task(world.pool, child.task_id, "heir", 30) is None  # lease runs
    await asyncio.sleep(0.7)
    resent = await store.tasks_to_resend(world.pool, 600, max_attempts=3)
    assert child.task_id in [t.task_id for t in resent]

    result = await run_subtask(world, child.task_id, "heir")
    assert result["copied"] == child.params["expected_count"]  # counted across both attempts
    assert result["already_present"] == 0  # the crashed page was rolled back, not half-written
    final = await store.get_task(world.pool, child.task_id)
    assert final.status == "done" and final.attempts == 2


async def test_a_subtask_whose_lease_was_taken_stops_without_touching_its_row(
    world: World,
) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(12), world.registry, world.settings, keep_going
    )
    started, _ = await _start(world)
    child = (await plan_reindex(world, started.task.task_id))[0]
    task = await claim(world.pool, child.task_id, "slow", lease=30)
    await world.pool.execute(
        "UPDATE tasks SET lease_owner = 'other' WHERE task_id = $1", task.task_id
    )
    result = await copy_range(
        world.pool, world.registry, task, owner="slow", lease_seconds=30, batch_size=5
    )
    assert result == {"stopped": True}
    row = await store.get_task(world.pool, child.task_id)
    assert row.status == "processing" and "checkpoint" not in row.result


async def test_canceling_the_parent_stops_subtasks_and_a_restart_resumes(world: World) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(20), world.registry, world.settings, keep_going
    )
    started, destination = await _start(world)
    children = await plan_reindex(world, started.task.task_id)
    await run_subtask(world, children[0].task_id, "w0")
    await store.cancel_task(world.pool, started.task.task_id)
    assert (await run_subtask(world, children[1].task_id, "w1")) == {"stopped": True}
    assert (await store.get_task(world.pool, children[1].task_id)).status == "canceled"

    await store.restart_task(world.pool, started.task.task_id)
    again = await plan_reindex(world, started.task.task_id)  # planned once: the same subtasks
    assert sorted(t.task_id for t in again) == sorted(c.task_id for c in children[1:])
    assert len(await subtasks(world.pool, started.task.task_id)) == len(children)
    for child in again:
        await run_subtask(world, child.task_id, "w")
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "done" and parent.result["item_count"] == 20
    assert len(await world.originals(destination)) == 20


async def test_the_parent_reports_the_sum_of_its_subtasks_progress(world: World) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(30), world.registry, world.settings, keep_going
    )
    started, _ = await _start(world)
    children = await plan_reindex(world, started.task.task_id)
    await run_subtask(world, children[0].task_id, "w0")
    parent = await store.get_task(world.pool, started.task.task_id)
    assert parent.status == "waiting"
    assert parent.progress == pytest.approx(10 / 30)
    assert "1 of 3 ranges done" in parent.progress_message
