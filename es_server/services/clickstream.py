"""ClickstreamService: sessions and events in, improvement queued."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import grpc
from google.protobuf import json_format

from embedding_studio.v1 import clickstream_pb2, clickstream_pb2_grpc
from es_core.clickstream import store
from es_core.clickstream.model import (
    Event,
    Session,
    ShownResult,
    check_events,
    check_id,
    check_session,
    check_time,
)
from es_core.errors import InvalidArgument
from es_core.items import check_object_ids
from es_core.pagination import check_page_size
from es_core.search.query import check_user_id
from es_core.storage.catalog import resolve_collection
from es_core.tasks.store import create_task
from es_server.convert import (
    dict_to_struct,
    optional_filter,
    optional_sort,
    struct_to_dict,
    task_to_proto,
    timestamp,
)
from es_server.state import ServerState


def _time(message: Any, name: str) -> datetime | None:
    return getattr(message, name).ToDatetime(tzinfo=UTC) if message.HasField(name) else None


def session_from_proto(message: clickstream_pb2.Session, where: str = "session") -> Session:
    return Session(
        session_id=message.session_id,
        results=[ShownResult(r.object_id, r.rank) for r in message.results],
        user_id=message.user_id,
        query_text=message.query_text,
        filter=json_format.MessageToDict(message.filter) if message.HasField("filter") else None,
        sort=json_format.MessageToDict(message.sort) if message.HasField("sort") else None,
        meta=struct_to_dict(message.meta, f"{where}.meta"),
        create_time=_time(message, "create_time"),
        collection_id=message.collection_id,
    )


def session_to_proto(session: Session) -> clickstream_pb2.Session:
    message = clickstream_pb2.Session(
        session_id=session.session_id,
        user_id=session.user_id,
        query_text=session.query_text,
        results=[
            clickstream_pb2.ShownResult(object_id=r.object_id, rank=r.rank) for r in session.results
        ],
        meta=dict_to_struct(session.meta),
        create_time=timestamp(session.create_time),
        irrelevant=session.irrelevant,
        batch_id=session.batch_id,
        collection_id=session.collection_id,
        events=[event_to_proto(e) for e in session.events],
    )
    if session.filter is not None:
        json_format.ParseDict(session.filter, message.filter)
    if session.sort is not None:
        json_format.ParseDict(session.sort, message.sort)
    return message


def event_from_proto(message: clickstream_pb2.SessionEvent, where: str) -> Event:
    return Event(
        event_id=message.event_id,
        session_id=message.session_id,
        object_id=message.object_id,
        event_type=message.event_type,
        event_time=_time(message, "event_time"),
        meta=struct_to_dict(message.meta, f"{where}.meta"),
    )


def event_to_proto(event: Event) -> clickstream_pb2.SessionEvent:
    return clickstream_pb2.SessionEvent(
        event_id=event.event_id,
        session_id=event.session_id,
        object_id=event.object_id,
        event_type=event.event_type,
        event_time=timestamp(event.event_time),
        meta=dict_to_struct(event.meta),
        object_not_shown=event.object_not_shown,
    )


class ClickstreamService(clickstream_pb2_grpc.ClickstreamServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def RegisterSession(
        self, request: clickstream_pb2.RegisterSessionRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.RegisterSessionResponse:
        if not request.HasField("session"):
            raise InvalidArgument.field_error("session", "must be set")
        session = session_from_proto(request.session)
        check_session(session, self.state.settings)
        optional_filter(request.session, "filter", "session.filter")
        optional_sort(request.session, "sort", "session.sort")
        create_time = check_time(session.create_time, "session.create_time", self.state.settings)
        async with self.state.pool.acquire() as conn:
            collection = await resolve_collection(
                conn, session.collection_id, field="session.collection_id"
            )
            session = dataclasses.replace(session, collection_id=collection.collection_id)
            stored, _ = await store.register_session(conn, session, create_time, None)
        return clickstream_pb2.RegisterSessionResponse(session=session_to_proto(stored))

    async def _push(self, events: list[clickstream_pb2.SessionEvent]) -> tuple[int, int]:
        converted = [event_from_proto(e, f"events[{i}]") for i, e in enumerate(events)]
        check_events(converted, self.state.settings)
        async with self.state.pool.acquire() as conn:
            accepted = await store.push_events(conn, converted, datetime.now(UTC))
        return accepted, len(converted) - accepted

    async def PushEvents(
        self, request: clickstream_pb2.PushEventsRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.PushEventsResponse:
        accepted, duplicates = await self._push(list(request.events))
        return clickstream_pb2.PushEventsResponse(
            accepted_count=accepted, duplicate_count=duplicates
        )

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[clickstream_pb2.StreamEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.StreamEventsResponse:
        """Each message is recorded as it arrives; a bad one ends the stream with its error
        (what came before stays recorded; resending it is safe, events deduplicate)."""
        accepted = duplicates = 0
        async for message in request_iterator:
            a, d = await self._push(list(message.events))
            accepted, duplicates = accepted + a, duplicates + d
        return clickstream_pb2.StreamEventsResponse(
            accepted_count=accepted, duplicate_count=duplicates
        )

    async def MarkSessionIrrelevant(
        self,
        request: clickstream_pb2.MarkSessionIrrelevantRequest,
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.MarkSessionIrrelevantResponse:
        check_id(request.session_id, "session_id")
        async with self.state.pool.acquire() as conn:
            session = await store.mark_irrelevant(conn, request.session_id)
        return clickstream_pb2.MarkSessionIrrelevantResponse(session=session_to_proto(session))

    async def GetSession(
        self, request: clickstream_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.GetSessionResponse:
        check_id(request.session_id, "session_id")
        session = await store.get_session(self.state.pool, request.session_id)
        return clickstream_pb2.GetSessionResponse(session=session_to_proto(session))

    async def ListSessions(
        self, request: clickstream_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.ListSessionsResponse:
        page_size = check_page_size(request.page_size, default=50, maximum=1000)
        check_user_id(request.user_id)
        if request.batch_id:
            check_id(request.batch_id, "batch_id")
        start, end = _time(request, "start_time"), _time(request, "end_time")
        if start is not None and end is not None and end <= start:
            raise InvalidArgument.field_error("end_time", "must be after start_time")
        sessions, token = await store.list_sessions(
            self.state.pool,
            page_size=page_size,
            page_token=request.page_token,
            user_id=request.user_id,
            start_time=start,
            end_time=end,
            batch_id=request.batch_id,
        )
        return clickstream_pb2.ListSessionsResponse(
            sessions=[session_to_proto(s) for s in sessions], next_page_token=token
        )

    async def UseSessionsForImprovement(
        self,
        request: clickstream_pb2.UseSessionsForImprovementRequest,
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.UseSessionsForImprovementResponse:
        ids = check_object_ids(list(request.session_ids), "session_ids", self.state.settings)
        async with self.state.pool.acquire() as conn, conn.transaction():
            queued = await store.queue_for_improvement(conn, ids)
            task, created = await create_task(conn, "improvement", {"requested": len(ids)})
        if created:
            await self.state.dispatch(task)
        return clickstream_pb2.UseSessionsForImprovementResponse(
            queued_count=queued, task=task_to_proto(task)
        )
