"""The improvement queue on a real PostgreSQL: sessions in, per-user copies of item vectors out.

Sessions are registered with ``es_core.clickstream.store`` (with their query vectors), events
pushed, sessions queued, and the queue drained with ``improve_queued`` / ``improve_batch``.
Every test works in its own fresh collection (8-d cosine, two parts per item) with its own
session and user ids, so tests only look at their own rows of the shared queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
import pytest

from es_core.clickstream import store
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.filters import Range
from es_core.improvement.run import ImprovementReport, improve_batch, improve_queued
from es_core.search.query import VectorQuery
from es_core.search.vector_search import vector_page
from es_core.storage.catalog import items_table
from tests.integration.helpers import DIMS, as_array, load_items, new_collection, unique_id

pytestmark = pytest.mark.integration

N_ITEMS = 10
N_PARTS = 2


def unit(rng: np.random.Generator, n: int = 1) -> np.ndarray:
    v = rng.normal(size=(n, DIMS))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


async def fresh(pool: asyncpg.Pool, seed: int) -> tuple[Collection, list[str]]:
    """A new collection holding N_ITEMS items of N_PARTS random unit parts each."""
    collection = await new_collection(pool, "cosine", "min")
    rng = np.random.default_rng(seed)
    ids = [f"o{i}" for i in range(N_ITEMS)]
    await load_items(
        pool, collection, [(o, unit(rng, N_PARTS), {"n": i}) for i, o in enumerate(ids)]
    )
    return collection, ids


async def add_session(
    pool: asyncpg.Pool,
    collection: Collection,
    session_id: str,
    user_id: str,
    shown: Sequence[str],
    events: Sequence[tuple[str, str]],
    query_vector: np.ndarray | None,
    query_text: str = "",
) -> None:
    """Register a session showing ``shown`` (ranks 0..) and push ``events`` (object, type)."""
    session = Session(
        session_id=session_id,
        results=[ShownResult(o, rank) for rank, o in enumerate(shown)],
        user_id=user_id,
        query_text=query_text,
        collection_id=collection.collection_id,
    )
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        _, created = await store.register_session(conn, session, now, query_vector)
        assert created
        if events:
            pushed = [
                Event(f"{session_id}-e{i}", session_id, o, kind)
                for i, (o, kind) in enumerate(events)
            ]
            assert await store.push_events(conn, pushed, now) == len(pushed)


async def queue(pool: asyncpg.Pool, session_ids: list[str]) -> int:
    return await store.queue_for_improvement(pool, session_ids)


async def queue_rows(pool: asyncpg.Pool, session_ids: list[str]) -> dict[str, asyncpg.Record]:
    rows = await pool.fetch(
        "SELECT session_id, state, note, process_count FROM improvement_queue"
        " WHERE session_id = ANY($1::text[])",
        session_ids,
    )
    return {r["session_id"]: r for r in rows}


async def copies(pool: asyncpg.Pool, collection: Collection, user_id: str) -> dict[str, Any]:
    """A user's copies: object_id -> {part_id: vector}, the average row under part ''."""
    rows = await pool.fetch(
        f"SELECT object_id, part_id, vector FROM {items_table(collection)} WHERE user_id = $1",
        user_id,
    )
    out: dict[str, dict[str, np.ndarray]] = {}
    for r in rows:
        parts = out.setdefault(r["object_id"], {})
        assert r["part_id"] not in parts, f"two copies of {r['object_id']}/{r['part_id']}"
        parts[r["part_id"]] = as_array(r["vector"])
    return out


async def originals(pool: asyncpg.Pool, collection: Collection) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        f"SELECT row_id, object_id, part_id, is_average, vector::text, payload, update_time"
        f" FROM {items_table(collection)} WHERE user_id IS NULL ORDER BY row_id"
    )
    return [tuple(r) for r in rows]


async def part_vectors(
    pool: asyncpg.Pool, collection: Collection, object_id: str, user_id: str | None
) -> np.ndarray:
    rows = await pool.fetch(
        f"SELECT vector FROM {items_table(collection)} WHERE object_id = $1 AND NOT is_average"
        f" AND user_id IS NOT DISTINCT FROM $2 ORDER BY part_id",
        object_id,
        user_id,
    )
    return np.stack([as_array(r["vector"]) for r in rows])


