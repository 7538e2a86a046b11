"""Writing and reading sessions and events; every write is one statement or one transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any, TypeAlias

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.clickstream.model import Event, Session, ShownResult, check_ranks
from es_core.errors import AlreadyExists, NotFound
from es_core.page_tokens import PageTokens
from es_core.pagination import time_cursor, time_page

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

_SESSION_COLUMNS = (
    "session_id, user_id, query_text, results, filter, sort, meta, collection_id, irrelevant,"
    " batch_id, create_time, app"
)
# Every read and write of sessions takes the caller's ``app``: None reaches every app's
# sessions; a name only that app's, and another app's session is as if it did not exist.
_IN_APP = "($%d::text IS NULL OR app = $%d)"


def _session(row: asyncpg.Record, events: list[Event] | None = None) -> Session:
    return Session(
        session_id=row["session_id"],
        results=[ShownResult(r["object_id"], r["rank"]) for r in row["results"]],
        user_id=row["user_id"],
        query_text=row["query_text"],
        filter=row["filter"],
        sort=row["sort"],
        meta=row["meta"],
        create_time=row["create_time"],
        collection_id=row["collection_id"],
        irrelevant=row["irrelevant"],
        batch_id=row["batch_id"],
        events=events or [],
        app=row["app"],
    )


def _digest(session: Session) -> str:
    return hashlib.sha256(json.dumps(session.content(), sort_keys=True).encode()).hexdigest()


async def collecting_batch(conn: asyncpg.Connection) -> str:
    """The batch new sessions join; created when none collects (race-safe)."""
    batch_id = await conn.fetchval(
        "SELECT batch_id FROM session_batches WHERE state = 'collecting'"
    )
    if batch_id is None:
        await conn.execute(
            "INSERT INTO session_batches (batch_id, state) VALUES ($1, 'collecting')"
            " ON CONFLICT DO NOTHING",
            f"batch-{uuid.uuid4().hex[:12]}",
        )
        batch_id = await conn.fetchval(
            "SELECT batch_id FROM session_batches WHERE state = 'collecting'"
        )
    return str(batch_id)


async def release_batch(conn: asyncpg.Connection) -> str | None:
    """Close the collecting batch (new sessions start a new one); returns its id, if any."""
    released = await conn.fetchval(
        "UPDATE session_batches SET state = 'released', release_time = now()"
        " WHERE state = 'collecting' RETURNING batch_id"
    )
    return None if released is None else str(released)


async def register_session(
    conn: asyncpg.Connection,
    session: Session,
    create_time: datetime,
    query_vector: npt.NDArray[np.float32] | None,
) -> tuple[Session, bool]:
    """Store a checked session; the same session_id again returns the first registration,
    unless its content differs (ALREADY_EXISTS). Its ranks are checked here too, as every
    session stored passes here (a Search with create_session as well as RegisterSession)."""
    check_ranks(session.results)
    digest = _digest(session)
    async with conn.transaction():
        batch_id = await collecting_batch(conn)
        row = await conn.fetchrow(
            f"INSERT INTO sessions (session_id, user_id, query_text, results, filter, sort, meta,"
            f" collection_id, query_vector, batch_id, create_time, content_digest, app)"
            f" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
            f" ON CONFLICT (session_id) DO NOTHING RETURNING {_SESSION_COLUMNS}",
            session.session_id,
            session.user_id,
            session.query_text,
            [{"object_id": r.object_id, "rank": r.rank} for r in session.results],
            session.filter,
            session.sort,
            session.meta,
            session.collection_id,
            query_vector,
            batch_id,
            create_time,
            digest,
            session.app,
        )
    if row is not None:
        return _session(row), True
    existing = await conn.fetchrow(
        f"SELECT {_SESSION_COLUMNS}, content_digest FROM sessions WHERE session_id = $1",
        session.session_id,
    )
    assert existing is not None
    if existing["content_digest"] != digest or existing["app"] != session.app:
        raise AlreadyExists.field_error(
            "session.session_id", "was already registered with different content"
        )
    return _session(existing), False


# Events are staged by COPY into a table of the connection's own (a temporary table lives
# and dies with its connection, so pooled connections never see each other's rows; ON COMMIT
# DELETE ROWS empties it when the push commits or rolls back), then recorded by one statement.
_STAGE = "pushed_events_stage"
_STAGE_COLUMNS = ("ord", "event_id", "session_id", "object_id", "event_type", "event_time", "meta")
_CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {_STAGE} (ord integer NOT NULL, event_id text NOT NULL,"
    " session_id text NOT NULL, object_id text NOT NULL, event_type text NOT NULL,"
    " event_time timestamptz, meta text NOT NULL) ON COMMIT DELETE ROWS"
)


def _record_staged(on_conflict: str) -> str:
    """One statement: the first staged event whose session is not in the caller's app (then
    nothing is written), else the staged events joined to their sessions, inserted in key
    order (index-friendly, and concurrent pushes take their row locks in one order)."""
    return (
        "WITH unknown AS (SELECT min(e.ord) AS ord FROM "
        + _STAGE
        + " e WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = e.session_id AND "
        + _IN_APP % (2, 2)
        + ")), recorded AS ("
        " INSERT INTO session_events (event_id, session_id, object_id, event_type, event_time,"
        " meta, object_not_shown)"
        " SELECT e.event_id, e.session_id, e.object_id, e.event_type,"
        "  coalesce(e.event_time, $1), e.meta::jsonb,"
        "  NOT (s.results @> jsonb_build_array(jsonb_build_object('object_id', e.object_id)))"
        " FROM " + _STAGE + " e JOIN sessions s USING (session_id)"
        " WHERE (SELECT ord FROM unknown) IS NULL ORDER BY e.session_id, e.event_id "
        + on_conflict
        + " RETURNING 1)"
        " SELECT (SELECT ord FROM unknown) AS unknown, (SELECT count(*) FROM recorded) AS recorded"
    )


# Most pushes hold only new events: a plain INSERT records them ~20% cheaper than ON CONFLICT
# (no speculative insertion). One that meets an event recorded before (a resend, or a push
# running at the same time) rolls back to its savepoint and goes again skipping duplicates.
_RECORD_NEW = _record_staged("")
_RECORD_SKIPPING_DUPLICATES = _record_staged("ON CONFLICT (session_id, event_id) DO NOTHING")


def _meta_text(meta: dict[str, Any]) -> str:
    if not meta:
        return "{}"
    return json.dumps(meta, separators=(",", ":"), ensure_ascii=False)


async def push_events(
    conn: asyncpg.Connection, events: list[Event], now: datetime, app: str | None = None
) -> int:
    """Record checked events in one transaction; returns how many were new. An event is known by
    its session_id and event_id (one event id may serve in many sessions); one recorded before,
    or repeated within ``events``, is a duplicate, and the first occurrence in request order is
    the one kept. Every session must exist in ``app``: NOT_FOUND names the first that does
    not, and nothing is recorded."""
    first: dict[tuple[str, str], tuple[Any, ...]] = {}
    for i, e in enumerate(events):
        key = (e.session_id, e.event_id)
        if key not in first:
            first[key] = (
                i,
                e.event_id,
                e.session_id,
                e.object_id,
                e.event_type,
                e.event_time,
                _meta_text(e.meta),
            )
    nested = conn.is_in_transaction()
    async with conn.transaction():
        await conn.execute(_CREATE_STAGE)
        await conn.copy_records_to_table(_STAGE, records=first.values(), columns=_STAGE_COLUMNS)
        try:
            async with conn.transaction():
                row = await conn.fetchrow(_RECORD_NEW, now, app)
        except asyncpg.UniqueViolationError:
            row = await conn.fetchrow(_RECORD_SKIPPING_DUPLICATES, now, app)
        assert row is not None
        if nested:  # the caller's transaction goes on: a next push in it must not see these
            await conn.execute(f"DELETE FROM {_STAGE}")
        if row["unknown"] is not None:
            i = int(row["unknown"])
            raise NotFound.field_error(
                f"events[{i}].session_id",
                f"session {events[i].session_id!r} was never registered",
            )
    return int(row["recorded"])


async def batch_state(conn: Conn, batch_id: str) -> str | None:
    """'collecting' or 'released'; None when the batch does not exist."""
    state = await conn.fetchval("SELECT state FROM session_batches WHERE batch_id = $1", batch_id)
    return None if state is None else str(state)


async def release_named_batch(conn: asyncpg.Connection, batch_id: str) -> None:
    """Close ``batch_id`` if it still collects (a released batch stays as it is)."""
    await conn.execute(
        "UPDATE session_batches SET state = 'released', release_time = now()"
        " WHERE batch_id = $1 AND state = 'collecting'",
        batch_id,
    )


async def count_batch_sessions(conn: Conn, batch_id: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM sessions WHERE batch_id = $1", batch_id))


async def batch_sessions(conn: Conn, batch_id: str) -> list[Session]:
    """Every session of the batch with its events (oldest events first), oldest session first."""
    rows = await conn.fetch(
        f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE batch_id = $1"
        " ORDER BY create_time, session_id",
        batch_id,
    )
    events = await _events_of(conn, [r["session_id"] for r in rows])
    return [_session(row, events.get(row["session_id"], [])) for row in rows]


async def _events_of(conn: Conn, session_ids: list[str]) -> dict[str, list[Event]]:
    """The sessions' events by session id, oldest first."""
    events: dict[str, list[Event]] = {}
    for e in await conn.fetch(
        "SELECT * FROM session_events WHERE session_id = ANY($1::text[])"
        " ORDER BY event_time, event_id",
        session_ids,
    ):
        events.setdefault(e["session_id"], []).append(_event(e))
    return events


