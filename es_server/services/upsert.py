"""UpsertService: item writes and imports become tasks; reads answer at once."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import upsert_pb2, upsert_pb2_grpc
from es_core.items_use_case import (
    DeleteItemsInput,
    GetItemsInput,
    ImportItemsInput,
    UpsertItemsInput,
    delete_items,
    get_items,
    import_items,
    upsert_items,
)
from es_server.convert import item_to_proto, items_from_proto, task_to_proto
from es_server.source_convert import source_from_proto
from es_server.state import ServerState


class UpsertService(upsert_pb2_grpc.UpsertServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def UpsertItems(
        self, request: upsert_pb2.UpsertItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.UpsertItemsResponse:
        items = items_from_proto(request.items)
        task = await upsert_items(
            self.state.context,
            UpsertItemsInput(request.collection_id, items, request.idempotency_key),
        )
        return upsert_pb2.UpsertItemsResponse(task=task_to_proto(task))

    async def DeleteItems(
        self, request: upsert_pb2.DeleteItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.DeleteItemsResponse:
        task = await delete_items(
            self.state.context,
            DeleteItemsInput(
                request.collection_id, list(request.object_ids), request.idempotency_key
            ),
        )
        return upsert_pb2.DeleteItemsResponse(task=task_to_proto(task))

    async def GetItems(
        self, request: upsert_pb2.GetItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.GetItemsResponse:
        found = await get_items(
            self.state.context,
            GetItemsInput(request.collection_id, list(request.object_ids), request.include_vectors),
        )
        return upsert_pb2.GetItemsResponse(
            items=[item_to_proto(item) for item in found.items],
            missing_object_ids=found.missing_object_ids,
        )

    async def ImportItems(
        self, request: upsert_pb2.ImportItemsRequest, context: grpc.aio.ServicerContext
    ) -> upsert_pb2.ImportItemsResponse:
        task = await import_items(
            self.state.context,
            ImportItemsInput(
                request.collection_id,
                [source_from_proto(s) for s in request.sources],
                request.idempotency_key,
                request.page_size,
                request.max_failed_items,
            ),
        )
        return upsert_pb2.ImportItemsResponse(task=task_to_proto(task))
