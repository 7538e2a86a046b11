"""RankingService: proto <-> es_core.ranking.manage."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import ranking_pb2, ranking_pb2_grpc
from es_core.pagination import PageRequest
from es_core.ranking import manage
from es_server.convert import task_to_proto
from es_server.ranking_convert import (
    settings_to_proto,
    signal_fields_from_proto,
    spec_from_proto,
    version_to_proto,
)
from es_server.state import ServerState


class RankingService(ranking_pb2_grpc.RankingServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def GetRankingSettings(
        self, request: ranking_pb2.GetRankingSettingsRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.GetRankingSettingsResponse:
        found = await manage.get_ranking_settings(self.state.context, request.collection_id)
        return ranking_pb2.GetRankingSettingsResponse(settings=settings_to_proto(found))

    async def SetRankingSpec(
        self, request: ranking_pb2.SetRankingSpecRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.SetRankingSpecResponse:
        spec = spec_from_proto(request.spec, "spec")
        changed = await manage.set_ranking_spec(self.state.context, request.collection_id, spec)
        return ranking_pb2.SetRankingSpecResponse(settings=settings_to_proto(changed))

    async def DeclareSignalFields(
        self, request: ranking_pb2.DeclareSignalFieldsRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.DeclareSignalFieldsResponse:
        fields = signal_fields_from_proto(list(request.fields), "fields")
        changed = await manage.declare_signal_fields(
            self.state.context, request.collection_id, fields
        )
        return ranking_pb2.DeclareSignalFieldsResponse(settings=settings_to_proto(changed))

    async def ListRankingSpecs(
        self, request: ranking_pb2.ListRankingSpecsRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.ListRankingSpecsResponse:
        page = await manage.list_ranking_specs(
            self.state.context,
            request.collection_id,
            PageRequest(request.page_size, request.page_token),
        )
        return ranking_pb2.ListRankingSpecsResponse(
            versions=[version_to_proto(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def RollbackRankingSpec(
        self, request: ranking_pb2.RollbackRankingSpecRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.RollbackRankingSpecResponse:
        changed = await manage.rollback_ranking_spec(self.state.context, request.collection_id)
        return ranking_pb2.RollbackRankingSpecResponse(settings=settings_to_proto(changed))

    async def StartRankingFit(
        self, request: ranking_pb2.StartRankingFitRequest, context: grpc.aio.ServicerContext
    ) -> ranking_pb2.StartRankingFitResponse:
        task = await manage.start_ranking_fit(
            self.state.context, request.collection_id, request.idempotency_key
        )
        return ranking_pb2.StartRankingFitResponse(task=task_to_proto(task))