async def collection_sessions(
    conn: Conn, collection_id: str, limit: int
) -> list[tuple[Session, npt.NDArray[np.float32] | None]]:
    """The newest ``limit`` sessions recorded on a collection that are not marked irrelevant
    and have an event, with their events and query vectors, oldest first."""
    rows = await conn.fetch(
        f"SELECT {_SESSION_COLUMNS}, query_vector FROM sessions s WHERE collection_id = $1"
        " AND NOT irrelevant AND EXISTS (SELECT 1 FROM session_events e"
        " WHERE e.session_id = s.session_id) ORDER BY create_time DESC, session_id DESC LIMIT $2",
        collection_id,
        limit,
    )
    events = await _events_of(conn, [r["session_id"] for r in rows])
    return [
        (
            _session(row, events.get(row["session_id"], [])),
            None
            if row["query_vector"] is None
            else np.asarray(row["query_vector"].to_numpy(), dtype=np.float32),
        )
        for row in reversed(rows)
    ]


def _event(e: asyncpg.Record) -> Event:
    return Event(
        event_id=e["event_id"],
        session_id=e["session_id"],
        object_id=e["object_id"],
        event_type=e["event_type"],
        event_time=e["event_time"],
        meta=e["meta"],
        object_not_shown=e["object_not_shown"],
    )


