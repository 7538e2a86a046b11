"""The clickstream use cases behind ClickstreamService: sessions and events in, sessions read
and listed, sessions queued for improvement.

Each takes the caller's ``app`` (from its API key): None reaches every app's sessions; a name
registers sessions in that app and sees only them: another app's session is NOT_FOUND, as if it
did not exist, and listings leave it out."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

from es_core.clickstream import store
from es_core.clickstream.model import (
    Event,
    Session,
    check_events,
    check_id,
    check_session,
    check_time,
)
from es_core.context import Context
from es_core.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted
from es_core.item_input import check_object_ids
from es_core.pagination import Page, PageRequest
from es_core.search.query import check_user_id
from es_core.storage.catalog import resolve_collection
from es_core.tasks.model import Task
from es_core.tasks.store import create_task


@dataclass(frozen=True)
class PushedEvents:
    accepted_count: int
    duplicate_count: int  # already recorded (an event id seen before)


@dataclass(frozen=True)
class ListSessionsInput:
    page: PageRequest
    user_id: str = ""  # "" = every user
    start_time: datetime | None = None
    end_time: datetime | None = None
    batch_id: str = ""  # "" = every batch


@dataclass(frozen=True)
class QueuedForImprovement:
    queued_count: int
    task: Task  # the improvement task that will use them


async def register_session(ctx: Context, session: Session, app: str | None = None) -> Session:
    """The session as stored, in the named collection (else the blue one); registering the
    same session again returns the first."""
    check_session(session, ctx.settings)
    create_time = check_time(session.create_time, "session.create_time", ctx.settings)
    async with ctx.pool.acquire() as conn:
        collection = await resolve_collection(
            conn, session.collection_id, field="session.collection_id"
        )
        session = dataclasses.replace(
            session, collection_id=collection.collection_id, app=app or ""
        )
        stored, _ = await store.register_session(conn, session, create_time, None)
    return stored


async def push_events(ctx: Context, events: list[Event], app: str | None = None) -> PushedEvents:
    check_events(events, ctx.settings)
    async with ctx.pool.acquire() as conn:
        accepted = await store.push_events(conn, events, datetime.now(UTC), app)
    return PushedEvents(accepted, len(events) - accepted)


async def push_event_stream(
    ctx: Context, batches: AsyncIterable[list[Event]], app: str | None = None
) -> PushedEvents:
    """Each batch is recorded as it arrives; a bad one ends the stream with its error (what
    came before stays recorded; resending it is safe, events deduplicate). A stream carries
    at most ES_STREAM_EVENTS_MAX_MESSAGES batches (one more: ResourceExhausted) and stays open
    at most ES_STREAM_EVENTS_MAX_SECONDS (then DeadlineExceeded; a batch being recorded at that
    moment is rolled back whole)."""
    settings = ctx.settings
    accepted = duplicates = messages = 0
    try:
        async with asyncio.timeout(settings.stream_events_max_seconds) as timer:
            async for events in _read_ahead(batches):
                messages += 1
                if messages > settings.stream_events_max_messages:
                    raise ResourceExhausted(
                        f"a stream may carry at most {settings.stream_events_max_messages} "
                        "messages (ES_STREAM_EVENTS_MAX_MESSAGES); those were recorded "
                        f"({accepted} events accepted, {duplicates} duplicates): send the "
                        "rest on a new stream"
                    )
                pushed = await push_events(ctx, events, app)
                accepted += pushed.accepted_count
                duplicates += pushed.duplicate_count
    except TimeoutError:
        if not timer.expired():
            raise
        raise DeadlineExceeded(
            f"a stream may stay open at most {settings.stream_events_max_seconds:g} s "
            f"(ES_STREAM_EVENTS_MAX_SECONDS); what came before was recorded ({accepted} events "
            f"accepted, {duplicates} duplicates): send the rest on a new stream"
        ) from None
    return PushedEvents(accepted, duplicates)


async def _read_ahead(batches: AsyncIterable[list[Event]]) -> AsyncIterator[list[Event]]:
    """The batches in order, the next one read (and converted) while the caller records this
    one, so the stream's parsing overlaps the database's work. A batch that fails to read is
    raised in its turn: every batch before it is recorded first."""
    ahead: asyncio.Queue[list[Event] | Exception | None] = asyncio.Queue(maxsize=1)

    async def read() -> None:
        try:
            async for events in batches:
                await ahead.put(events)
        except Exception as error:  # noqa: BLE001 - handed on, raised in order
            await ahead.put(error)
        else:
            await ahead.put(None)

    reader = asyncio.create_task(read())
    try:
        while (item := await ahead.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader


async def mark_session_irrelevant(ctx: Context, session_id: str, app: str | None = None) -> Session:
    check_id(session_id, "session_id", ctx.settings)
    async with ctx.pool.acquire() as conn:
        return await store.mark_irrelevant(conn, session_id, app)


async def get_session(ctx: Context, session_id: str, app: str | None = None) -> Session:
    check_id(session_id, "session_id", ctx.settings)
    return await store.get_session(ctx.pool, session_id, app=app)


async def list_sessions(
    ctx: Context, request: ListSessionsInput, app: str | None = None
) -> Page[Session]:
    """Sessions newest first, narrowed by user, time range and batch."""
    page_size = request.page.size(ctx.settings)
    check_user_id(request.user_id, ctx.settings)
    if request.batch_id:
        check_id(request.batch_id, "batch_id", ctx.settings)
    start, end = request.start_time, request.end_time
    if start is not None and end is not None and end <= start:
        raise InvalidArgument.field_error("end_time", "must be after start_time")
    sessions, token = await store.list_sessions(
        ctx.pool,
        ctx.tokens,
        page_size=page_size,
        page_token=request.page.page_token,
        user_id=request.user_id,
        start_time=start,
        end_time=end,
        batch_id=request.batch_id,
        app=app,
    )
    return Page(sessions, token)


async def use_sessions_for_improvement(
    ctx: Context, session_ids: list[str], app: str | None = None
) -> QueuedForImprovement:
    """The sessions (of ``app``; others are not counted) are queued and an improvement task
    created in one transaction; the task is sent once it commits."""
    ids = check_object_ids(session_ids, "session_ids", ctx.settings)
    async with ctx.pool.acquire() as conn, conn.transaction():
        queued = await store.queue_for_improvement(conn, ids, app)
        task, created = await create_task(conn, "improvement", {"requested": len(ids)})
    return QueuedForImprovement(queued, await ctx.send_if_created(task, created))
