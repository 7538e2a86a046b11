"""CategoryService: category writes become tasks; listing answers at once."""

from __future__ import annotations

import grpc

from embedding_studio.v1 import categories_pb2, categories_pb2_grpc
from es_core.categories.model import Category
from es_core.categories.use_case import (
    DeleteCategoriesInput,
    UpsertCategoriesInput,
    delete_categories,
    list_categories,
    upsert_categories,
)
from es_core.pagination import PageRequest
from es_server.convert import dict_to_struct, struct_to_dict, task_to_proto
from es_server.state import ServerState


def category_from_proto(message: categories_pb2.Category, where: str) -> Category:
    return Category(
        category_id=message.category_id,
        name=message.name,
        text=message.text,
        payload=struct_to_dict(message.payload, f"{where}.payload"),
    )


def category_to_proto(category: Category) -> categories_pb2.Category:
    return categories_pb2.Category(
        category_id=category.category_id,
        name=category.name,
        text=category.text,
        payload=dict_to_struct(category.payload),
    )


class CategoryService(categories_pb2_grpc.CategoryServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def UpsertCategories(
        self, request: categories_pb2.UpsertCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> categories_pb2.UpsertCategoriesResponse:
        categories = [
            category_from_proto(c, f"categories[{i}]") for i, c in enumerate(request.categories)
        ]
        task = await upsert_categories(
            self.state.context,
            self.state.categories,
            UpsertCategoriesInput(categories, request.collection_id, request.idempotency_key),
        )
        return categories_pb2.UpsertCategoriesResponse(task=task_to_proto(task))

    async def DeleteCategories(
        self, request: categories_pb2.DeleteCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> categories_pb2.DeleteCategoriesResponse:
        task = await delete_categories(
            self.state.context,
            DeleteCategoriesInput(
                list(request.category_ids), request.collection_id, request.idempotency_key
            ),
        )
        return categories_pb2.DeleteCategoriesResponse(task=task_to_proto(task))

    async def ListCategories(
        self, request: categories_pb2.ListCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> categories_pb2.ListCategoriesResponse:
        page = await list_categories(
            self.state.context,
            request.collection_id,
            PageRequest(request.page_size, request.page_token),
        )
        return categories_pb2.ListCategoriesResponse(
            categories=[category_to_proto(c) for c in page.categories],
            next_page_token=page.next_page_token,
            categories_collection_id=page.categories_collection_id,
        )
