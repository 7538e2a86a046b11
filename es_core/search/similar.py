"""The FindSimilarItems use case: the items nearest to one item of the collection, by its
average vector, the item itself left out."""

from __future__ import annotations

from dataclasses import dataclass

from es_core.errors import NotFound
from es_core.item_input import check_object_id
from es_core.search.payload_search import head_vector
from es_core.search.query import SearchHit, VectorQuery
from es_core.search.use_case import PageOptions, SearchContext
from es_core.search.vector_search import vector_search


@dataclass(frozen=True)
class SimilarItemsInput:
    object_id: str
    collection_id: str  # "" = the blue one (for a later page, the first page's)
    options: PageOptions


@dataclass(frozen=True)
class SimilarItemsOutput:
    hits: list[SearchHit]
    next_page_token: str
    collection_id: str


async def find_similar_items(ctx: SearchContext, request: SimilarItemsInput) -> SimilarItemsOutput:
    check_object_id(request.object_id, "object_id", ctx.settings)
    options = request.options
    ctx.check_filter(options.filter)
    collection = await ctx.page_collection(request.collection_id, options.page_token)
    vector = await head_vector(ctx.pool, collection, request.object_id)
    if vector is None:
        raise NotFound.field_error(
            "object_id",
            f"no item {request.object_id!r} in collection {collection.collection_id!r}",
        )
    query = VectorQuery(
        vector=vector, exclude_object_id=request.object_id, **options.as_query_fields()
    )
    hits, next_token = await vector_search(ctx.pool, collection, query, ctx.settings, ctx.tokens)
    return SimilarItemsOutput(hits, next_token, collection.collection_id)