def min_cosine_distance(parts: np.ndarray, query: np.ndarray) -> float:
    q = np.asarray(query, np.float64)
    sims = parts @ q / (np.linalg.norm(parts, axis=1) * np.linalg.norm(q))
    return float(1 - sims.max())


def drain(pool: asyncpg.Pool, settings: Settings) -> Any:
    return improve_queued(pool, settings, EncoderRegistry())


async def test_two_drains_at_once_process_every_session_exactly_once(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """21 sessions of 7 users, batches of 3, two drains concurrently.

    Each user's three sessions are queued together after the previous user's, so every batch
    holds one user's sessions (the same user in two concurrent batches is tested below)."""
    small = settings.model_copy(update={"improvement_batch_size": 3})
    collection, ids = await fresh(pg_pool, 1)
    rng = np.random.default_rng(11)
    prefix = unique_id("iq-once")
    users = [f"{prefix}-u{u}" for u in range(7)]
    by_user: dict[str, list[str]] = {}
    for u, user in enumerate(users):
        for k in range(3):
            sid = f"{prefix}-u{u}-s{k}"
            shown = [ids[(u + k + j) % N_ITEMS] for j in range(4)]
            await add_session(
                pg_pool, collection, sid, user, shown, [(shown[2], "click")], unit(rng)[0]
            )
            by_user.setdefault(user, []).append(sid)
    for user in users:
        assert await queue(pg_pool, by_user[user]) == 3
    all_ids = [sid for user in users for sid in by_user[user]]

    first, second = await asyncio.gather(drain(pg_pool, small), drain(pg_pool, small))

    assert first.improved + second.improved >= len(all_ids)
    rows = await queue_rows(pg_pool, all_ids)
    assert sorted(rows) == sorted(all_ids)
    assert {r["process_count"] for r in rows.values()} == {1}
    assert {(r["state"], r["note"]) for r in rows.values()} == {("done", "")}
    for user in users:
        mine = await copies(pg_pool, collection, user)
        assert mine, f"no copies for {user}"
        for parts in mine.values():
            assert sorted(parts) == ["", "p0", "p1"]
    # The second pass finds nothing left.
    assert (await drain(pg_pool, small)).as_dict() == ImprovementReport().as_dict()


async def test_sessions_that_cannot_teach_are_skipped_with_a_note(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection, ids = await fresh(pg_pool, 2)
    rng = np.random.default_rng(22)
    prefix = unique_id("iq-skip")
    shown = ids[:4]
    cases = {
        "anonymous": ("", [(shown[1], "click")], "anonymous"),
        "no-events": (f"{prefix}-u1", [], "no positive event"),
        "not-shown-click": (f"{prefix}-u2", [(ids[9], "click")], "no positive event"),
        "irrelevant-late": (f"{prefix}-u3", [(shown[1], "click")], "irrelevant"),
    }
    for name, (user, events, _) in cases.items():
        await add_session(
            pg_pool, collection, f"{prefix}-{name}", user, shown, events, unit(rng)[0]
        )
    # Neither a query vector nor a text: nothing to move the items towards.
    await add_session(
        pg_pool,
        collection,
        f"{prefix}-no-query",
        f"{prefix}-u4",
        shown,
        [(shown[0], "click")],
        None,
    )
    # Irrelevant before queueing: never queued.
    await add_session(
        pg_pool,
        collection,
        f"{prefix}-irrelevant",
        f"{prefix}-u5",
        shown,
        [(shown[1], "click")],
        unit(rng)[0],
    )
    async with pg_pool.acquire() as conn:
        marked = await store.mark_irrelevant(conn, f"{prefix}-irrelevant")
    assert marked.irrelevant
    assert await queue(pg_pool, [f"{prefix}-irrelevant"]) == 0
    # Queued, then marked irrelevant: skipped at once, never processed.
    await add_session(
        pg_pool,
        collection,
        f"{prefix}-marked",
        f"{prefix}-u6",
        shown,
        [(shown[1], "click")],
        unit(rng)[0],
    )
    queued_ids = [f"{prefix}-{n}" for n in [*cases, "no-query", "marked"]]
    assert await queue(pg_pool, queued_ids) == len(queued_ids)
    async with pg_pool.acquire() as conn:
        await store.mark_irrelevant(conn, f"{prefix}-marked")
    # Irrelevant while still waiting in the queue (the flag set under the queue's feet).
    await pg_pool.execute(
        "UPDATE sessions SET irrelevant = true WHERE session_id = $1", f"{prefix}-irrelevant-late"
    )

    report = await drain(pg_pool, settings)

    assert report.improved == 0 and report.copies_written == 0
    rows = await queue_rows(pg_pool, [*queued_ids, f"{prefix}-irrelevant"])
    assert f"{prefix}-irrelevant" not in rows
    for name, (_, _, note) in cases.items():
        row = rows[f"{prefix}-{name}"]
        assert row["state"] == "skipped" and note in row["note"], (name, dict(row))
        assert row["process_count"] == 1
    no_query = rows[f"{prefix}-no-query"]
    assert no_query["state"] == "skipped" and "query" in no_query["note"]
    marked_row = rows[f"{prefix}-marked"]
    assert (marked_row["state"], marked_row["process_count"]) == ("skipped", 0)
    assert "irrelevant" in marked_row["note"]
    copy_count = await pg_pool.fetchval(
        f"SELECT count(*) FROM {items_table(collection)} WHERE user_id IS NOT NULL"
    )
    assert copy_count == 0


async def test_the_copy_moves_the_clicked_item_towards_the_query_for_that_user_only(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection, ids = await fresh(pg_pool, 3)
    rng = np.random.default_rng(33)
    user = unique_id("iq-move-u")
    sid = unique_id("iq-move")
    query = unit(rng)[0]
    shown = ids[:4]
    clicked = shown[2]
    await add_session(pg_pool, collection, sid, user, shown, [(clicked, "click")], query)
    before = await originals(pg_pool, collection)
    original_clicked = await part_vectors(pg_pool, collection, clicked, None)
    assert await queue(pg_pool, [sid]) == 1

    # The shown order is not the query's own ranking here: without the skip floor every item
    # passed over is pushed, whatever it scores (the floor has its own tests in test_adjuster).
    report = await drain(pg_pool, settings.model_copy(update={"improvement_skip_floor": False}))

    assert report.improved >= 1
    assert (await queue_rows(pg_pool, [sid]))[sid]["state"] == "done"
    mine = await copies(pg_pool, collection, user)
    # The clicked item and the two passed over above it; nothing below the click.
    assert sorted(mine) == sorted(shown[:3])
    copy_clicked = await part_vectors(pg_pool, collection, clicked, user)
    assert min_cosine_distance(copy_clicked, query) < min_cosine_distance(original_clicked, query)
    for passed in shown[:2]:
        assert min_cosine_distance(
            await part_vectors(pg_pool, collection, passed, user), query
        ) > min_cosine_distance(await part_vectors(pg_pool, collection, passed, None), query)
    # Copies store no payload of their own (searches read the original's); the originals did
    # not change at all.
    payloads = await pg_pool.fetch(
        f"SELECT DISTINCT object_id, payload FROM {items_table(collection)} WHERE user_id = $1",
        user,
    )
    assert {r["object_id"]: r["payload"] for r in payloads} == {o: {} for o in shown[:3]}
    # The user's filtered search scores the copies and filters and returns them by the
    # originals' payloads; another user's the originals alone.
    n_up_to_2 = Range(field="n", lte=2)
    for who, personal in ((user, True), ("someone-else", False)):
        hits, _ = await vector_page(
            pg_pool,
            collection,
            VectorQuery(vector=query, filter=n_up_to_2, limit=10, user_id=who),
            settings,
        )
        assert sorted(h.object_id for h in hits) == ["o0", "o1", "o2"]
        assert all(h.payload == {"n": ids.index(h.object_id)} for h in hits)
        assert {h.object_id for h in hits if h.user_id} == (set(shown[:3]) if personal else set())
    assert await originals(pg_pool, collection) == before
    others = await pg_pool.fetchval(
        f"SELECT count(*) FROM {items_table(collection)}"
        " WHERE user_id IS NOT NULL AND user_id <> $1",
        user,
    )
    assert others == 0


async def test_draining_an_empty_queue_improves_nothing(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection, ids = await fresh(pg_pool, 4)
    sid, user = unique_id("iq-empty"), unique_id("iq-empty-u")
    await add_session(
        pg_pool,
        collection,
        sid,
        user,
        ids[:3],
        [(ids[1], "click")],
        unit(np.random.default_rng(4))[0],
    )
    assert await queue(pg_pool, [sid]) == 1
    assert (await drain(pg_pool, settings)).improved >= 1
    written = await pg_pool.fetchval(
        f"SELECT count(*) FROM {items_table(collection)} WHERE user_id = $1", user
    )

    again = await drain(pg_pool, settings)

    assert again.as_dict() == {"improved_sessions": 0, "skipped_sessions": 0, "copies_written": 0}
    async with pg_pool.acquire() as conn, conn.transaction():
        assert await improve_batch(conn, settings, EncoderRegistry()) is None
    assert (await queue_rows(pg_pool, [sid]))[sid]["process_count"] == 1
    assert (
        await pg_pool.fetchval(
            f"SELECT count(*) FROM {items_table(collection)} WHERE user_id = $1", user
        )
        == written
    )


async def test_an_event_type_of_weight_zero_is_not_a_positive(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    assert settings.event_weights.get("view", 0.0) == 0.0
    collection, ids = await fresh(pg_pool, 5)
    rng = np.random.default_rng(55)
    prefix = unique_id("iq-view")
    shown = ids[:4]
    # Only views: nothing to learn.
    await add_session(
        pg_pool,
        collection,
        f"{prefix}-views",
        f"{prefix}-u1",
        shown,
        [(shown[2], "view"), (shown[3], "view")],
        unit(rng)[0],
    )
    # A view deep down and a click at the top: the view neither counts as a positive nor makes
    # the results above it "passed over"; only the clicked item gets a copy.
    await add_session(
        pg_pool,
        collection,
        f"{prefix}-mixed",
        f"{prefix}-u2",
        shown,
        [(shown[3], "view"), (shown[0], "click")],
        unit(rng)[0],
    )
    assert await queue(pg_pool, [f"{prefix}-views", f"{prefix}-mixed"]) == 2

    await drain(pg_pool, settings)

    rows = await queue_rows(pg_pool, [f"{prefix}-views", f"{prefix}-mixed"])
    views = rows[f"{prefix}-views"]
    assert views["state"] == "skipped" and "no positive event" in views["note"]
    assert rows[f"{prefix}-mixed"]["state"] == "done"
    assert await copies(pg_pool, collection, f"{prefix}-u1") == {}
    assert sorted(await copies(pg_pool, collection, f"{prefix}-u2")) == [shown[0]]


async def _wait_until_blocked_or_done(
    pool: asyncpg.Pool, pid: int, task: asyncio.Task[Any], timeout: float = 60.0
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not task.done() and loop.time() < deadline:
        waiting = await pool.fetchval(
            "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", pid
        )
        if waiting == "Lock":
            return
        await asyncio.sleep(0.05)


async def test_concurrent_batches_of_one_user_both_succeed(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    one = settings.model_copy(update={"improvement_batch_size": 1})
    collection, ids = await fresh(pg_pool, 6)
    rng = np.random.default_rng(66)
    prefix = unique_id("iq-race")
    user = f"{prefix}-u"
    shown = ids[:3]
    sids = [f"{prefix}-s0", f"{prefix}-s1"]
    for sid in sids:
        await add_session(
            pg_pool, collection, sid, user, shown, [(shown[1], "click")], unit(rng)[0]
        )
    assert await queue(pg_pool, sids) == 2
    conn_a = await pg_pool.acquire()
    conn_b = await pg_pool.acquire()
    tx_a, tx_b = conn_a.transaction(), conn_b.transaction()
    try:
        await tx_a.start()
        report_a = await improve_batch(conn_a, one, EncoderRegistry())
        assert report_a is not None and report_a.improved == 1
        await tx_b.start()
        batch_b = asyncio.create_task(improve_batch(conn_b, one, EncoderRegistry()))
        await _wait_until_blocked_or_done(pg_pool, conn_b.get_server_pid(), batch_b)
        await tx_a.commit()
        report_b = await batch_b
        await tx_b.commit()
    finally:
        for conn, tx in ((conn_a, tx_a), (conn_b, tx_b)):
            if conn.is_in_transaction():
                await tx.rollback()
        await pg_pool.release(conn_a)
        await pg_pool.release(conn_b)
        await drain(pg_pool, settings)  # leave nothing of this test queued
    assert report_b is not None and report_b.improved == 1
    rows = await queue_rows(pg_pool, sids)
    assert {(r["state"], r["process_count"]) for r in rows.values()} == {("done", 1)}
    assert sorted(await copies(pg_pool, collection, user)) == sorted(shown[:2])
