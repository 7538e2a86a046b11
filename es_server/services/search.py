"""SearchService: nearest items by text or vector, items by payload, counts, similar items."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import grpc
from google.protobuf import json_format

from embedding_studio.v1 import common_pb2, search_pb2, search_pb2_grpc
from es_core.errors import NotFound
from es_core.items import check_object_id
from es_core.search.payload_search import count_items, head_vector, payload_search
from es_core.search.query import (
    PayloadQuery,
    VectorQuery,
    check_limit,
    check_user_id,
)
from es_core.search.use_case import PageOptions, SearchInput, page_options, search
from es_core.search.vector_search import vector_search
from es_server.convert import (
    dict_to_struct,
    hit_to_proto,
    optional_filter,
    optional_sort,
    timestamp,
)
from es_server.interceptors import Unimplemented
from es_server.ranking_convert import spec_from_proto, spec_to_proto
from es_server.state import ServerState


def _as_json(request: Any, name: str) -> dict[str, Any] | None:
    """A message field as JSON, as a session keeps it; None when it is not set."""
    return json_format.MessageToDict(getattr(request, name)) if request.HasField(name) else None


class SearchService(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def _options(self, request: Any) -> PageOptions:
        """What Search and FindSimilarItems share: limit, distance cut, filter, page, user."""
        options = page_options(
            self.state.settings,
            limit=request.limit,
            max_distance=request.max_distance if request.HasField("max_distance") else None,
            filter=None,
            page_token=request.page_token,
            user_id=request.user_id,
        )
        return replace(options, filter=optional_filter(request))

    async def Search(
        self, request: search_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.SearchResponse:
        which = request.WhichOneof("query")
        found = await search(
            self.state.search,
            SearchInput(
                options=self._options(request),
                query_text=request.query_text if which == "query_text" else None,
                query_vector=(
                    list(request.query_vector.values) if which == "query_vector" else None
                ),
                lexical_query=request.lexical_query,
                collection_id=request.collection_id,
                sort=optional_sort(request),
                ranking=(
                    spec_from_proto(request.ranking, "ranking")
                    if request.HasField("ranking")
                    else None
                ),
                create_session=request.create_session,
                interleave=request.interleave,
                filter_json=_as_json(request, "filter"),
                sort_json=_as_json(request, "sort"),
            ),
        )
        return search_pb2.SearchResponse(
            results=[hit_to_proto(h) for h in found.hits],
            next_page_token=found.next_page_token,
            session_id=found.session_id,
            collection_id=found.collection_id,
            ranking=spec_to_proto(found.ranking),
            ranking_version=found.ranking_version,
            interleaved_collection_id=found.interleaved_collection_id,
        )

    async def SearchByPayload(
        self, request: search_pb2.SearchByPayloadRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.SearchByPayloadResponse:
        limit = check_limit(request.limit, self.state.settings)
        check_user_id(request.user_id)
        query = PayloadQuery(
            optional_filter(request), optional_sort(request), limit, request.page_token
        )
        collection = await self.state.search.page_collection(
            request.collection_id, request.page_token
        )
        hits, next_token = await payload_search(self.state.pool, collection, query)
        return search_pb2.SearchByPayloadResponse(
            items=[
                common_pb2.Item(
                    object_id=h.object_id,
                    payload=dict_to_struct(h.payload),
                    update_time=timestamp(h.update_time),
                )
                for h in hits
            ],
            next_page_token=next_token,
            collection_id=collection.collection_id,
        )

    async def CountItems(
        self, request: search_pb2.CountItemsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.CountItemsResponse:
        query_filter = optional_filter(request)
        collection = await self.state.collection(request.collection_id)
        count = await count_items(self.state.pool, collection, query_filter)
        return search_pb2.CountItemsResponse(count=count, collection_id=collection.collection_id)

    async def FindSimilarItems(
        self, request: search_pb2.FindSimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.FindSimilarItemsResponse:
        check_object_id(request.object_id, "object_id", self.state.settings)
        options = self._options(request)
        collection = await self.state.search.page_collection(
            request.collection_id, request.page_token
        )
        vector = await head_vector(self.state.pool, collection, request.object_id)
        if vector is None:
            raise NotFound.field_error(
                "object_id",
                f"no item {request.object_id!r} in collection {collection.collection_id!r}",
            )
        query = VectorQuery(
            vector=vector, exclude_object_id=request.object_id, **options.as_query_fields()
        )
        hits, next_token = await vector_search(
            self.state.pool, collection, query, self.state.settings
        )
        return search_pb2.FindSimilarItemsResponse(
            results=[hit_to_proto(h) for h in hits],
            next_page_token=next_token,
            collection_id=collection.collection_id,
        )

    async def PredictCategories(
        self, request: search_pb2.PredictCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.PredictCategoriesResponse:
        raise Unimplemented(
            "SearchService.PredictCategories is not built yet: it needs the categories"
            " fine-tuning plugin (CategoriesFineTuningMethod)"
        )
