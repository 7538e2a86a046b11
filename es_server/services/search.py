"""SearchService: nearest items by text or vector, items by payload, counts, similar items,
and the categories of a query."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import grpc

from embedding_studio.v1 import common_pb2, search_pb2, search_pb2_grpc
from es_core.categories.predict import PredictCategoriesInput, predict_categories
from es_core.categories.selectors import (
    DistanceSelector,
    ProbabilitySelector,
    RequestedSelector,
    UnsetSelector,
)
from es_core.search.by_payload import PayloadSearchInput, count_matching_items, search_by_payload
from es_core.search.similar import SimilarItemsInput, find_similar_items
from es_core.search.use_case import PageOptions, SearchInput, page_options, search
from es_server.auth import caller_app
from es_server.convert import (
    dict_to_struct,
    hit_to_proto,
    optional_filter,
    optional_json,
    optional_sort,
    timestamp,
)
from es_server.ranking_convert import spec_from_proto, spec_to_proto
from es_server.state import ServerState


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
                filter_json=optional_json(request, "filter"),
                sort_json=optional_json(request, "sort"),
                app=caller_app() or "",
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
        page = await search_by_payload(
            self.state.search,
            PayloadSearchInput(
                collection_id=request.collection_id,
                filter=optional_filter(request),
                sort=optional_sort(request),
                limit=request.limit,
                page_token=request.page_token,
                user_id=request.user_id,
            ),
        )
        return search_pb2.SearchByPayloadResponse(
            items=[
                common_pb2.Item(
                    object_id=h.object_id,
                    payload=dict_to_struct(h.payload),
                    update_time=timestamp(h.update_time),
                )
                for h in page.items
            ],
            next_page_token=page.next_page_token,
            collection_id=page.collection_id,
        )

    async def CountItems(
        self, request: search_pb2.CountItemsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.CountItemsResponse:
        counted = await count_matching_items(
            self.state.search, request.collection_id, optional_filter(request)
        )
        return search_pb2.CountItemsResponse(
            count=counted.count, collection_id=counted.collection_id
        )

    async def FindSimilarItems(
        self, request: search_pb2.FindSimilarItemsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.FindSimilarItemsResponse:
        found = await find_similar_items(
            self.state.search,
            SimilarItemsInput(request.object_id, request.collection_id, self._options(request)),
        )
        return search_pb2.FindSimilarItemsResponse(
            results=[hit_to_proto(h) for h in found.hits],
            next_page_token=found.next_page_token,
            collection_id=found.collection_id,
        )

    async def PredictCategories(
        self, request: search_pb2.PredictCategoriesRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.PredictCategoriesResponse:
        found = await predict_categories(
            self.state.search,
            self.state.categories,
            PredictCategoriesInput(
                query_text=request.query_text or None,
                query_vector=(
                    list(request.query_vector.values) if request.HasField("query_vector") else None
                ),
                limit=request.limit,
                collection_id=request.collection_id,
                selector=(_selector(request.selector) if request.HasField("selector") else None),
                category_field=request.category_field,
            ),
        )
        return search_pb2.PredictCategoriesResponse(
            predictions=[
                search_pb2.CategoryPrediction(
                    category=p.category_id,
                    category_id=p.category_id,
                    name=p.name,
                    probability=p.probability,
                    distance=p.distance,
                    score=p.score,
                )
                for p in found.predictions
            ],
            categories_collection_id=found.categories_collection_id,
        )


def _selector(message: search_pb2.CategorySelector) -> RequestedSelector:
    which = message.WhichOneof("kind")
    if which == "distance":
        return DistanceSelector(message.distance.max_distance)
    if which == "probability":
        return ProbabilitySelector(
            message.probability.temperature, message.probability.min_probability
        )
    return UnsetSelector()
