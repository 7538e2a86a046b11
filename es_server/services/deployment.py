"""DeploymentService: model versions in the inference server, and blue/green collections.

Collections, the blue switch and reindexing live here; deploying and undeploying model
versions is ``es_server.services.model_deployment``'s job, which these RPCs delegate to.
"""

from __future__ import annotations

import importlib
from typing import Any

import grpc

from embedding_studio.v1 import deployment_pb2, deployment_pb2_grpc
from es_core.collections.blue import BlueChange, rollback_blue, switch_blue
from es_core.collections.lifecycle import delete_collection
from es_core.collections.listing import describe, list_collections
from es_core.interleaving.pair import check_confidence, interleaving_pair, pair_verdict
from es_core.pagination import check_page_size
from es_core.reindex.start import start_reindex
from es_core.storage.catalog import get_blue_collection
from es_server.convert import collection_to_proto, task_to_proto
from es_server.interceptors import Unimplemented
from es_server.state import ServerState


class DeploymentService(deployment_pb2_grpc.DeploymentServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def _model_deployment(self, rpc: str, request: Any) -> Any:
        """Call ``rpc``'s implementation in the model-deployment module, loaded at first use."""
        try:
            module: Any = importlib.import_module("es_server.services.model_deployment")
        except ModuleNotFoundError as exc:
            if exc.name != "es_server.services.model_deployment":
                raise
            raise Unimplemented(
                f"DeploymentService.{rpc} is not built yet: it needs Triton serving"
            ) from None
        name = {"DeployModel": "deploy_model", "UndeployModel": "undeploy_model"}.get(
            rpc, "list_models"
        )
        return await getattr(module, name)(self.state, request)

    async def DeployModel(
        self, request: deployment_pb2.DeployModelRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.DeployModelResponse:
        response: deployment_pb2.DeployModelResponse = await self._model_deployment(
            "DeployModel", request
        )
        return response

    async def UndeployModel(
        self, request: deployment_pb2.UndeployModelRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.UndeployModelResponse:
        response: deployment_pb2.UndeployModelResponse = await self._model_deployment(
            "UndeployModel", request
        )
        return response

    async def ListModels(
        self, request: deployment_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.ListModelsResponse:
        response: deployment_pb2.ListModelsResponse = await self._model_deployment(
            "ListModels", request
        )
        return response

    async def ListCollections(
        self, request: deployment_pb2.ListCollectionsRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.ListCollectionsResponse:
        page_size = check_page_size(request.page_size, default=50, maximum=1000)
        async with self.state.pool.acquire() as conn:
            infos, next_token = await list_collections(
                conn, page_size=page_size, page_token=request.page_token
            )
        return deployment_pb2.ListCollectionsResponse(
            collections=[collection_to_proto(i.collection, i.item_count) for i in infos],
            next_page_token=next_token,
        )

    async def GetBlueCollection(
        self, request: deployment_pb2.GetBlueCollectionRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.GetBlueCollectionResponse:
        async with self.state.pool.acquire() as conn:
            info = await describe(conn, await get_blue_collection(conn))
        return deployment_pb2.GetBlueCollectionResponse(
            collection=collection_to_proto(info.collection, info.item_count)
        )

    async def _change(
        self, change: BlueChange
    ) -> tuple[deployment_pb2.Collection, deployment_pb2.Collection]:
        async with self.state.pool.acquire() as conn:
            blue = await describe(conn, change.blue)
            previous = await describe(conn, change.previous)
        return (
            collection_to_proto(blue.collection, blue.item_count),
            collection_to_proto(previous.collection, previous.item_count),
        )

    async def SwitchBlueCollection(
        self,
        request: deployment_pb2.SwitchBlueCollectionRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.SwitchBlueCollectionResponse:
        async with self.state.pool.acquire() as conn:
            change = await switch_blue(conn, request.collection_id)
        blue, previous = await self._change(change)
        return deployment_pb2.SwitchBlueCollectionResponse(blue=blue, previous=previous)

    async def RollbackBlueCollection(
        self,
        request: deployment_pb2.RollbackBlueCollectionRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.RollbackBlueCollectionResponse:
        async with self.state.pool.acquire() as conn:
            change = await rollback_blue(conn)
        blue, previous = await self._change(change)
        return deployment_pb2.RollbackBlueCollectionResponse(blue=blue, previous=previous)

    async def StartReindex(
        self, request: deployment_pb2.StartReindexRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.StartReindexResponse:
        """The destination and the task are created in one transaction; the task is sent only
        after it commits (a retry with the same key sends nothing)."""
        async with self.state.pool.acquire() as conn:
            started = await start_reindex(
                conn,
                self.state.settings,
                self.state.plugin.get_search_index_info(),
                source_collection_id=request.source_collection_id,
                destination_model_id=request.destination_model_id,
                idempotency_key=request.idempotency_key,
            )
        if started.created:
            await self.state.dispatch(started.task)
        return deployment_pb2.StartReindexResponse(
            task=task_to_proto(started.task),
            destination_collection_id=started.destination_collection_id,
        )

    async def DeleteCollection(
        self, request: deployment_pb2.DeleteCollectionRequest, context: grpc.aio.ServicerContext
    ) -> deployment_pb2.DeleteCollectionResponse:
        async with self.state.pool.acquire() as conn:
            to_send = await delete_collection(conn, self.state.settings, request.collection_id)
        for task in to_send:
            await self.state.dispatch(task)
        return deployment_pb2.DeleteCollectionResponse()

    async def GetInterleavingVerdict(
        self,
        request: deployment_pb2.GetInterleavingVerdictRequest,
        context: grpc.aio.ServicerContext,
    ) -> deployment_pb2.GetInterleavingVerdictResponse:
        confidence = check_confidence(request.confidence, self.state.settings)
        async with self.state.pool.acquire() as conn:
            pair = await interleaving_pair(conn, request.green_collection_id)
            verdict = await pair_verdict(conn, pair, self.state.settings, confidence)
        return deployment_pb2.GetInterleavingVerdictResponse(
            green_collection_id=pair.green.collection_id,
            blue_collection_id=pair.blue.collection_id,
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
