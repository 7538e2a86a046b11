"""Declared filterable fields on a real PostgreSQL: their expression indexes, the clauses the
compiler adds for them (the planner uses the index and estimates from its statistics; results
never change), and SetFilterableFields' validation, failures and reindex inheritance."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import replace
from typing import Any

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.collections.filterable import (
    MAX_FILTERABLE_FIELDS,
    check_filterable_fields,
    index_name,
    run_declaration,
)
from es_core.config import Settings
from es_core.domain import Collection, FilterableField
from es_core.errors import Aborted, AlreadyExists, EsError, InvalidArgument, NotFound
from es_core.filters import Bool, Filter, Range, Term
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.reindex.start import create_reindex
from es_core.search.filter_estimates import filter_estimate
from es_core.search.query import VectorQuery
from es_core.search.vector_search import vector_page
from es_core.storage.catalog import get_collection, items_table
from es_core.tasks import store
from tests.filter_reference import evaluate
from tests.integration.blue_green import World, fresh_world, hash_model
from tests.integration.filterable_tasks import declare, run_task, start
from tests.integration.helpers import DIMS, load_items, new_collection

pytestmark = pytest.mark.integration

ITEMS = 3000
# A key that needs every kind of quoting in a text[] literal and a SQL string.
ODD = 'we\'ird "key", {x}\\'
DECLARED = [
    FilterableField("price", "number"),
    FilterableField("brand", "keyword"),
    FilterableField("m.num", "number"),
    FilterableField("m.kw", "keyword"),
    FilterableField(ODD, "number"),
]
_MIXED: list[Any] = [7, "7", [7], None, True, {"v": 7}, 7.5, "b03", ["b03"], -2, "", 1e20]


def _payload(i: int) -> dict[str, Any]:
    p: dict[str, Any] = {"price": i, "brand": f"b{i % 50:02d}", ODD: i % 100}
    if i % 97 == 0:
        p["brand"] = [f"b{i % 50:02d}", "other"]  # an array: terms match it, ranges never
    mixed = _MIXED[i % len(_MIXED)]
    if i % 13 != 0:  # missing now and then
        p["m"] = {"num": mixed, "kw": mixed}
    return p


class Data:
    def __init__(self, collection: Collection, vectors: np.ndarray[Any, Any]) -> None:
        self.collection = collection
        self.vectors = vectors.astype(np.float64)
        self.payloads = [_payload(i) for i in range(ITEMS)]

    def matching(self, f: Filter) -> set[str]:
        return {f"i{i}" for i, p in enumerate(self.payloads) if evaluate(f, p)}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def data(pg_pool: asyncpg.Pool) -> Data:
    collection = await new_collection(pg_pool)
    vectors = np.random.default_rng(5).standard_normal((ITEMS, DIMS)).astype(np.float32)
    await load_items(
        pg_pool, collection, [(f"i{i}", vectors[i : i + 1], _payload(i)) for i in range(ITEMS)]
    )
    info = await declare(pg_pool, collection.collection_id, DECLARED)
    assert info.collection.filterable_fields == tuple(DECLARED)
    await pg_pool.execute(f"ANALYZE {items_table(collection)}")
    return Data(info.collection, vectors)


async def _selected(pool: asyncpg.Pool, collection: Collection, f: Filter) -> set[str]:
    params = SqlParams()
    where = compile_filter(f, params, "h.payload", declared=collection.filterable_fields)
    rows = await pool.fetch(
        f"SELECT object_id FROM {items_table(collection)} h"
        f" WHERE h.is_average AND h.user_id IS NULL AND ({where})",
        *params.values,
    )
    return {r["object_id"] for r in rows}


async def _plan(pool: asyncpg.Pool, collection: Collection, f: Filter) -> str:
    params = SqlParams()
    where = compile_filter(f, params, "h.payload", declared=collection.filterable_fields)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        rows = await conn.fetch(
            f"EXPLAIN SELECT object_id FROM {items_table(collection)} h"
            f" WHERE h.is_average AND h.user_id IS NULL AND ({where})",
            *params.values,
        )
    return "\n".join(r[0] for r in rows)


RANGES: list[Filter] = [
    Range("price", gte=100, lt=130),  # 1%
    Range("price", gt=2699.5),  # 10%
    Range("price", lte=1500),  # 50%
    Range("price", gte=-1e300, lte=1e300),  # all
    Range("price", gt=5, lt=5),  # none
    Range("brand", gte="b10", lt="b12"),  # 4%, arrays excluded
    Range("brand", gt="b48"),
    Range(ODD, gte=98),
    Bool(must=(Range("price", lt=600), Term("brand", "b07"))),
    Bool(should=(Range("price", lt=30), Range("brand", gte="b49")), must_not=(Term("price", 3),)),
]
MIXED: list[Filter] = [
    Range("m.num", gte=7),
    Range("m.num", gt=-3, lte=7),
    Range("m.num", gte="7"),  # string bounds on a NUMBER field: no index clause
    Range("m.kw", gte="7"),
    Range("m.kw", gte="", lt="b04"),
    Range("m.kw", gt=0),  # number bounds on a KEYWORD field: no index clause
    Term("m.kw", "b03"),  # the string, or an array holding it
    Term("m.kw", "7"),
    Term("m.kw", 7),
    Term("m.num", 7),
    Term("brand", "other"),
    Bool(must_not=(Range("m.num", lt=7),)),
    Bool(must_not=(Term("m.kw", "b03"),)),
    Bool(
        should=(Range("m.num", gte=0), Term("m.kw", "b03"), Range("price", lt=100)),
        minimum_should_match=2,
    ),
    Bool(should=(Range("m.num", lt=7), Term("m.kw", "b03")), minimum_should_match=2),
    Bool(must_not=(Bool(should=(Range("price", lt=2900), Term("brand", "b01"))),)),
]


@pytest.mark.parametrize("f", RANGES + MIXED, ids=repr)
@pytest.mark.asyncio(loop_scope="session")
async def test_declared_fields_never_change_what_a_filter_selects(
    data: Data, pg_pool: asyncpg.Pool, f: Filter
) -> None:
    undeclared = replace(data.collection, filterable_fields=())
    expected = data.matching(f)
    assert await _selected(pg_pool, data.collection, f) == expected
    assert await _selected(pg_pool, undeclared, f) == expected


@pytest.mark.parametrize(
    ("f", "field"),
    [
        (Range("price", gte=100, lt=130), DECLARED[0]),
        (Range("brand", gte="b10", lt="b11"), DECLARED[1]),
        (Term("brand", "b10"), DECLARED[1]),
        (Range(ODD, gt=98), DECLARED[4]),
    ],
    ids=repr,
)
@pytest.mark.asyncio(loop_scope="session")
async def test_a_selective_filter_on_a_declared_field_reads_its_index(
    data: Data, pg_pool: asyncpg.Pool, f: Filter, field: FilterableField
) -> None:
    plan = await _plan(pg_pool, data.collection, f)
    assert index_name(data.collection.table_name, field) in plan, plan


@pytest.mark.asyncio(loop_scope="session")
async def test_range_estimates_come_from_the_index_statistics(
    data: Data, pg_pool: asyncpg.Pool
) -> None:
    """Undeclared, the planner guesses a range's share; declared, it reads the index's
    histogram. The estimate counts every row, heads and parts, for the range's share: single
    part items halve it (as for term filters, whose tolerance is the same)."""
    undeclared = replace(data.collection, filterable_fields=())
    for f, true in [(Range("price", gte=100, lt=130), 30), (Range("price", gte=2700), 300)]:
        matches, _ = await filter_estimate(pg_pool, data.collection, f)
        assert true / 3 - 3 <= matches <= true * 3 + 3, (f, matches)
    guessed, _ = await filter_estimate(pg_pool, undeclared, Range("price", gte=100, lt=130))
    assert guessed > 90  # a guess, far from 30


@pytest.mark.asyncio(loop_scope="session")
async def test_vector_search_with_a_declared_range_returns_the_exact_nearest(
    data: Data, pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    rng = np.random.default_rng(11)
    for f in [Range("price", gte=100, lt=130), Range("price", gte=1500)]:
        keep = data.matching(f)
        q = rng.standard_normal(DIMS)
        v = data.vectors
        d = 1 - v @ q / (np.linalg.norm(v, axis=1) * np.linalg.norm(q))
        expected = [f"i{j}" for j in np.argsort(d, kind="stable") if f"i{j}" in keep][:10]
        query = VectorQuery(vector=q.astype(np.float32), filter=f, limit=10)
        hits, _ = await vector_page(pg_pool, data.collection, query, settings)
        got = [h.object_id for h in hits]
        assert len(got) == 10 and set(got) <= keep
        assert len(set(got) & set(expected)) >= 9


# ---- SetFilterableFields ----------------------------------------------------------------------


def _fields(*pairs: tuple[Any, Any]) -> list[FilterableField]:
    return [FilterableField(f, t) for f, t in pairs]


BAD: list[tuple[list[FilterableField], str]] = [
    (_fields(("", "number")), "fields[0].field"),
    (_fields(("a", "number"), ("b..c", "keyword")), "fields[1].field"),
    (_fields(("a.", "number")), "fields[0].field"),
    (_fields(("x" * 129, "number")), "fields[0].field"),
    (_fields((".".join("a" * 17), "number")), "fields[0].field"),
    (_fields(("tags.0", "keyword")), "fields[0].field"),
    (_fields(("a. -1", "keyword")), "fields[0].field"),
    (_fields(("a\x00b", "keyword")), "fields[0].field"),
    (_fields(("a", "number"), ("b", "keyword"), ("a", "keyword")), "fields[2].field"),
    (_fields(("a", "text")), "fields[0].type"),
    (_fields(*[(f"f{i}", "number") for i in range(MAX_FILTERABLE_FIELDS + 1)]), "fields"),
]


@pytest.mark.parametrize(("fields", "named"), BAD, ids=[b[1] + repr(b[0])[:40] for b in BAD])
def test_bad_declarations_name_the_field(fields: list[FilterableField], named: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check_filterable_fields(fields)
    assert [v.field for v in raised.value.violations] == [named]


async def _pf_indexes(pool: asyncpg.Pool, collection: Collection) -> dict[str, bool]:
    rows = await pool.fetch(
        "SELECT c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE x.indrelid = $1::regclass AND c.relname LIKE '%\\_pf\\_%'",
        items_table(collection),
    )
    return {r["relname"]: r["indisvalid"] for r in rows}


@pytest.mark.asyncio(loop_scope="session")
async def test_declarations_replace_the_set_and_its_indexes(pg_pool: asyncpg.Pool) -> None:
    collection = await new_collection(pg_pool)
    await load_items(
        pg_pool,
        collection,
        [(f"i{i}", np.ones((1, DIMS)), {"a": i, "b": {"c": str(i)}}) for i in range(50)],
    )
    first = _fields(("a", "number"), ("b.c", "keyword"))
    info = await declare(pg_pool, collection.collection_id, first)
    assert info.item_count == 50 and info.collection.filterable_fields == tuple(first)
    table = collection.table_name
    assert await _pf_indexes(pg_pool, collection) == {index_name(table, f): True for f in first}
    # Same again: nothing rebuilt or dropped. Then a type change and a removal.
    oids = await pg_pool.fetch(
        f"SELECT indexrelid FROM pg_index WHERE indrelid = '{table}'::regclass"
    )
    await declare(pg_pool, collection.collection_id, first)
    again = await pg_pool.fetch(
        f"SELECT indexrelid FROM pg_index WHERE indrelid = '{table}'::regclass"
    )
    assert {r[0] for r in oids} == {r[0] for r in again}
    second = _fields(("a", "keyword"))
    info = await declare(pg_pool, collection.collection_id, second)
    assert info.collection.filterable_fields == tuple(second)
    assert await _pf_indexes(pg_pool, collection) == {index_name(table, second[0]): True}
    async with pg_pool.acquire() as conn:
        assert (await get_collection(conn, collection.collection_id)).filterable_fields == tuple(
            second
        )
    info = await declare(pg_pool, collection.collection_id, [])
    assert info.collection.filterable_fields == ()
    assert await _pf_indexes(pg_pool, collection) == {}


async def _declaration_tasks(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM tasks WHERE kind = 'filterable_fields'"))


@pytest.mark.asyncio(loop_scope="session")
async def test_an_unknown_collection_is_not_found_before_any_task(pg_pool: asyncpg.Pool) -> None:
    before = await _declaration_tasks(pg_pool)
    with pytest.raises(NotFound) as raised:
        await start(pg_pool, "no-such-collection", _fields(("a", "number")))
    assert [v.field for v in raised.value.violations] == ["collection_id"]
    collection = await new_collection(pg_pool)
    with pytest.raises(InvalidArgument) as bad:
        await start(pg_pool, collection.collection_id, _fields(("a", "number"), ("a", "keyword")))
    assert [v.field for v in bad.value.violations] == ["fields[1].field"]
    with pytest.raises(InvalidArgument) as bad:
        await start(pg_pool, collection.collection_id, _fields(("a", "number")), "k" * 129)
    assert [v.field for v in bad.value.violations] == ["idempotency_key"]
    assert await _declaration_tasks(pg_pool) == before


async def _wait_for_build(pool: asyncpg.Pool, collection: Collection) -> int:
    """The backend building an index on the collection's table, once its invalid index exists."""
    for _ in range(400):
        pid = await pool.fetchval(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%'"
            " AND query LIKE '%' || $1 || '%' AND state = 'active'",
            collection.table_name,
        )
        if pid is not None and await _pf_indexes(pool, collection):
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("no index build started")


