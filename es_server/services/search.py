"""SearchService: nearest items by text or vector, items by payload, counts, similar items."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
from google.protobuf import json_format

from embedding_studio.v1 import common_pb2, search_pb2, search_pb2_grpc
from es_core.clickstream.model import Session, ShownResult
from es_core.clickstream.store import register_session
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.interleaving.live import interleave_hits, interleaving_wanted
from es_core.interleaving.pair import Pair, interleaving_pair
from es_core.interleaving.store import record_interleaving
from es_core.interleaving.team_draft import Pick
from es_core.items import check_object_id, check_vector
from es_core.pagination import token_collection
from es_core.ranking.choice import Ranking, check_words, choose_ranking
from es_core.ranking.ranked_search import RankedQuery, ranked_search
from es_core.ranking.ranked_search import page_start as ranked_page_start
from es_core.ranking.spec import RankingSpec, with_window
from es_core.search.payload_search import count_items, head_vector, payload_search
from es_core.search.query import (
    PayloadQuery,
    SearchHit,
    SortSpec,
    VectorQuery,
    check_limit,
    check_max_distance,
    check_user_id,
)
from es_core.search.vector_search import page_start, vector_search
from es_core.storage.catalog import Collection
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

log = logging.getLogger(__name__)


class SearchService(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    def _vector_options(self, request: Any) -> dict[str, Any]:
        """What Search and FindSimilarItems share: limit, distance cut, filter, page, user."""
        check_user_id(request.user_id)
        max_distance = request.max_distance if request.HasField("max_distance") else None
        check_max_distance(max_distance)
        return {
            "limit": check_limit(request.limit, self.state.settings),
            "max_distance": max_distance,
            "filter": optional_filter(request),
            "page_token": request.page_token,
            "user_id": request.user_id,
        }

    async def _collection(self, collection_id: str, page_token: str) -> Collection:
        """The named collection; else, for a later page, the one its first page came from
        (a blue switch between pages must not mix two collections); else the blue one."""
        if not collection_id and (from_token := token_collection(page_token)):
            try:
                return await self.state.collection(from_token)
            except NotFound:
                raise InvalidArgument.field_error(
                    "page_token", "its collection was deleted; start again from the first page"
                ) from None
        return await self.state.collection(collection_id)

    async def _query_vector(
        self, request: search_pb2.SearchRequest, collection: Collection
    ) -> npt.NDArray[np.float32]:
        which = request.WhichOneof("query")
        if which == "query_vector":
            values = list(request.query_vector.values)
            check_vector(values, "query_vector.values", collection)
            return np.asarray(values, dtype=np.float32)
        if which is None:
            raise InvalidArgument.field_error("query_text", "set query_text or query_vector")
        text = request.query_text
        if not text.strip():
            raise InvalidArgument.field_error("query_text", "must not be blank")
        max_chars = self.state.settings.max_query_chars
        if len(text) > max_chars or "\x00" in text:
            raise InvalidArgument.field_error(
                "query_text", f"must be at most {max_chars} characters, without NUL"
            )
        return await self.state.encode_query(collection, text)

    async def Search(
        self, request: search_pb2.SearchRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.SearchResponse:
        options = self._vector_options(request)
        sort = optional_sort(request)
        words = check_words(
            request.query_text, request.lexical_query, self.state.settings.max_query_chars
        )
        requested = (
            spec_from_proto(request.ranking, "ranking") if request.HasField("ranking") else None
        )
        collection = await self._collection(request.collection_id, request.page_token)
        interleave = interleaving_wanted(
            requested=request.interleave,
            share=self.state.settings.interleaving_share,
            text_query=request.WhichOneof("query") == "query_text",
            create_session=request.create_session,
            first_page=not request.page_token,
            names_collection=bool(request.collection_id),
            sorted_by_field=sort is not None,
        )
        found = await self._search_in(collection, request, options, sort, words, requested)
        hits, next_token, first_rank, ranking, vector = found
        session_id, green_id, picks = uuid.uuid4().hex, "", None
        pair = await self._interleaving_pair(required=request.interleave) if interleave else None
        if pair is not None and pair.blue.collection_id == collection.collection_id:
            try:
                green_hits = (
                    await self._search_in(pair.green, request, options, sort, words, requested)
                )[0]
            except Exception:
                if request.interleave:
                    raise
                # A search drawn by ES_INTERLEAVING_SHARE is an experiment: it never fails
                # because the green side did (its encoder down, say); blue answers alone.
                log.warning("interleaving with %s failed", pair.green.collection_id, exc_info=True)
                green_hits = None
            if green_hits is not None:
                hits, picks = interleave_hits(hits, green_hits, options["limit"], session_id)
                green_id = pair.green.collection_id if hits else ""
        if request.create_session and hits:
            await self._record_session(
                request, collection, words, vector, first_rank, hits, session_id, green_id, picks
            )
        else:
            session_id = ""
        return search_pb2.SearchResponse(
            results=[hit_to_proto(h) for h in hits],
            next_page_token=next_token,
            session_id=session_id,
            collection_id=collection.collection_id,
            ranking=spec_to_proto(with_window(ranking.spec, self.state.settings)),
            ranking_version=ranking.version,
            interleaved_collection_id=green_id,
        )

    async def _interleaving_pair(self, *, required: bool) -> Pair | None:
        """Blue and the green collection to interleave with; None for a drawn search when
        there is none (a search that asked for interleaving gets FAILED_PRECONDITION)."""
        try:
            async with self.state.pool.acquire() as conn:
                return await interleaving_pair(conn, field="interleave")
        except FailedPrecondition:
            if required:
                raise
            return None

    async def _search_in(
        self,
        collection: Collection,
        request: search_pb2.SearchRequest,
        options: dict[str, Any],
        sort: SortSpec | None,
        words: str,
        requested: RankingSpec | None,
    ) -> tuple[list[SearchHit], str, int, Ranking, npt.NDArray[np.float32] | None]:
        """One collection's page: hits, next page token, rank of the first hit, the ranking
        that ordered them and the query vector (None when the ranking used none)."""
        ranking = choose_ranking(
            requested,
            collection,
            self.state.settings,
            words=words,
            sorted_by_field=sort is not None,
            max_distance=options["max_distance"],
        )
        vector = None
        if ranking.spec.uses_vector or request.WhichOneof("query") == "query_vector":
            vector = await self._query_vector(request, collection)
        query: VectorQuery | RankedQuery
        if ranking.spec.method == "vector":
            assert vector is not None
            query = VectorQuery(vector=vector, sort=sort, **options)
            hits, next_token = await vector_search(
                self.state.pool, collection, query, self.state.settings
            )
            first_rank = page_start(query, collection)
        else:
            query = RankedQuery(
                spec=with_window(ranking.spec, self.state.settings),
                words=words,
                vector=vector if ranking.spec.uses_vector else None,
                **options,
            )
            hits, next_token = await ranked_search(
                self.state.pool, collection, query, self.state.settings
            )
            first_rank = ranked_page_start(query, collection)
        return hits, next_token, first_rank, ranking, vector

    async def _record_session(
        self,
        request: search_pb2.SearchRequest,
        collection: Collection,
        words: str,
        vector: npt.NDArray[np.float32] | None,
        first_rank: int,
        hits: list[SearchHit],
        session_id: str,
        green_id: str,
        picks: list[Pick] | None,
    ) -> None:
        """The page as shown (ranks continue across pages), with the query vector for learning
        (and the words a vector query was ranked by, as its query text); an interleaved page
        with its draft, in the same transaction."""
        session = Session(
            session_id=session_id,
            results=[
                ShownResult(hit.object_id, rank) for rank, hit in enumerate(hits, start=first_rank)
            ],
            user_id=request.user_id,
            query_text=request.query_text or words,
            filter=json_format.MessageToDict(request.filter)
            if request.HasField("filter")
            else None,
            sort=json_format.MessageToDict(request.sort) if request.HasField("sort") else None,
            collection_id=collection.collection_id,
        )
        async with self.state.pool.acquire() as conn, conn.transaction():
            await register_session(conn, session, datetime.now(UTC), vector)
            if picks is not None:
                await record_interleaving(
                    conn,
                    session.session_id,
                    blue_collection_id=collection.collection_id,
                    green_collection_id=green_id,
                    picks=picks,
                )

    async def SearchByPayload(
        self, request: search_pb2.SearchByPayloadRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.SearchByPayloadResponse:
        limit = check_limit(request.limit, self.state.settings)
        check_user_id(request.user_id)
        query = PayloadQuery(
            optional_filter(request), optional_sort(request), limit, request.page_token
        )
        collection = await self._collection(request.collection_id, request.page_token)
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
        options = self._vector_options(request)
        collection = await self._collection(request.collection_id, request.page_token)
        vector = await head_vector(self.state.pool, collection, request.object_id)
        if vector is None:
            raise NotFound.field_error(
                "object_id",
                f"no item {request.object_id!r} in collection {collection.collection_id!r}",
            )
        query = VectorQuery(vector=vector, exclude_object_id=request.object_id, **options)
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