async def get_session(
    conn: Conn, session_id: str, field: str = "session_id", app: str | None = None
) -> Session:
    row = await conn.fetchrow(
        f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = $1 AND " + _IN_APP % (2, 2),
        session_id,
        app,
    )
    if row is None:
        raise NotFound.field_error(field, f"session {session_id!r} does not exist")
    events = [
        _event(e)
        for e in await conn.fetch(
            "SELECT * FROM session_events WHERE session_id = $1 ORDER BY event_time, event_id",
            session_id,
        )
    ]
    return _session(row, events)


async def mark_irrelevant(
    conn: asyncpg.Connection, session_id: str, app: str | None = None
) -> Session:
    """Learning ignores the session from now on; a queued improvement of it is skipped."""
    async with conn.transaction():
        updated = await conn.fetchval(
            "UPDATE sessions SET irrelevant = true WHERE session_id = $1 AND "
            + _IN_APP % (2, 2)
            + " RETURNING session_id",
            session_id,
            app,
        )
        if updated is None:
            raise NotFound.field_error("session_id", f"session {session_id!r} does not exist")
        await conn.execute(
            "UPDATE improvement_queue SET state = 'skipped', note = 'marked irrelevant',"
            " process_time = now() WHERE session_id = $1 AND state = 'queued'",
            session_id,
        )
    return await get_session(conn, session_id, app=app)


async def list_sessions(
    conn: Conn,
    tokens: PageTokens,
    *,
    page_size: int,
    page_token: str,
    user_id: str = "",
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    batch_id: str = "",
    app: str | None = None,
) -> tuple[list[Session], str]:
    """Newest first, keyset-paged on (create_time, session_id); events are not included."""
    scope: dict[str, Any] = {
        "user": user_id,
        "start": start_time.isoformat() if start_time else None,
        "end": end_time.isoformat() if end_time else None,
        "batch": batch_id,
    }
    after_time, after_id = time_cursor(tokens, page_token, scope)
    rows = await conn.fetch(
        f"SELECT {_SESSION_COLUMNS} FROM sessions"
        " WHERE ($1 = '' OR user_id = $1) AND ($2::timestamptz IS NULL OR create_time >= $2)"
        " AND ($3::timestamptz IS NULL OR create_time < $3) AND ($4 = '' OR batch_id = $4)"
        " AND ($5::timestamptz IS NULL OR (create_time, session_id) < ($5, $6::text))"
        " AND " + _IN_APP % (8, 8) + " ORDER BY create_time DESC, session_id DESC LIMIT $7",
        user_id,
        start_time,
        end_time,
        batch_id,
        after_time,
        after_id,
        page_size + 1,
        app,
    )
    sessions = [_session(r) for r in rows]
    return time_page(sessions, page_size, lambda s: (s.create_time, s.session_id), scope, tokens)


async def queue_for_improvement(conn: Conn, session_ids: list[str], app: str | None = None) -> int:
    """Queue the known, relevant sessions of ``app`` among ``session_ids``; returns how many
    are queued.

    A session already done is queued again (its events may have grown since)."""
    rows = await conn.fetch(
        "INSERT INTO improvement_queue (session_id)"
        " SELECT session_id FROM sessions WHERE session_id = ANY($1::text[]) AND NOT irrelevant"
        " AND " + _IN_APP % (2, 2) + " ON CONFLICT (session_id) DO UPDATE SET state = 'queued',"
        " queue_time = now(), note = '' RETURNING session_id",
        session_ids,
        app,
    )
    return len(rows)