async def _wait_until_built_no_more(pool: asyncpg.Pool, pid: int) -> None:
    """Until the backend ``pid`` no longer runs its index build (it was cancelled)."""
    for _ in range(400):
        running = await pool.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1"
            " AND query LIKE 'CREATE INDEX CONCURRENTLY%' AND state = 'active')",
            pid,
        )
        if not running:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the index build went on")


async def _twenty_items(pool: asyncpg.Pool) -> Collection:
    collection = await new_collection(pool)
    await load_items(
        pool,
        collection,
        [(f"i{i}", np.ones((1, DIMS)), {"a": i, "b": i}) for i in range(20)],
    )
    return collection


@asynccontextmanager
async def _open_write(pool: asyncpg.Pool, collection: Collection) -> AsyncIterator[Any]:
    """An open write on the collection: a concurrent build (and drop) waits for it after
    creating its (invalid) index. Yields the transaction, to roll back when the test says."""
    writer = await pool.acquire()
    try:
        tx = writer.transaction()
        await tx.start()
        await writer.execute(f"UPDATE {items_table(collection)} SET version = version")
        try:
            yield tx
        finally:
            with suppress(asyncpg.InterfaceError):  # rolled back already
                await tx.rollback()
    finally:
        await pool.release(writer)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_failed_build_leaves_no_invalid_index_and_a_second_declaration_is_aborted(
    pg_pool: asyncpg.Pool,
) -> None:
    collection = await _twenty_items(pg_pool)
    previous = _fields(("b", "number"))
    await declare(pg_pool, collection.collection_id, previous)
    fields = _fields(("a", "number"))
    task = await start(pg_pool, collection.collection_id, fields)
    async with _open_write(pg_pool, collection) as tx:
        running = asyncio.ensure_future(run_task(pg_pool, task.task_id))
        pid = await _wait_for_build(pg_pool, collection)
        before = await _declaration_tasks(pg_pool)
        with pytest.raises(Aborted, match=f"another SetFilterableFields \\(task {task.task_id}"):
            await start(pg_pool, collection.collection_id, fields)
        assert await _declaration_tasks(pg_pool) == before  # refused: no task recorded
        await pg_pool.execute("SELECT pg_cancel_backend($1)", pid)  # an operator's cancel
        await _wait_until_built_no_more(pg_pool, pid)
        await tx.rollback()  # the clean-up's drop waits for the write as well
    failed = await running
    assert failed.status == "failed"
    assert failed.error.startswith("fields[0].field: building its index failed")
    assert "QueryCanceledError" in failed.error
    table = collection.table_name
    assert await _pf_indexes(pg_pool, collection) == {index_name(table, previous[0]): True}
    async with pg_pool.acquire() as conn:
        assert (await get_collection(conn, collection.collection_id)).filterable_fields == tuple(
            previous
        )
    # Nothing held: the task restarted now succeeds, and so would a new declaration.
    await store.restart_task(pg_pool, task.task_id)
    done = await run_task(pg_pool, task.task_id)
    assert done.status == "done" and done.result["indexes_built"] == 1
    assert done.result["indexes_dropped"] == 1  # the index of "b", left out
    assert await _pf_indexes(pg_pool, collection) == {index_name(table, fields[0]): True}


