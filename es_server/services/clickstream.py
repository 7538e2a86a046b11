"""ClickstreamService: sessions and events in, improvement queued."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from embedding_studio.v1 import clickstream_pb2, clickstream_pb2_grpc
from es_core.clickstream import use_case
from es_core.clickstream.model import Event
from es_core.errors import InvalidArgument
from es_core.pagination import PageRequest
from es_server.auth import caller_app
from es_server.clickstream_convert import events_from_proto, session_from_proto, session_to_proto
from es_server.convert import optional_time, task_to_proto
from es_server.state import ServerState


class ClickstreamService(clickstream_pb2_grpc.ClickstreamServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def RegisterSession(
        self, request: clickstream_pb2.RegisterSessionRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.RegisterSessionResponse:
        if not request.HasField("session"):
            raise InvalidArgument.field_error("session", "must be set")
        stored = await use_case.register_session(
            self.state.context, session_from_proto(request.session), caller_app()
        )
        return clickstream_pb2.RegisterSessionResponse(session=session_to_proto(stored))

    async def PushEvents(
        self, request: clickstream_pb2.PushEventsRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.PushEventsResponse:
        pushed = await use_case.push_events(
            self.state.context, events_from_proto(request.events), caller_app()
        )
        return clickstream_pb2.PushEventsResponse(
            accepted_count=pushed.accepted_count, duplicate_count=pushed.duplicate_count
        )

    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[clickstream_pb2.StreamEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.StreamEventsResponse:
        async def batches() -> AsyncIterator[list[Event]]:
            async for message in request_iterator:
                yield events_from_proto(message.events)

        pushed = await use_case.push_event_stream(self.state.context, batches(), caller_app())
        return clickstream_pb2.StreamEventsResponse(
            accepted_count=pushed.accepted_count, duplicate_count=pushed.duplicate_count
        )

    async def MarkSessionIrrelevant(
        self,
        request: clickstream_pb2.MarkSessionIrrelevantRequest,
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.MarkSessionIrrelevantResponse:
        session = await use_case.mark_session_irrelevant(
            self.state.context, request.session_id, caller_app()
        )
        return clickstream_pb2.MarkSessionIrrelevantResponse(session=session_to_proto(session))

    async def GetSession(
        self, request: clickstream_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.GetSessionResponse:
        session = await use_case.get_session(self.state.context, request.session_id, caller_app())
        return clickstream_pb2.GetSessionResponse(session=session_to_proto(session))

    async def ListSessions(
        self, request: clickstream_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> clickstream_pb2.ListSessionsResponse:
        page = await use_case.list_sessions(
            self.state.context,
            use_case.ListSessionsInput(
                PageRequest(request.page_size, request.page_token),
                user_id=request.user_id,
                start_time=optional_time(request, "start_time"),
                end_time=optional_time(request, "end_time"),
                batch_id=request.batch_id,
            ),
            caller_app(),
        )
        return clickstream_pb2.ListSessionsResponse(
            sessions=[session_to_proto(s) for s in page.items],
            next_page_token=page.next_page_token,
        )

    async def UseSessionsForImprovement(
        self,
        request: clickstream_pb2.UseSessionsForImprovementRequest,
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.UseSessionsForImprovementResponse:
        queued = await use_case.use_sessions_for_improvement(
            self.state.context, list(request.session_ids), caller_app()
        )
        return clickstream_pb2.UseSessionsForImprovementResponse(
            queued_count=queued.queued_count, task=task_to_proto(queued.task)
        )
