"""Collections on a real PostgreSQL: listing, the blue switch and rollback, deletion, and which
collections a write reaches."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.collections.blue import rollback_blue, switch_blue
from es_core.collections.lifecycle import create_green_collection, delete_collection
from es_core.collections.listing import list_collections
from es_core.collections.write_targets import lock_for_write, write_targets
from es_core.domain import Collection
from es_core.errors import AlreadyExists, EsError, FailedPrecondition, InvalidArgument, NotFound
from es_core.reindex.parent import plan_subtasks
from es_core.reindex.start import create_reindex
from es_core.serving.deploy import start_undeploy
from es_core.storage import catalog
from es_core.storage.bulk_index import build_vector_index
from es_core.tasks import store
from es_core.upsertion import run_deletion, run_upsertion
from tests.integration.blue_green import World, fresh_world, keep_going, text_items
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn) as w:
        yield w


async def _reindexed_green(world: World, status: str = "done") -> Collection:
    """A green collection filled by a reindex task that is ``status`` now."""
    model = await world.add_model()
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
        )
        await conn.execute(
            "UPDATE tasks SET status = $2 WHERE task_id = $1", started.task.task_id, status
        )
    if status == "done":  # a reindex is done once its collection's vector index is built
        await build_vector_index(world.pool, world.settings, started.destination_collection_id)
    return await world.collection(started.destination_collection_id)


def _field(error: EsError) -> str:
    assert len(error.violations) == 1, error.message
    return error.violations[0].field


# ---- listing -------------------------------------------------------------------------------


async def test_list_is_newest_first_paged_and_counts_originals_only(world: World) -> None:
    greens = [await _reindexed_green(world) for _ in range(3)]
    await run_upsertion(
        world.pool, world.blue, text_items(7), world.registry, world.settings, keep_going
    )
    # A user's improved copy is not an item.
    await world.pool.execute(
        f"INSERT INTO {catalog.items_table(world.blue)}"
        " (object_id, part_id, is_average, user_id, vector)"
        " SELECT object_id, part_id, is_average, 'u1', vector"
        f" FROM {catalog.items_table(world.blue)} WHERE object_id = 'doc-0000' AND user_id IS NULL"
    )
    seen: list[str] = []
    counts: dict[str, int] = {}
    token = ""
    async with world.pool.acquire() as conn:
        while True:
            page, token = await list_collections(conn, TOKENS, page_size=2, page_token=token)
            assert len(page) <= 2
            seen += [i.collection.collection_id for i in page]
            counts |= {i.collection.collection_id: i.item_count for i in page}
            if not token:
                break
    assert seen == [g.collection_id for g in reversed(greens)] + [world.blue.collection_id]
    assert counts[world.blue.collection_id] == 7
    assert all(counts[g.collection_id] == 7 for g in greens)  # writes reached the greens


# ---- switch and rollback -------------------------------------------------------------------


async def test_switch_makes_green_blue_and_keeps_the_old_blue_for_rollback(world: World) -> None:
    green = await _reindexed_green(world)
    async with world.pool.acquire() as conn:
        change = await switch_blue(conn, green.collection_id)
    assert change.blue.collection_id == green.collection_id and change.blue.state == "blue"
    assert change.previous.collection_id == world.blue.collection_id
    assert change.previous.state == "retired"
    assert await world.alias() == (green.collection_id, world.blue.collection_id)
    # The rollback target still receives writes.
    await run_upsertion(
        world.pool, change.blue, text_items(3), world.registry, world.settings, keep_going
    )
    assert len(await world.originals(change.previous)) == 3

    async with world.pool.acquire() as conn:
        back = await rollback_blue(conn)
    assert back.blue.collection_id == world.blue.collection_id and back.blue.state == "blue"
    assert back.previous.collection_id == green.collection_id
    assert back.previous.state == "retired"
    assert await world.alias() == (world.blue.collection_id, green.collection_id)
    # Rolling back again returns to the green one: the alias keeps one step of history.
    async with world.pool.acquire() as conn:
        again = await rollback_blue(conn)
    assert again.blue.collection_id == green.collection_id


async def test_rollback_with_no_previous_blue_is_a_failed_precondition(world: World) -> None:
    async with world.pool.acquire() as conn:
        with pytest.raises(FailedPrecondition, match="no previous blue"):
            await rollback_blue(conn)
    assert await world.alias() == (world.blue.collection_id, None)


@pytest.mark.parametrize(
    ("collection_id", "error", "field"),
    [
        ("", InvalidArgument, "collection_id"),
        ("x" * 129, InvalidArgument, "collection_id"),
        ("no-such-collection", NotFound, "collection_id"),
    ],
)
async def test_switch_refuses_bad_ids(
    world: World, collection_id: str, error: type[EsError], field: str
) -> None:
    async with world.pool.acquire() as conn:
        with pytest.raises(error) as info:
            await switch_blue(conn, collection_id)
    assert _field(info.value) == field
    assert await world.alias() == (world.blue.collection_id, None)


async def test_switch_refuses_the_blue_a_retired_and_an_unfinished_collection(
    world: World,
) -> None:
    async with world.pool.acquire() as conn:
        with pytest.raises(FailedPrecondition, match="already the blue") as info:
            await switch_blue(conn, world.blue.collection_id)
        assert _field(info.value) == "collection_id"

    for status in ("pending", "processing", "failed", "canceled"):
        green = await _reindexed_green(world, status)
        async with world.pool.acquire() as conn:
            with pytest.raises(FailedPrecondition, match=f"reindex task .* is {status}") as info:
                await switch_blue(conn, green.collection_id)
        assert _field(info.value) == "collection_id"


async def test_switch_to_a_retired_collection_is_refused(world: World) -> None:
    first = await _reindexed_green(world)
    second = await _reindexed_green(world)
    async with world.pool.acquire() as conn:
        await switch_blue(conn, first.collection_id)
        await switch_blue(conn, second.collection_id)
        # The original blue is retired and no longer the rollback target (it missed nothing
        # yet, but it will): only rollback or a new reindex brings an old model back.
        with pytest.raises(FailedPrecondition, match="retired") as info:
            await switch_blue(conn, world.blue.collection_id)
    assert _field(info.value) == "collection_id"


async def test_a_switch_waits_for_writes_in_flight(world: World) -> None:
    green = await _reindexed_green(world)
    async with world.pool.acquire() as conn:
        async with world.pool.acquire() as writer, writer.transaction():
            await lock_for_write(writer)
            switching = asyncio.create_task(switch_blue(conn, green.collection_id))
            await asyncio.sleep(0.3)
            assert not switching.done()
            assert (await world.alias())[0] == world.blue.collection_id
        change = await asyncio.wait_for(switching, timeout=5)
    assert change.blue.collection_id == green.collection_id


# ---- writes reach every collection kept in step --------------------------------------------


async def test_writes_reach_blue_rollback_target_and_reindexed_greens_only(world: World) -> None:
    reindexed = await _reindexed_green(world, "processing")
    plain_model = await world.add_model()
    async with world.pool.acquire() as conn, conn.transaction():
        plain = await create_green_collection(
            conn, plain_model, world.settings, world.index, reindex_task_id=None
        )
    async with world.pool.acquire() as conn:
        targets = [c.collection_id for c in await write_targets(conn, world.blue)]
        assert targets == [world.blue.collection_id, reindexed.collection_id]  # oldest first
        assert [c.collection_id for c in await write_targets(conn, plain)] == [plain.collection_id]

    items = text_items(4)
    await run_upsertion(world.pool, world.blue, items, world.registry, world.settings, keep_going)
    blue_items = await world.originals(world.blue)
    green_items = await world.originals(reindexed)
    assert sorted(blue_items) == sorted(green_items) == [i.object_id for i in items]
    assert await world.originals(plain) == {}
    for item in items:
        for collection, stored in ((world.blue, blue_items), (reindexed, green_items)):
            text, vector = stored[item.object_id]["parts"]["0"]
            expected = world.registry.get(collection.model).encode_items([text])[0]
            assert vector == pytest.approx(expected, abs=1e-6)  # each with its own model
    # A write addressed to the green one reaches the blue one as well.
    more = text_items(2, prefix="via-green")
    await run_upsertion(world.pool, reindexed, more, world.registry, world.settings, keep_going)
    assert {"via-green-0000", "via-green-0001"} <= set(await world.originals(world.blue))

    result = await run_deletion(world.pool, world.blue, ["doc-0000", "via-green-0001", "nope"])
    assert result == {"deleted_count": 2, "missing_count": 1}
    for collection in (world.blue, reindexed):
        left = await world.originals(collection)
        assert "doc-0000" not in left and "via-green-0001" not in left and "doc-0001" in left


# ---- deletion ------------------------------------------------------------------------------


async def test_the_blue_collection_cannot_be_deleted(world: World) -> None:
    async with world.pool.acquire() as conn:
        with pytest.raises(FailedPrecondition, match="blue") as info:
            await delete_collection(conn, world.settings, world.blue.collection_id)
    assert _field(info.value) == "collection_id"
    async with world.pool.acquire() as conn:
        with pytest.raises(NotFound) as not_found:
            await delete_collection(conn, world.settings, "no-such-collection")
        assert _field(not_found.value) == "collection_id"
        with pytest.raises(InvalidArgument):
            await delete_collection(conn, world.settings, "")


async def test_deleting_the_rollback_target_drops_it_and_ends_rollback(world: World) -> None:
    green = await _reindexed_green(world)
    async with world.pool.acquire() as conn:
        await switch_blue(conn, green.collection_id)
        await delete_collection(conn, world.settings, world.blue.collection_id)
    assert await world.alias() == (green.collection_id, None)
    table_left = await world.pool.fetchval("SELECT to_regclass($1)", world.blue.table_name)
    assert table_left is None
    async with world.pool.acquire() as conn:
        with pytest.raises(NotFound):
            await catalog.get_collection(conn, world.blue.collection_id)
        with pytest.raises(FailedPrecondition, match="no previous blue"):
            await rollback_blue(conn)
        listed, _ = await list_collections(conn, TOKENS, page_size=50, page_token="")
    assert [i.collection.collection_id for i in listed] == [green.collection_id]
    # Writes no longer try to reach it.
    await run_upsertion(
        world.pool, green, text_items(2), world.registry, world.settings, keep_going
    )
    assert len(await world.originals(green)) == 2


async def test_a_deleted_collection_can_be_created_again_empty(world: World) -> None:
    green = await _reindexed_green(world)
    await run_upsertion(
        world.pool, world.blue, text_items(3), world.registry, world.settings, keep_going
    )
    async with world.pool.acquire() as conn:
        await delete_collection(conn, world.settings, green.collection_id)
        async with conn.transaction():
            again = await create_green_collection(
                conn, green.model, world.settings, world.index, reindex_task_id=None
            )
        with pytest.raises(AlreadyExists) as info:
            async with conn.transaction():
                await create_green_collection(
                    conn, green.model, world.settings, world.index, reindex_task_id=None
                )
    assert _field(info.value) == "destination_model_id"
    assert again.collection_id == green.collection_id and again.state == "green"
    assert await world.originals(again) == {}


async def test_deleting_a_collection_cancels_its_reindex(world: World) -> None:
    green = await _reindexed_green(world, "processing")
    assert green.reindex_task_id is not None
    async with world.pool.acquire() as conn:
        await delete_collection(conn, world.settings, green.collection_id)
        task = await store.get_task(conn, green.reindex_task_id)
    assert task.status == "canceled" and "deleted" in task.error


async def test_deleting_the_last_collection_of_a_model_undeploys_it(world: World) -> None:
    green = await _reindexed_green(world)
    async with world.pool.acquire() as conn:
        to_send = await delete_collection(conn, world.settings, green.collection_id)
        model = await catalog.get_model(conn, green.model.model_id)
    if importlib.util.find_spec("es_core.serving") is None:
        assert to_send == []  # serving is not built into this version: nothing to undeploy
    else:
        assert model.deployed  # until the worker runs the task
        assert [(t.kind, t.params["action"], t.params["model_id"]) for t in to_send] == [
            ("deployment", "undeploy", green.model.model_id)
        ]
    # The blue collection's model is still used: deleting another collection leaves it be.
    other = await _reindexed_green(world)
    await world.pool.execute(
        "UPDATE collections SET model_id = $2 WHERE collection_id = $1",
        other.collection_id,
        world.blue.model.model_id,
    )
    async with world.pool.acquire() as conn:
        assert await delete_collection(conn, world.settings, other.collection_id) == []


async def test_deleting_the_source_of_a_reindex_cancels_it_and_its_subtasks(
    world: World,
) -> None:
    source = await _reindexed_green(world)
    await run_upsertion(  # reaches the green one too
        world.pool, world.blue, text_items(12), world.registry, world.settings, keep_going
    )
    model = await world.add_model()
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id=source.collection_id,
            destination_model_id=model.model_id,
        )
    parent = await store.claim_task(world.pool, started.task.task_id, "w", 30)
    assert parent is not None
    children, _ = await plan_subtasks(world.pool, world.settings, parent)
    assert children
    async with world.pool.acquire() as conn:
        await delete_collection(conn, world.settings, source.collection_id)
    for task_id in [parent.task_id, *(c.task_id for c in children)]:
        assert (await store.get_task(world.pool, task_id)).status == "canceled"
    # The destination stays, green and empty, to be deleted or filled again.
    assert (await world.collection(started.destination_collection_id)).state == "green"


async def test_switch_refuses_a_collection_whose_model_is_not_deployed(world: World) -> None:
    green = await _reindexed_green(world)
    await world.pool.execute(
        "UPDATE models SET deployed = false WHERE model_id = $1", green.model.model_id
    )
    async with world.pool.acquire() as conn:
        with pytest.raises(FailedPrecondition) as info:
            await switch_blue(conn, green.collection_id)
    assert _field(info.value) == "collection_id" and "not deployed" in info.value.message
    assert await world.alias() == (world.blue.collection_id, None)


async def test_models_of_collections_kept_in_step_cannot_be_undeployed(world: World) -> None:
    green = await _reindexed_green(world)
    async with world.pool.acquire() as conn:
        # A reindexed green still receives every write, encoded with its model.
        with pytest.raises(FailedPrecondition) as info:
            await start_undeploy(conn, world.settings, green.model.model_id, required=True)
        assert _field(info.value) == "model_id" and green.collection_id in info.value.message
        await switch_blue(conn, green.collection_id)
        # Now the old blue is the rollback target, kept in step too.
        with pytest.raises(FailedPrecondition) as info:
            await start_undeploy(conn, world.settings, world.blue.model.model_id, required=True)
        assert "kept in step" in info.value.message
        assert world.blue.collection_id in info.value.message
        # Deleting the rollback target undeploys its model (the deletion's own undeploy task).
        tasks = await delete_collection(conn, world.settings, world.blue.collection_id)
    assert [t.params for t in tasks] == [
        {"action": "undeploy", "model_id": world.blue.model.model_id}
    ]