@pytest.mark.asyncio(loop_scope="session")
async def test_a_canceled_task_drops_its_invalid_index_and_changes_no_declaration(
    pg_pool: asyncpg.Pool,
) -> None:
    collection = await _twenty_items(pg_pool)
    previous = _fields(("b", "number"))
    await declare(pg_pool, collection.collection_id, previous)
    task = await start(pg_pool, collection.collection_id, _fields(("a", "number")))
    async with _open_write(pg_pool, collection) as tx:
        running = asyncio.ensure_future(run_task(pg_pool, task.task_id))
        pid = await _wait_for_build(pg_pool, collection)
        building = await store.get_task(pg_pool, task.task_id)
        assert building.status == "processing"
        assert building.progress_message == "building the index of 'a' (1/1)"
        await store.cancel_task(pg_pool, task.task_id)  # CancelTask
        await _wait_until_built_no_more(pg_pool, pid)  # the worker saw it and stopped the build
        await tx.rollback()
    canceled = await running
    assert canceled.status == "canceled"
    table = collection.table_name
    assert await _pf_indexes(pg_pool, collection) == {index_name(table, previous[0]): True}
    async with pg_pool.acquire() as conn:
        assert (await get_collection(conn, collection.collection_id)).filterable_fields == tuple(
            previous
        )
    # The run's lock went with it: a new declaration builds and records.
    info = await declare(pg_pool, collection.collection_id, _fields(("a", "number")))
    assert info.collection.filterable_fields == tuple(_fields(("a", "number")))


