"""Events are known by (session_id, event_id): one id in two sessions keeps both, the same
event twice in one request keeps the first in request order and counts the second, and a
database from before keeps its events. Stored sessions always read back, whatever a row holds."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from es_cli.embedded import EmbeddedPostgres
from es_core.clickstream import store, use_case
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.context import Context
from es_core.errors import InvalidArgument
from es_core.pagination import MAX_RANK, PageRequest
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.storage.migrations import migrate
from es_server.clickstream_convert import session_to_proto
from tests.integration.helpers import RecordingSender, fresh_database, new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

INDEX = TextMiniLMPlugin(Settings()).get_search_index_info()


def _context(pool: asyncpg.Pool, settings: Settings) -> Context:
    return Context(settings, pool, RecordingSender(), INDEX, TOKENS)


async def _sessions(ctx: Context, count: int) -> list[str]:
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
        )
    return ids


def _click(session_id: str, event_id: str, object_id: str = "o1") -> Event:
    return Event(event_id, session_id, object_id, "click")


async def test_one_event_id_in_two_sessions_keeps_both(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    first, second = await _sessions(ctx, 2)
    pushed = await use_case.push_events(ctx, [_click(first, "click-1")])
    assert (pushed.accepted_count, pushed.duplicate_count) == (1, 0)
    # Another user's client happens to number its events the same way: nothing is lost.
    pushed = await use_case.push_events(ctx, [_click(second, "click-1", "o2")])
    assert (pushed.accepted_count, pushed.duplicate_count) == (1, 0)
    assert [e.object_id for e in (await use_case.get_session(ctx, first)).events] == ["o1"]
    assert [e.object_id for e in (await use_case.get_session(ctx, second)).events] == ["o2"]
    # Resending both (a retry) records nothing new, in either session.
    again = await use_case.push_events(
        ctx, [_click(first, "click-1"), _click(second, "click-1", "o2")]
    )
    assert (again.accepted_count, again.duplicate_count) == (0, 2)


async def test_one_event_twice_in_a_request_keeps_the_first_and_counts_the_second(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    ctx = _context(pg_pool, settings)
    first, second = await _sessions(ctx, 2)
    events = [
        _click(first, "e-1"),
        _click(second, "e-1"),  # the same id in another session is another event
        _click(first, "e-2"),
        Event("e-1", first, "o2", "purchase"),  # the first session's e-1 again, other content
    ]
    pushed = await use_case.push_events(ctx, events)
    assert (pushed.accepted_count, pushed.duplicate_count) == (3, 1)
    kept = {e.event_id: e for e in (await use_case.get_session(ctx, first)).events}
    assert (kept["e-1"].object_id, kept["e-1"].event_type) == ("o1", "click")  # the first one
    assert [e.event_id for e in (await use_case.get_session(ctx, second)).events] == ["e-1"]
    # The same request in the other order keeps the other one: request order decides.
    (third,) = await _sessions(ctx, 1)
    reordered = [Event("e-1", third, "o2", "purchase"), _click(third, "e-1")]
    pushed = await use_case.push_events(ctx, reordered)
    assert (pushed.accepted_count, pushed.duplicate_count) == (1, 1)
    (kept_third,) = (await use_case.get_session(ctx, third)).events
    assert (kept_third.object_id, kept_third.event_type) == ("o2", "purchase")


async def test_a_session_with_a_rank_past_int32_is_never_stored(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool)
    session = Session(
        unique_id("s"),
        [ShownResult("o1", MAX_RANK), ShownResult("o2", MAX_RANK + 1)],
        collection_id=collection.collection_id,
    )
    async with pg_pool.acquire() as conn:
        with pytest.raises(InvalidArgument) as info:
            await store.register_session(conn, session, datetime.now(UTC), None)
    assert info.value.violations[0].field == "session.results[1].rank"
    row = await pg_pool.fetchval(
        "SELECT count(*) FROM sessions WHERE session_id = $1", session.session_id
    )
    assert row == 0


async def test_an_odd_stored_row_still_reads_and_lists(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """A row written before ranks were bounded (rank 2**40) with a filter the contract cannot
    read: GetSession and ListSessions still answer, the rank shown at the int32 limit."""
    ctx = _context(pg_pool, settings)
    (session_id,) = await _sessions(ctx, 1)
    user = unique_id("u")
    await pg_pool.execute(
        "UPDATE sessions SET user_id = $2, results = $3::jsonb, filter = $4::jsonb"
        " WHERE session_id = $1",
        session_id,
        user,
        [{"object_id": "o1", "rank": 2**40}],
        {"no_such_clause": {}},
    )
    shown = session_to_proto(await use_case.get_session(ctx, session_id))
    assert [(r.object_id, r.rank) for r in shown.results] == [("o1", MAX_RANK)]
    assert not shown.HasField("filter")
    page = await use_case.list_sessions(ctx, use_case.ListSessionsInput(PageRequest(), user))
    assert [session_to_proto(s).session_id for s in page.items] == [session_id]


async def test_events_of_an_older_database_stay_and_ids_become_per_session(
    pg_server: EmbeddedPostgres,
) -> None:
    async with fresh_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, below=8)
            await conn.execute(
                "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation,"
                " source) VALUES ('m', 'm', '1', 8, 'cosine', 'min', 'test:none');"
                "INSERT INTO collections (collection_id, model_id, table_name, state, hnsw_m,"
                " hnsw_ef_construction) VALUES ('c', 'm', 'items_c', 'green', 16, 64);"
                "INSERT INTO session_batches (batch_id, state) VALUES ('b', 'collecting');"
                "INSERT INTO sessions (session_id, results, collection_id, batch_id,"
                " create_time, content_digest) VALUES"
                " ('s1', '[]', 'c', 'b', now(), 'x'), ('s2', '[]', 'c', 'b', now(), 'y');"
                "INSERT INTO session_events (event_id, session_id, object_id, event_type,"
                " event_time, object_not_shown) VALUES ('e', 's1', 'o', 'click', now(), false)"
            )
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "INSERT INTO session_events (event_id, session_id, object_id, event_type,"
                    " event_time, object_not_shown) VALUES ('e', 's2', 'o', 'click', now(), true)"
                )
            assert 8 in await migrate(conn)
            kept = await conn.fetch("SELECT session_id, event_id FROM session_events")
            await conn.execute(
                "INSERT INTO session_events (event_id, session_id, object_id, event_type,"
                " event_time, object_not_shown) VALUES ('e', 's2', 'o', 'click', now(), true)"
            )
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute(
                    "INSERT INTO session_events (event_id, session_id, object_id, event_type,"
                    " event_time, object_not_shown) VALUES ('e', 's1', 'o', 'click', now(), true)"
                )
            after = await conn.fetchval("SELECT count(*) FROM session_events")
        finally:
            await conn.close()
    assert [(r["session_id"], r["event_id"]) for r in kept] == [("s1", "e")]
    assert after == 2
