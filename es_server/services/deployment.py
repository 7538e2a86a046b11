"""DeploymentService: model versions in the inference server, and blue/green collections.

The deploy RPCs, StartReindex and SetFilterableFields return a task at once (AIP-151): the
model serves, the green collection is filled, or the declared fields' indexes are built, once it
is TASK_STATUS_DONE."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import deployment_pb2, deployment_pb2_grpc
from es_core.collections import use_case as collections
from es_core.collections.filterable import start_declaration
from es_core.collections.listing import CollectionInfo
from es_core.interleaving.pair import interleaving_verdict
from es_core.pagination import PageRequest
from es_core.reindex.start import StartReindexInput, start_reindex
from es_core.serving.deploy import deploy_model, undeploy_model
from es_core.serving.model_listing import list_models
from es_server.convert import (
    collection_to_proto,
    filterable_fields_from_proto,
    model_to_proto,
    task_to_proto,
)
from es_server.state import ServerState


def _collection(info: CollectionInfo) -> deployment_pb2.Collection:
    return collection_to_proto(info.collection, info.item_count)


class DeploymentService(deployment_pb2_grpc.DeploymentServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def DeployModel(
        self, request: deployment_pb2.DeployModelRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.DeployModelResponse:
        task = await deploy_model(self.state.context, request.model_id)
        return deployment_pb2.DeployModelResponse(task=task_to_proto(task))

    async def UndeployModel(
        self, request: deployment_pb2.UndeployModelRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.UndeployModelResponse:
        task = await undeploy_model(self.state.context, request.model_id)
        return deployment_pb2.UndeployModelResponse(task=task_to_proto(task))

    async def ListModels(
        self, request: deployment_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.ListModelsResponse:
        page = await list_models(
            self.state.context, PageRequest(request.page_size, request.page_token)
        )
        return deployment_pb2.ListModelsResponse(
            models=[model_to_proto(m) for m in page.items], next_page_token=page.next_page_token
        )

    async def ListCollections(
        self, request: deployment_pb2.ListCollectionsRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.ListCollectionsResponse:
        page = await collections.list_collections(
            self.state.context, PageRequest(request.page_size, request.page_token)
        )
        return deployment_pb2.ListCollectionsResponse(
            collections=[_collection(i) for i in page.items], next_page_token=page.next_page_token
        )

    async def GetBlueCollection(
        self, request: deployment_pb2.GetBlueCollectionRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.GetBlueCollectionResponse:
        info = await collections.get_blue(self.state.context)
        return deployment_pb2.GetBlueCollectionResponse(collection=_collection(info))

    async def SwitchBlueCollection(
        self,
        request: deployment_pb2.SwitchBlueCollectionRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.SwitchBlueCollectionResponse:
        change = await collections.switch_blue(self.state.context, request.collection_id)
        return deployment_pb2.SwitchBlueCollectionResponse(
            blue=_collection(change.blue), previous=_collection(change.previous)
        )

    async def RollbackBlueCollection(
        self,
        request: deployment_pb2.RollbackBlueCollectionRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.RollbackBlueCollectionResponse:
        change = await collections.rollback_blue(self.state.context)
        return deployment_pb2.RollbackBlueCollectionResponse(
            blue=_collection(change.blue), previous=_collection(change.previous)
        )

    async def StartReindex(
        self, request: deployment_pb2.StartReindexRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.StartReindexResponse:
        started = await start_reindex(
            self.state.context,
            StartReindexInput(
                request.source_collection_id, request.destination_model_id, request.idempotency_key
            ),
        )
        return deployment_pb2.StartReindexResponse(
            task=task_to_proto(started.task),
            destination_collection_id=started.destination_collection_id,
        )

    async def DeleteCollection(
        self, request: deployment_pb2.DeleteCollectionRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.DeleteCollectionResponse:
        await collections.delete_collection(self.state.context, request.collection_id)
        return deployment_pb2.DeleteCollectionResponse()

    async def SetFilterableFields(
        self,
        request: deployment_pb2.SetFilterableFieldsRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.SetFilterableFieldsResponse:
        started = await start_declaration(
            self.state.context,
            request.collection_id,
            filterable_fields_from_proto(list(request.fields)),
            request.idempotency_key,
        )
        return deployment_pb2.SetFilterableFieldsResponse(
            collection=_collection(started.collection), task=task_to_proto(started.task)
        )

    async def GetInterleavingVerdict(
        self,
        request: deployment_pb2.GetInterleavingVerdictRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.GetInterleavingVerdictResponse:
        found = await interleaving_verdict(
            self.state.context, request.green_collection_id, request.confidence
        )
        verdict = found.verdict
        return deployment_pb2.GetInterleavingVerdictResponse(
            green_collection_id=found.pair.green.collection_id,
            blue_collection_id=found.pair.blue.collection_id,
            decision=f"INTERLEAVING_DECISION_{verdict.decision.upper()}",
            sessions=verdict.sessions,
            green_wins=verdict.green_wins,
            blue_wins=verdict.blue_wins,
            ties=verdict.ties,
            p_value=verdict.p_value,
            green_win_rate=verdict.green_win_rate,
            green_win_rate_lower=verdict.lower,
            green_win_rate_upper=verdict.upper,
            confidence=verdict.confidence,
        )
