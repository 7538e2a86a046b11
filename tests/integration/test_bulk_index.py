"""Bulk fills on a real PostgreSQL: a reindex's green collection and a large import into a
collection nobody reads get their rows first and their HNSW index once, at the end; until
then the collection cannot become blue, and a fill that fails is never switched to."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.collections.blue import switch_blue
from es_core.collections.lifecycle import delete_collection
from es_core.domain import Collection
from es_core.errors import FailedPrecondition, NotFound
from es_core.ingest.cleaning import TextCleaner
from es_core.ingest.importing import ImportJob
from es_core.ingest.prepare import Preparer
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.model import Locator, SourceSpec
from es_core.loaders.registry import Loaders
from es_core.reindex.parent import index_subtask
from es_core.reindex.start import create_reindex
from es_core.search.query import VectorQuery
from es_core.search.vector_search import vector_page
from es_core.storage import catalog
from es_core.storage.bulk_index import build_vector_index, start_bulk_fill, vector_index_valid
from es_core.storage.item_rows import count_originals
from es_core.tasks import store
from es_core.upsertion import run_upsertion, splitter
from tests.integration.blue_green import (
    DIMS,
    HASH_INDEX,
    World,
    claim,
    copy_subtask,
    fresh_world,
    hash_model,
    keep_going,
    plan_reindex,
    settle,
    text_items,
)
from tests.integration.helpers import fresh_database, load_items

pytestmark = pytest.mark.integration

_tables = itertools.count()


@pytest_asyncio.fixture
async def source_dsn(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    async with fresh_database(pg_server.dsn) as dsn:
        yield dsn


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres, source_dsn: str) -> AsyncIterator[World]:
    async with fresh_world(
        pg_server.dsn, postgres_sources={"src": source_dsn}, bulk_import_min_items=10
    ) as w:
        yield w


async def _start_reindex(world: World, **model: Any) -> tuple[str, Collection]:
    destination_model = await world.add_model(hash_model(**model))
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=destination_model.model_id,
        )
    return started.task.task_id, await world.collection(started.destination_collection_id)


async def _top10(
    world: World, collection: Collection, vector: npt.NDArray[np.float32], *, exact: bool = False
) -> list[str]:
    """The top ten item ids of a vector search through the HNSW index (no sequential scan),
    or ``exact``: by a sequential scan, not the index."""
    async with world.pool.acquire() as conn, conn.transaction():
        await conn.execute(f"SET LOCAL {'enable_indexscan' if exact else 'enable_seqscan'} = off")
        hits, _ = await vector_page(
            conn, collection, VectorQuery(vector=vector, limit=10), world.settings, None
        )
    return [hit.object_id for hit in hits]


async def _switch_refused(world: World, collection_id: str, reason: str) -> None:
    async with world.pool.acquire() as conn:
        with pytest.raises(FailedPrecondition, match=reason):
            await switch_blue(conn, collection_id)


async def test_a_bulk_reindex_ranks_like_the_row_path_once_its_index_is_built(
    world: World,
) -> None:
    items = text_items(40)
    await run_upsertion(world.pool, world.blue, items, world.registry, world.settings, keep_going)
    parent_id, destination = await _start_reindex(world)
    assert destination.index_state == "building"
    assert not await vector_index_valid(world.pool, destination.table_name)

    # Every range copied: the rows are in, the index is not yet; the collection waits for it.
    for child in await plan_reindex(world, parent_id):
        await copy_subtask(world, child.task_id, f"worker-{child.params['range_index']}")
    assert await count_originals(world.pool, destination) == 40
    await _switch_refused(world, destination.collection_id, "reindex task .* is waiting")

    assert await settle(world, parent_id) == "done"
    parent = await store.get_task(world.pool, parent_id)
    assert parent.result["item_count"] == 40 and parent.result["subtasks"] == 3
    index_task = await index_subtask(world.pool, parent_id)
    assert index_task is not None and index_task.status == "done"
    assert index_task.result["index_built"] is True
    destination = await world.collection(destination.collection_id)
    assert destination.index_state == "ready"
    assert await vector_index_valid(world.pool, destination.table_name)

    # The same items written row by row into a collection of the same model, index present.
    async with world.pool.acquire() as conn:
        row_path = await catalog.create_collection(
            conn,
            "row-path",
            destination.model,
            state="green",
            hnsw_m=HASH_INDEX.hnsw_m,
            hnsw_ef_construction=HASH_INDEX.hnsw_ef_construction,
        )
    await run_upsertion(world.pool, row_path, items, world.registry, world.settings, keep_going)
    encoder = world.registry.get(destination.model)
    for query in ["text of doc 3", "word word", "title 17", "text of doc 39 word"]:
        vector = encoder.encode_queries([query])[0]
        bulk_ids = await _top10(world, destination, vector)
        assert len(bulk_ids) == 10
        assert bulk_ids == await _top10(world, row_path, vector)

    async with world.pool.acquire() as conn:
        change = await switch_blue(conn, destination.collection_id)
    assert change.blue.collection_id == destination.collection_id


async def test_an_empty_source_builds_the_index_at_once(world: World) -> None:
    parent_id, destination = await _start_reindex(world)
    assert await plan_reindex(world, parent_id) == []
    assert (await store.get_task(world.pool, parent_id)).status == "done"
    destination = await world.collection(destination.collection_id)
    assert destination.index_state == "ready"
    assert await vector_index_valid(world.pool, destination.table_name)


async def test_a_reindex_failing_midway_leaves_its_collection_failed_and_never_blue(
    world: World,
) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(20), world.registry, world.settings, keep_going
    )
    parent_id, destination = await _start_reindex(world, dims=DIMS + 4)
    # A vector-only item (no text to re-encode), straight into the source: a range fails on it.
    await load_items(world.pool, world.blue, [("doc-0010-vec", np.ones((1, DIMS)), {})])
    children = await plan_reindex(world, parent_id)
    outcomes = [
        await copy_subtask(world, c.task_id, f"worker-{c.params['range_index']}") for c in children
    ]
    assert sum("failed" in o for o in outcomes) == 1
    assert await settle(world, parent_id) == "failed"
    assert await index_subtask(world.pool, parent_id) is None
    destination = await world.collection(destination.collection_id)
    assert destination.index_state == "failed"
    assert not await vector_index_valid(world.pool, destination.table_name)
    await _switch_refused(world, destination.collection_id, "reindex task .* is failed")
    # What serves kept its index all along.
    blue = await world.collection(world.blue.collection_id)
    assert blue.state == "blue" and blue.index_state == "ready"
    assert await vector_index_valid(world.pool, blue.table_name)

    # A restart makes it 'building' again; fixed, the reindex ends with its index.
    await world.pool.execute(
        f"DELETE FROM {catalog.items_table(world.blue)} WHERE object_id = 'doc-0010-vec'"
    )
    await store.restart_task(world.pool, parent_id)
    resent = await plan_reindex(world, parent_id)
    assert (await world.collection(destination.collection_id)).index_state == "building"
    for child in resent:
        await copy_subtask(world, child.task_id, "again")
    assert await settle(world, parent_id) == "done"
    assert (await world.collection(destination.collection_id)).index_state == "ready"


async def test_an_interrupted_concurrent_build_is_dropped_and_built_again(world: World) -> None:
    await run_upsertion(
        world.pool, world.blue, text_items(12), world.registry, world.settings, keep_going
    )
    parent_id, destination = await _start_reindex(world)
    for child in await plan_reindex(world, parent_id):
        await copy_subtask(world, child.task_id, "w")
    # What a build killed between CREATE INDEX CONCURRENTLY's phases leaves: an invalid index.
    name = catalog.vector_index_name(destination.table_name)
    await world.pool.execute(
        catalog.vector_index_sql(destination.table_name, destination.model, 16, 64)
    )
    await world.pool.execute(
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = to_regclass($1)", name
    )
    assert not await vector_index_valid(world.pool, destination.table_name)
    assert await settle(world, parent_id) == "done"
    assert await vector_index_valid(world.pool, destination.table_name)


async def test_a_reindex_that_was_deleted_cannot_have_its_index_built(world: World) -> None:
    with pytest.raises(Exception, match="does not exist"):
        await build_vector_index(world.pool, world.settings, "no-such-collection")


async def test_deleting_a_collection_cancels_its_index_build(world: World) -> None:
    collection = await _plain_collection(world, "doomed")
    await run_upsertion(
        world.pool, collection, text_items(3), world.registry, world.settings, keep_going
    )
    async with world.pool.acquire() as conn:
        await start_bulk_fill(conn, collection)
    # A transaction holding an old snapshot keeps the concurrent build waiting.
    async with world.pool.acquire() as holder, holder.transaction(isolation="repeatable_read"):
        await holder.fetchval("SELECT count(*) FROM collections")
        build = asyncio.create_task(build_vector_index(world.pool, world.settings, "doomed"))
        for _ in range(200):
            building = await world.pool.fetchval(
                "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = to_regclass($1)",
                catalog.items_table(collection),
            )
            if building:
                break
            await asyncio.sleep(0.05)
        assert building == 1
        async with world.pool.acquire() as conn:
            await delete_collection(conn, world.settings, "doomed")
        with pytest.raises(asyncpg.QueryCanceledError):
            await build
    with pytest.raises(NotFound):
        await world.collection("doomed")


# ---- imports -------------------------------------------------------------------------------


async def _table(dsn: str, texts: list[str]) -> str:
    name = f"rows_{next(_tables)}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE TABLE {name} (id integer PRIMARY KEY, text text)")
        await conn.executemany(f"INSERT INTO {name} VALUES ($1, $2)", list(enumerate(texts)))
    finally:
        await conn.close()
    return name


async def _import(
    world: World, collection: Collection, table: str, *, fail_after: int | None = None
) -> dict[str, Any]:
    sources = [SourceSpec("postgres", Locator(database="src", table=table))]
    async with world.pool.acquire() as conn:
        task, _ = await store.create_task(
            conn,
            "import",
            {"collection_id": collection.collection_id, "sources": [s.to_json() for s in sources]},
        )
    task = await claim(world.pool, task.task_id, "import-worker")
    preparer = Preparer(TextCleaner(()), splitter(world.settings, None), world.settings)
    loader = AggregatedLoader(Loaders(world.settings))
    job = ImportJob(
        world.pool, collection, world.registry, world.settings, preparer, loader, "import-worker", 1
    )
    try:
        return await job.run(task, sources, 8, fail_after or 0)
    finally:
        await loader.close()


async def _plain_collection(world: World, collection_id: str) -> Collection:
    """A collection of its own model that no write to the blue one reaches."""
    model = await world.add_model(hash_model())
    async with world.pool.acquire() as conn:
        return await catalog.create_collection(
            conn,
            collection_id,
            model,
            state="green",
            hnsw_m=HASH_INDEX.hnsw_m,
            hnsw_ef_construction=HASH_INDEX.hnsw_ef_construction,
        )


async def test_a_large_import_into_an_empty_collection_goes_in_bulk(
    world: World, source_dsn: str
) -> None:
    collection = await _plain_collection(world, "fresh")
    texts = [f"imported text {i} " + "word " * (i % 5) for i in range(30)]
    result = await _import(world, collection, await _table(source_dsn, texts))
    assert result["bulk"] is True and result["imported_count"] == 30
    collection = await world.collection("fresh")
    assert collection.index_state == "ready"
    assert await vector_index_valid(world.pool, collection.table_name)
    for query in ["imported text 7", "word word"]:
        vector = world.registry.get(collection.model).encode_queries([query])[0]
        top = await _top10(world, collection, vector)
        assert len(top) == 10 and top == await _top10(world, collection, vector, exact=True)


async def test_imports_into_the_blue_collection_or_a_fuller_one_keep_the_row_path(
    world: World, source_dsn: str
) -> None:
    texts = [f"text {i}" for i in range(20)]
    result = await _import(world, world.blue, await _table(source_dsn, texts))
    assert result["bulk"] is False and result["imported_count"] == 20
    # The blue collection's index was never dropped.
    assert (await world.collection(world.blue.collection_id)).index_state == "ready"

    fuller = await _plain_collection(world, "fuller")
    await run_upsertion(
        world.pool, fuller, text_items(25), world.registry, world.settings, keep_going
    )
    result = await _import(world, fuller, await _table(source_dsn, texts))
    assert result["bulk"] is False  # 20 expected, 25 already there

    small = await _plain_collection(world, "small")
    result = await _import(world, small, await _table(source_dsn, texts[:5]))
    assert result["bulk"] is False  # under bulk_import_min_items


async def test_a_collection_without_its_index_cannot_become_blue(world: World) -> None:
    collection = await _plain_collection(world, "mid-import")
    await run_upsertion(
        world.pool, collection, text_items(3), world.registry, world.settings, keep_going
    )
    async with world.pool.acquire() as conn:
        await start_bulk_fill(conn, collection)
    assert not await vector_index_valid(world.pool, collection.table_name)
    await _switch_refused(world, "mid-import", "its vector index is building")
    await build_vector_index(world.pool, world.settings, "mid-import")
    async with world.pool.acquire() as conn:
        change = await switch_blue(conn, "mid-import")
    assert change.blue.index_state == "ready"


async def test_a_bulk_import_that_fails_still_ends_with_its_index(
    world: World, source_dsn: str
) -> None:
    collection = await _plain_collection(world, "failing")
    texts = [f"text {i}" if i % 2 else "" for i in range(40)]  # every other item fails
    with pytest.raises(FailedPrecondition, match="more than max_failed_items"):
        await _import(world, collection, await _table(source_dsn, texts), fail_after=3)
    collection = await world.collection("failing")
    assert collection.index_state == "ready"
    assert await vector_index_valid(world.pool, collection.table_name)
    assert await count_originals(world.pool, collection) > 0
