"""Migrations and first-start bootstrap are safe to run many times and from many processes."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import pytest

from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.plugins.registry import load_plugin
from es_core.storage import catalog
from es_core.storage.bootstrap import prepare_database
from es_core.storage.db import create_pool
from es_core.storage.item_rows import UNVERSIONED, delete_items, get_items, replace_items
from es_core.storage.migrations import (
    MIGRATION_LOCK_KEY,
    SchemaNotReady,
    available_migrations,
    migrate,
)
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.integration


def test_available_migrations_are_numbered_in_order() -> None:
    found = available_migrations()
    versions = [v for v, _, _ in found]
    assert versions and versions == sorted(set(versions))
    assert all(name and sql.strip() for _, name, sql in found)


async def test_migrate_on_a_migrated_database_applies_nothing(pg_pool: asyncpg.Pool) -> None:
    async with pg_pool.acquire() as conn:
        assert await migrate(conn) == []
        assert await migrate(conn) == []
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        # The advisory lock was released: another session can take it at once.
        other_can_lock = await pg_pool.fetchval(
            "SELECT pg_try_advisory_lock($1)", MIGRATION_LOCK_KEY
        )
        if other_can_lock:
            await pg_pool.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    assert other_can_lock
    assert sorted(versions) == [v for v, _, _ in available_migrations()]


async def test_concurrent_migrations_on_a_fresh_database_apply_each_version_once(
    pg_server: EmbeddedPostgres,
) -> None:
    async with fresh_database(pg_server.dsn) as dsn:
        conns = [await asyncpg.connect(dsn) for _ in range(5)]
        try:
            results = await asyncio.gather(*(migrate(c) for c in conns))
            rows = await conns[0].fetch(
                "SELECT version, count(*) AS n FROM schema_migrations GROUP BY version"
            )
            tables = {
                r["tablename"]
                for r in await conns[0].fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                )
            }
        finally:
            for c in conns:
                await c.close()
    all_versions = [v for v, _, _ in available_migrations()]
    applied = sorted(v for result in results for v in result)
    assert applied == all_versions  # each version applied by exactly one caller
    assert sum(1 for result in results if result) == 1  # the first one applies everything
    assert sorted(r["version"] for r in rows) == all_versions
    assert all(r["n"] == 1 for r in rows)
    assert {"models", "collections", "blue_collection", "tasks", "locks"} <= tables
    assert {"interleaving_sessions", "interleaving_credits"} <= tables


async def test_concurrent_prepare_database_creates_one_base_collection(
    pg_server: EmbeddedPostgres, settings: Settings
) -> None:
    plugin = load_plugin(settings)
    base_model_id = plugin.meta.base_model_id
    async with fresh_database(pg_server.dsn) as dsn:
        # Two processes starting at once: both create the extension and their pools together.
        pools = list(
            await asyncio.gather(*(create_pool(settings, dsn, max_size=2) for _ in range(2)))
        )
        try:
            blues = await asyncio.gather(*(prepare_database(p, settings, plugin) for p in pools))
            again = await prepare_database(pools[0], settings, plugin)
            async with pools[0].acquire() as conn:
                models = await conn.fetch("SELECT model_id FROM models")
                collections = await conn.fetch("SELECT collection_id, state FROM collections")
                alias = await conn.fetchrow("SELECT * FROM blue_collection")
                blue = await catalog.get_blue_collection(conn)
                item_tables = await conn.fetchval(
                    "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'items\\_%'"
                    " AND tablename NOT LIKE '%\\_postings' AND tablename NOT LIKE '%\\_termstats'"
                    " AND tablename NOT LIKE '%\\_versions'"
                )
                versions_tables = await conn.fetchval(
                    "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'items\\_%\\_versions'"
                )
                lexical_tables = await conn.fetchval(
                    "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'items\\_%\\_postings'"
                    " OR tablename LIKE 'items\\_%\\_termstats'"
                )
        finally:
            for p in pools:
                await p.close()
    assert [r["model_id"] for r in models] == [base_model_id]
    assert [(r["collection_id"], r["state"]) for r in collections] == [(base_model_id, "blue")]
    assert alias["collection_id"] == base_model_id
    assert alias["previous_collection_id"] is None
    assert item_tables == 1
    assert lexical_tables == 2  # the collection's BM25 postings and term statistics
    assert versions_tables == 1  # the latest write applied to each item, tombstones too
    assert blue.model.model_id == base_model_id and blue.model.dimensions == 384
    for c in (*blues, again):
        assert c.collection_id == base_model_id and c.state == "blue"


async def test_without_migrate_on_start_a_process_waits_for_the_operators_migration(
    pg_server: EmbeddedPostgres, settings: Settings
) -> None:
    """ES_MIGRATE_ON_START=false: nothing is migrated at start; a process gives up naming the
    pending migrations, and starts once `es migrate` (here: migrate on another connection) ran."""
    plugin = load_plugin(settings)
    waiting = settings.model_copy(update={"migrate_on_start": False, "migration_wait_seconds": 0.3})
    async with fresh_database(pg_server.dsn) as dsn:
        pool = await create_pool(settings, dsn, max_size=2)
        try:
            with pytest.raises(SchemaNotReady) as refused:
                await prepare_database(pool, waiting, plugin)
            untouched = await pool.fetchval("SELECT to_regclass('schema_migrations') IS NULL")
            patient = waiting.model_copy(update={"migration_wait_seconds": 60.0})
            started = asyncio.create_task(prepare_database(pool, patient, plugin))
            await asyncio.sleep(0.2)
            assert not started.done()
            async with pool.acquire() as conn:
                await migrate(conn)
            blue = await asyncio.wait_for(started, 30)
        finally:
            await pool.close()
    first = available_migrations()[0]
    assert f"{first[0]:04d}_{first[1]}" in str(refused.value)
    assert "es migrate" in str(refused.value)
    assert untouched
    assert blue.model.model_id == plugin.meta.base_model_id


async def test_waiting_tasks_and_parent_links_of_an_older_database_migrate(
    pg_server: EmbeddedPostgres,
) -> None:
    """Before 0006 a parent waited as processing with lease owner 'subtasks' and its subtasks
    named it in their params; after it, the parent is waiting and they name it in a column."""
    async with fresh_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
            await migrate(conn, below=6)
            parent, child, running = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            await conn.execute(
                "INSERT INTO tasks (task_id, kind, status, params, lease_owner) VALUES"
                " ($1, 'reindex', 'processing', '{}', 'subtasks'),"
                " ($2, 'reindex', 'pending', $4::jsonb, NULL),"
                " ($3, 'upsertion', 'processing', '{}', 'host:1:abc')",
                parent,
                child,
                running,
                {"parent_task_id": str(parent), "range_index": 0},
            )
            assert await migrate(conn) == [v for v, _, _ in available_migrations() if v >= 6]
            rows = {
                r["task_id"]: r
                for r in await conn.fetch(
                    "SELECT task_id, status, lease_owner, parent_task_id, params FROM tasks"
                )
            }
            with pytest.raises(asyncpg.CheckViolationError):
                await conn.execute("UPDATE tasks SET status = 'sleeping' WHERE task_id = $1", child)
        finally:
            await conn.close()
    assert (rows[parent]["status"], rows[parent]["lease_owner"]) == ("waiting", None)
    assert rows[child]["parent_task_id"] == parent
    assert rows[child]["params"] == {"range_index": 0}
    # A task a worker holds is left as it is.
    assert (rows[running]["status"], rows[running]["lease_owner"]) == ("processing", "host:1:abc")


async def test_items_of_an_older_database_read_as_version_0_and_take_ordered_writes(
    pg_server: EmbeddedPostgres,
) -> None:
    """Before 0007 item rows had no version and deletions left no tombstone; after it, the
    rows read as version 0 and the next writes are ordered by version from there."""
    async with fresh_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, below=7)
            await conn.execute(
                "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation,"
                " source) VALUES ('m', 'm', '1', 2, 'cosine', 'min', 'test:none');"
                " INSERT INTO collections (collection_id, model_id, table_name, state, hnsw_m,"
                " hnsw_ef_construction) VALUES ('old', 'm', 'items_old', 'green', 16, 64);"
                " CREATE TABLE items_old (row_id bigserial PRIMARY KEY, object_id text NOT NULL,"
                " part_id text NOT NULL, is_average boolean NOT NULL, user_id text, text text,"
                " vector vector(2) NOT NULL, payload jsonb NOT NULL DEFAULT '{}',"
                " update_time timestamptz NOT NULL DEFAULT now());"
                " SELECT es_lexical_create('items_old');"
                " INSERT INTO items_old (object_id, part_id, is_average, vector) VALUES"
                " ('a', 'p', false, '[1,0]'), ('a', '', true, '[1,0]')"
            )
            assert await migrate(conn) == [v for v, _, _ in available_migrations() if v >= 7]
            await conn.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
            collection = await catalog.get_collection(conn, "old")
            before = await conn.fetch("SELECT DISTINCT version FROM items_old")
            older = await delete_items(conn, collection, ["a"], version=UNVERSIONED)
            newer = await delete_items(conn, collection, ["b"], version=5)
            late = await replace_items(conn, collection, [], ["b"], version=4)
        finally:
            await conn.close()
    assert [r["version"] for r in before] == [0]
    assert (older.applied, older.removed) == (["a"], 1)  # a write from before versions existed
    assert newer.applied == ["b"] and late.superseded == ["b"]


async def test_payloads_of_an_older_database_are_kept_on_heads_alone(
    pg_server: EmbeddedPostgres,
) -> None:
    """Before 0010 every part row and every user's copy carried the item's payload; after it
    only the head does, and reads still give the item its payload."""
    async with fresh_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, below=10)
            await conn.execute(
                "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation,"
                " source) VALUES ('m', 'm', '1', 2, 'cosine', 'min', 'test:none');"
                " INSERT INTO collections (collection_id, model_id, table_name, state, hnsw_m,"
                " hnsw_ef_construction) VALUES ('old', 'm', 'items_old', 'green', 16, 64);"
                " CREATE TABLE items_old (row_id bigserial PRIMARY KEY, object_id text NOT NULL,"
                " part_id text NOT NULL, is_average boolean NOT NULL, user_id text, text text,"
                " vector vector(2) NOT NULL, payload jsonb NOT NULL DEFAULT '{}',"
                " update_time timestamptz NOT NULL DEFAULT now());"
                " SELECT es_lexical_create('items_old'); SELECT es_versions_create('items_old');"
                " INSERT INTO items_old (object_id, part_id, is_average, user_id, vector, payload)"
                " VALUES ('a', 'p1', false, NULL, '[1,0]', '{\"big\": \"x\"}'),"
                " ('a', 'p2', false, NULL, '[0,1]', '{\"big\": \"x\"}'),"
                " ('a', '', true, NULL, '[1,1]', '{\"big\": \"x\"}'),"
                " ('a', 'p1', false, 'u', '[1,0]', '{\"big\": \"x\"}'),"
                " ('a', '', true, 'u', '[1,0]', '{\"big\": \"x\"}')"
            )
            assert await migrate(conn) == [v for v, _, _ in available_migrations() if v >= 10]
            await conn.set_type_codec(
                "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
            )
            rows = await conn.fetch(
                "SELECT part_id, user_id, payload FROM items_old ORDER BY row_id"
            )
            collection = await catalog.get_collection(conn, "old")
            (item,) = await get_items(conn, collection, ["a"], include_vectors=False)
        finally:
            await conn.close()
    assert [(r["part_id"], r["user_id"], r["payload"]) for r in rows] == [
        ("p1", None, {}),
        ("p2", None, {}),
        ("", None, {"big": "x"}),
        ("p1", "u", {}),
        ("", "u", {}),
    ]
    assert item.payload == {"big": "x"} and [p.part_id for p in item.parts] == ["p1", "p2"]