async def _keep_going(fraction: float, message: str) -> bool:
    return True


@pytest.mark.asyncio(loop_scope="session")
async def test_a_replayed_declaration_builds_nothing_twice(pg_pool: asyncpg.Pool) -> None:
    collection = await _twenty_items(pg_pool)
    fields = _fields(("a", "number"), ("b", "keyword"))
    task = await start(pg_pool, collection.collection_id, fields, idempotency_key="declare-ab")
    # The same request with the same key: the same task, nothing new recorded.
    again = await start(pg_pool, collection.collection_id, fields, idempotency_key="declare-ab")
    assert again.task_id == task.task_id
    with pytest.raises(AlreadyExists) as other:
        await start(pg_pool, collection.collection_id, fields[:1], idempotency_key="declare-ab")
    assert [v.field for v in other.value.violations] == ["idempotency_key"]
    # A worker that took it and died: the task's lease runs out, another worker runs it.
    assert await store.claim_task(pg_pool, task.task_id, "lost-worker", 0) is not None
    done = await run_task(pg_pool, task.task_id)
    assert (done.status, done.attempts, done.result["indexes_built"]) == ("done", 2, 2)
    table = collection.table_name
    indexes = {index_name(table, f): True for f in fields}
    assert await _pf_indexes(pg_pool, collection) == indexes
    # Its message delivered once more after it ended: the runtime leaves it alone; and its
    # work run again (a replay) builds nothing and records the same set.
    assert (await run_task(pg_pool, task.task_id)).attempts == 2
    replayed = await run_declaration(pg_pool, done, _keep_going)
    assert (replayed["indexes_built"], replayed["indexes_dropped"]) == (0, 0)
    assert await _pf_indexes(pg_pool, collection) == indexes
    async with pg_pool.acquire() as conn:
        assert (await get_collection(conn, collection.collection_id)).filterable_fields == tuple(
            fields
        )


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    async with fresh_world(pg_server.dsn) as w:
        yield w


@pytest.mark.asyncio(loop_scope="session")
async def test_a_reindex_destination_declares_what_its_source_declares(world: World) -> None:
    fields = _fields(("price", "number"), ("brand.name", "keyword"))
    info = await declare(world.pool, "", fields)  # empty: the blue collection
    assert info.collection.collection_id == world.blue.collection_id
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
    assert green.filterable_fields == tuple(fields)
    assert await _pf_indexes(world.pool, green) == {
        index_name(green.table_name, f): True for f in fields
    }


def test_errors_are_es_errors() -> None:
    assert issubclass(Aborted, EsError)
