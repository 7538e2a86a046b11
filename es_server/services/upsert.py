"""UpsertService: item writes become tasks; reads answer at once."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import upsert_pb2, upsert_pb2_grpc
from es_core.collections.write_targets import write_targets
from es_core.items import check_items, check_object_ids, check_vectors_fit
from es_core.storage.catalog import resolve_collection
from es_core.storage.items import get_items
from es_core.tasks.model import Task, TaskKind
from es_core.tasks.store import create_task
from es_server.convert import item_to_proto, items_from_proto, task_to_proto
from es_server.state import ServerState


class UpsertService(upsert_pb2_grpc.UpsertServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def _start(
        self, kind: TaskKind, collection_id: str, params: dict[str, object], idempotency_key: str
    ) -> Task:
        """Resolve the collection and create the task row in one transaction, then send it."""
        async with self.state.pool.acquire() as conn, conn.transaction():
            collection = await resolve_collection(conn, collection_id)
            task, created = await create_task(
                conn,
                kind,
                {"collection_id": collection.collection_id, **params},
                idempotency_key=idempotency_key,
            )
        if created:
            await self.state.dispatch(task)
        return task

    async def UpsertItems(
        self, request: upsert_pb2.UpsertItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.UpsertItemsResponse:
        items = items_from_proto(request.items)
        collection = await self.state.collection(request.collection_id)
        check_items(items, collection, self.state.settings)
        async with self.state.pool.acquire() as conn:
            for target in await write_targets(conn, collection):
                check_vectors_fit(items, target)
        task = await self._start(
            "upsertion",
            collection.collection_id,
            {"items": [item.to_json() for item in items]},
            request.idempotency_key,
        )
        return upsert_pb2.UpsertItemsResponse(task=task_to_proto(task))

    async def DeleteItems(
        self, request: upsert_pb2.DeleteItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.DeleteItemsResponse:
        object_ids = check_object_ids(list(request.object_ids), "object_ids", self.state.settings)
        task = await self._start(
            "deletion", request.collection_id, {"object_ids": object_ids}, request.idempotency_key
        )
        return upsert_pb2.DeleteItemsResponse(task=task_to_proto(task))

    async def GetItems(
        self, request: upsert_pb2.GetItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.GetItemsResponse:
        object_ids = check_object_ids(list(request.object_ids), "object_ids", self.state.settings)
        collection = await self.state.collection(request.collection_id)
        items = await get_items(
            self.state.pool, collection, object_ids, include_vectors=request.include_vectors
        )
        found = {item.object_id for item in items}
        return upsert_pb2.GetItemsResponse(
            items=[item_to_proto(item) for item in items],
            missing_object_ids=[i for i in object_ids if i not in found],
        )
