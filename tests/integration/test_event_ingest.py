"""Events are staged by COPY and recorded by one statement: an unknown session, a duplicate or
a row PostgreSQL refuses leaves nothing half-written, and pooled connections never see each
other's staged rows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from es_core.clickstream import store, use_case
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.context import Context
from es_core.errors import InvalidArgument, NotFound
from es_core.plugins.text_minilm import TextMiniLMPlugin
from tests.integration.helpers import RecordingSender, new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

INDEX = TextMiniLMPlugin(Settings()).get_search_index_info()


def _context(pool: asyncpg.Pool, settings: Settings) -> Context:
    return Context(settings, pool, RecordingSender(), INDEX, TOKENS)


async def _sessions(ctx: Context, count: int, app: str | None = None) -> list[str]:
    collection = await new_collection(ctx.pool)
    ids = [unique_id("s") for _ in range(count)]
    for session_id in ids:
        await use_case.register_session(
            ctx,
            Session(
                session_id,
                [ShownResult("o1", 0), ShownResult("o2", 1)],
                collection_id=collection.collection_id,
            ),
            app,
        )
    return ids


async def _recorded(pool: asyncpg.Pool, session_ids: list[str]) -> list[tuple[str, str, bool]]:
    rows = await pool.fetch(
        "SELECT session_id, event_id, object_not_shown FROM session_events"
        " WHERE session_id = ANY($1::text[]) ORDER BY session_id, event_id",
        session_ids,
    )
    return [(r["session_id"], r["event_id"], r["object_not_shown"]) for r in rows]


async def test_an_unknown_session_refuses_the_whole_batch_naming_its_first_event(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    (known,) = await _sessions(ctx, 1)
    missing = unique_id("never-registered")
    events = [
        Event("e-1", known, "o1", "click"),
        Event("e-2", missing, "o1", "click"),
        Event("e-3", known, "o2", "click"),
        Event("e-4", missing, "o2", "click"),
    ]
    with pytest.raises(NotFound) as info:
        await use_case.push_events(ctx, events)
    assert info.value.violations[0].field == "events[1].session_id"
    assert missing in info.value.violations[0].description
    assert await _recorded(pg_pool, [known, missing]) == []
    # The known session's events alone go in, object_not_shown computed against what it showed.
    pushed = await use_case.push_events(
        ctx, [events[0], events[2], Event("e-5", known, "not-shown", "click")]
    )
    assert (pushed.accepted_count, pushed.duplicate_count) == (3, 0)
    assert await _recorded(pg_pool, [known]) == [
        (known, "e-1", False),
        (known, "e-3", False),
        (known, "e-5", True),
    ]


async def test_another_apps_session_is_unknown_and_nothing_is_written(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    (mine,) = await _sessions(ctx, 1, app="app-a")
    (theirs,) = await _sessions(ctx, 1, app="app-b")
    with pytest.raises(NotFound) as info:
        await use_case.push_events(
            ctx,
            [Event("e-1", mine, "o1", "click"), Event("e-1", theirs, "o1", "click")],
            app="app-a",
        )
    assert info.value.violations[0].field == "events[1].session_id"
    assert await _recorded(pg_pool, [mine, theirs]) == []
    # No app (an admin key) reaches both.
    pushed = await use_case.push_events(
        ctx, [Event("e-1", mine, "o1", "click"), Event("e-1", theirs, "o1", "click")]
    )
    assert (pushed.accepted_count, pushed.duplicate_count) == (2, 0)


async def test_duplicates_within_a_batch_and_across_batches_are_counted_once(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    first, second = await _sessions(ctx, 2)
    batch = [Event(f"e-{i % 3}", first, "o1", "click") for i in range(7)]
    batch += [Event("e-0", second, "o2", "click")]
    pushed = await use_case.push_events(ctx, batch)
    assert (pushed.accepted_count, pushed.duplicate_count) == (4, 4)
    # The same batch again, plus one new event: only that one is accepted.
    pushed = await use_case.push_events(ctx, [*batch, Event("e-9", second, "o1", "click")])
    assert (pushed.accepted_count, pushed.duplicate_count) == (1, 8)
    recorded = {(s, e) for s, e, _ in await _recorded(pg_pool, [first, second])}
    assert recorded == {(first, "e-0"), (first, "e-1"), (first, "e-2"), (second, "e-0")} | {
        (second, "e-9")
    }


@pytest.mark.parametrize(
    ("bad", "refused_by"),
    [
        # A NUL in text: COPY itself refuses the staged row.
        (Event("e-bad", "", "o\x00", "click"), asyncpg.exceptions.CharacterNotInRepertoireError),
        # Staged fine, refused by the INSERT that records it (the meta is no JSON there).
        (Event("e-bad", "", "o1", "click", meta={"x": float("nan")}), asyncpg.DataError),
    ],
)
async def test_a_batch_postgres_refuses_leaves_nothing_half_written(
    pg_pool: asyncpg.Pool,
    settings: Settings,
    bad: Event,
    refused_by: type[Exception],
) -> None:
    """The store is called past the checks (they would refuse these first): the refusal comes
    from PostgreSQL, mid-batch, and the batch's good events are not recorded either. The same
    connection then records the next batch exactly, so no staged row outlived the failure."""
    ctx = _context(pg_pool, settings)
    (session_id,) = await _sessions(ctx, 1)
    good = [Event(f"e-{i}", session_id, "o1", "click") for i in range(5)]
    bad = Event(bad.event_id, session_id, bad.object_id, bad.event_type, meta=bad.meta)
    async with pg_pool.acquire() as conn:
        with pytest.raises(refused_by):
            await store.push_events(conn, [*good[:3], bad, *good[3:]], datetime.now(UTC))
        assert await _recorded(pg_pool, [session_id]) == []
        assert await store.push_events(conn, good[:2], datetime.now(UTC)) == 2
    assert [e for _, e, _ in await _recorded(pg_pool, [session_id])] == ["e-0", "e-1"]


async def test_a_push_canceled_mid_way_records_nothing_and_the_pool_goes_on(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    (session_id,) = await _sessions(ctx, 1)
    events = [Event(f"e-{i}", session_id, "o1", "click") for i in range(2000)]
    async with pg_pool.acquire() as conn:
        # Another connection holds a lock the push's statement must wait for: it is canceled
        # while it waits, after its events were staged.
        blocker = await pg_pool.acquire()
        try:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE session_events IN EXCLUSIVE MODE")
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(1):
                        await store.push_events(conn, events, datetime.now(UTC))
        finally:
            await pg_pool.release(blocker)
    assert await _recorded(pg_pool, [session_id]) == []
    pushed = await use_case.push_events(ctx, events[:10])
    assert (pushed.accepted_count, pushed.duplicate_count) == (10, 0)


async def test_concurrent_pushes_on_the_pool_each_count_their_own_events(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    sessions = await _sessions(ctx, 4)
    batches = [
        [Event(f"b{b}-e{i}", sessions[i % 4], "o1", "click") for i in range(100 + 10 * b)]
        for b in range(8)
    ]
    # Batch 7 repeats batch 0's first 50 events (and adds its own).
    batches[7] = batches[0][:50] + batches[7]
    pushed = await asyncio.gather(*(use_case.push_events(ctx, b) for b in batches))
    total_new = sum(p.accepted_count for p in pushed)
    assert sum(p.duplicate_count for p in pushed) == 50
    assert total_new == sum(100 + 10 * b for b in range(8))
    assert len(await _recorded(pg_pool, sessions)) == total_new


async def test_pushes_inside_one_caller_transaction_each_see_only_their_own(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """The staged rows are emptied at commit; inside a caller's longer transaction a push
    empties them itself, so the next push there checks and records only its own events (here
    the first push's session is another app's, which the second caller may not reach)."""
    ctx = _context(pg_pool, settings)
    (mine,) = await _sessions(ctx, 1, app="app-a")
    (theirs,) = await _sessions(ctx, 1, app="app-b")
    first = [Event(f"e-{i}", theirs, "o1", "click") for i in range(3)]
    second = [Event(f"e-{i}", mine, "o2", "click") for i in range(4)]
    async with pg_pool.acquire() as conn, conn.transaction():
        assert await store.push_events(conn, first, datetime.now(UTC)) == 3
        assert await store.push_events(conn, second, datetime.now(UTC), "app-a") == 4
    assert len(await _recorded(pg_pool, [mine, theirs])) == 7


async def test_a_stream_whose_batch_fails_to_read_records_every_batch_before_it(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """The stream reads its next batch while recording this one: a batch that fails to read
    (a bad message) still ends the stream only after the batches before it are recorded."""
    ctx = _context(pg_pool, settings)
    (session_id,) = await _sessions(ctx, 1)

    async def batches() -> AsyncIterator[list[Event]]:
        for b in range(2):
            yield [Event(f"b{b}-e{i}", session_id, "o1", "click") for i in range(300)]
        raise InvalidArgument.field_error("events[0].meta", "numbers must be finite")

    with pytest.raises(InvalidArgument) as info:
        await use_case.push_event_stream(ctx, batches())
    assert info.value.violations[0].field == "events[0].meta"
    assert len(await _recorded(pg_pool, [session_id])) == 600
