"""The SearchByPayload and CountItems use cases: items by their payload alone, paged or
counted, in the named collection (else the blue one)."""

from __future__ import annotations

from dataclasses import dataclass

from es_core.filters.model import Filter
from es_core.search.payload_search import PayloadHit, count_items, payload_search
from es_core.search.query import PayloadQuery, SortSpec, check_limit, check_user_id
from es_core.search.use_case import SearchContext


@dataclass(frozen=True)
class PayloadSearchInput:
    collection_id: str
    filter: Filter | None
    sort: SortSpec | None  # None = by object id
    limit: int  # 0 = ES_DEFAULT_SEARCH_LIMIT
    page_token: str
    user_id: str


@dataclass(frozen=True)
class PayloadPage:
    items: list[PayloadHit]
    next_page_token: str
    collection_id: str


@dataclass(frozen=True)
class ItemCount:
    count: int
    collection_id: str


async def search_by_payload(ctx: SearchContext, request: PayloadSearchInput) -> PayloadPage:
    limit = check_limit(request.limit, ctx.settings)
    check_user_id(request.user_id, ctx.settings)
    ctx.check_filter(request.filter)
    query = PayloadQuery(request.filter, request.sort, limit, request.page_token)
    collection = await ctx.page_collection(request.collection_id, request.page_token)
    hits, next_token = await payload_search(ctx.pool, collection, query, ctx.tokens)
    return PayloadPage(hits, next_token, collection.collection_id)


async def count_matching_items(
    ctx: SearchContext, collection_id: str, filter: Filter | None
) -> ItemCount:
    """The items the filter matches (all of them without one)."""
    ctx.check_filter(filter)
    collection = await ctx.collection(collection_id)
    return ItemCount(await count_items(ctx.pool, collection, filter), collection.collection_id)
