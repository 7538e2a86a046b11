"""An import run in this process over a real customer table: the failure budget, a cancel, and
pages whose items all fail (the checkpoint still moves on). The collection's model is the
tests' hash encoder; the source and the collection are real PostgreSQL databases."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.errors import FailedPrecondition
from es_core.ingest.cleaning import TextCleaner
from es_core.ingest.importing import ImportJob
from es_core.ingest.prepare import Preparer
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.model import Locator, SourceSpec
from es_core.loaders.registry import Loaders
from es_core.storage.item_rows import count_originals
from es_core.tasks import store
from es_core.tasks.model import Task
from es_core.upsertion import splitter
from tests.integration.blue_green import World, claim, fresh_world
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.integration

OWNER = "import-worker"
_tables = itertools.count()


@pytest_asyncio.fixture
async def source_dsn(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    async with fresh_database(pg_server.dsn) as dsn:
        yield dsn


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres, source_dsn: str) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn, postgres_sources={"src": source_dsn}) as w:
        yield w


async def _table(dsn: str, texts: list[str]) -> str:
    name = f"rows_{next(_tables)}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"CREATE TABLE {name} (id integer PRIMARY KEY, text text)")
        await conn.executemany(f"INSERT INTO {name} VALUES ($1, $2)", list(enumerate(texts)))
    finally:
        await conn.close()
    return name


async def _task(world: World, table: str) -> tuple[Task, list[SourceSpec]]:
    sources = [SourceSpec("postgres", Locator(database="src", table=table))]
    async with world.pool.acquire() as conn:
        task, _ = await store.create_task(
            conn,
            "import",
            {"collection_id": world.blue.collection_id, "sources": [s.to_json() for s in sources]},
        )
    return await claim(world.pool, task.task_id, OWNER), sources


def _job(world: World, loader: AggregatedLoader) -> ImportJob:
    preparer = Preparer(TextCleaner(()), splitter(world.settings, None), world.settings)
    return ImportJob(
        world.pool, world.blue, world.registry, world.settings, preparer, loader, OWNER, 1
    )


async def _run(
    world: World, task: Task, sources: list[SourceSpec], page_size: int, max_failed: int = 0
) -> dict[str, Any]:
    loader = AggregatedLoader(Loaders(world.settings))
    try:
        return await _job(world, loader).run(task, sources, page_size, max_failed)
    finally:
        await loader.close()


async def test_too_many_failed_items_fail_the_import_after_what_it_wrote(
    world: World, source_dsn: str
) -> None:
    texts = [f"text {i}" if i % 3 else "" for i in range(30)]  # 10 empty
    task, sources = await _task(world, await _table(source_dsn, texts))
    with pytest.raises(FailedPrecondition, match="more than max_failed_items \\(5\\)") as info:
        await _run(world, task, sources, page_size=4, max_failed=5)
    assert "the first: 0 at split: the text is empty" in info.value.message
    saved = (await store.get_task(world.pool, task.task_id)).result
    assert 5 < saved["failed_count"] <= 8 and saved["read_count"] % 4 == 0
    assert saved["imported_count"] == saved["read_count"] - saved["failed_count"]
    assert await count_originals(world.pool, world.blue) == saved["imported_count"]


async def test_a_page_whose_items_all_fail_still_moves_the_checkpoint(
    world: World, source_dsn: str
) -> None:
    task, sources = await _task(world, await _table(source_dsn, ["", " ", "", "ok", "", "  "]))
    result = await _run(world, task, sources, page_size=2)
    assert (result["imported_count"], result["failed_count"], result["read_count"]) == (1, 5, 6)
    assert result["sources_done"] == 1 and result["expected_count"] == 6
    assert [f["stage"] for f in result["failed_items"]] == ["split"] * 5


async def test_a_canceled_import_stops_at_its_next_page_writing_nothing_more(
    world: World, source_dsn: str
) -> None:
    """A cancel lands between pages: the page being written then rolls back with its
    checkpoint (its progress report is refused), and the run stops."""
    table = await _table(source_dsn, [f"text {i}" for i in range(40)])
    task, sources = await _task(world, table)
    await store.cancel_task(world.pool, task.task_id)
    assert await _run(world, task, sources, page_size=4) == {"stopped": True}
    assert await count_originals(world.pool, world.blue) == 0
    assert (await store.get_task(world.pool, task.task_id)).status == "canceled"
