"""The Search use case: a query (words, a vector, or both) to a page of ranked items, optionally
interleaved with the green collection's page and recorded as a session.

The servicer translates the request into a ``SearchInput`` and the ``SearchOutput`` back; every
rule (which collection, which ranking, which vector, interleaving, the session) lives here."""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.clickstream.model import Session, ShownResult
from es_core.clickstream.store import register_session
from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.filters.cost import check_filter_cost
from es_core.filters.model import Filter
from es_core.interleaving.live import interleave_hits, interleaving_wanted
from es_core.interleaving.pair import Pair, interleaving_pair
from es_core.interleaving.store import record_interleaving
from es_core.interleaving.team_draft import Pick
from es_core.item_input import check_vector
from es_core.page_tokens import PageTokens
from es_core.ranking.choice import Ranking, check_words, choose_ranking
from es_core.ranking.ranked_search import RankedQuery, ranked_search
from es_core.ranking.ranked_search import page_start as ranked_page_start
from es_core.ranking.spec import RankingSpec, with_window
from es_core.search.query import (
    SearchHit,
    SortSpec,
    VectorQuery,
    check_limit,
    check_max_distance,
    check_query_text,
    check_user_id,
)
from es_core.search.vector_search import page_start, vector_search
from es_core.storage.catalog import resolve_collection

log = logging.getLogger(__name__)

Vector = npt.NDArray[np.float32]


@dataclass(frozen=True)
class SearchContext:
    """What the search use cases need from the process that runs them."""

    settings: Settings
    pool: asyncpg.Pool
    encoders: EncoderRegistry
    tokens: PageTokens

    async def collection(self, collection_id: str) -> Collection:
        """The named collection, else the blue one."""
        async with self.pool.acquire() as conn:
            return await resolve_collection(conn, collection_id)

    async def page_collection(self, collection_id: str, page_token: str) -> Collection:
        """The named collection; else, for a later page, the one its first page came from
        (a blue switch between pages must not mix two collections); else the blue one."""
        if not collection_id and page_token and (from_token := self.tokens.collection(page_token)):
            try:
                return await self.collection(from_token)
            except NotFound:
                raise InvalidArgument.field_error(
                    "page_token", "its collection was deleted; start again from the first page"
                ) from None
        return await self.collection(collection_id)

    def check_filter(self, f: Filter | None) -> None:
        """Refuse a filter over ES_MAX_FILTER_COST before it costs the database anything."""
        check_filter_cost(f, self.settings.max_filter_cost)

    async def encode_query(self, collection: Collection, text: str) -> Vector:
        """Encoding is CPU-bound: run it off the event loop."""
        encoder = self.encoders.get(collection.model)
        vectors = await asyncio.to_thread(encoder.encode_queries, [text])
        return np.asarray(vectors[0], dtype=np.float32)


@dataclass(frozen=True)
class PageOptions:
    """What Search and FindSimilarItems share: limit, distance cut, filter, page, user."""

    limit: int
    max_distance: float | None
    filter: Filter | None
    page_token: str
    user_id: str

    def as_query_fields(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "max_distance": self.max_distance,
            "filter": self.filter,
            "page_token": self.page_token,
            "user_id": self.user_id,
        }


def page_options(
    settings: Settings,
    *,
    limit: int,
    max_distance: float | None,
    filter: Filter | None,
    page_token: str,
    user_id: str,
) -> PageOptions:
    """The options, checked (limit 0 = the default page size)."""
    check_user_id(user_id, settings)
    check_max_distance(max_distance)
    return PageOptions(check_limit(limit, settings), max_distance, filter, page_token, user_id)


@dataclass(frozen=True)
class SearchInput:
    options: PageOptions
    # The query: exactly one of these is set, or neither (then only lexical_query may rank).
    query_text: str | None
    query_vector: list[float] | None
    lexical_query: str
    collection_id: str
    sort: SortSpec | None
    ranking: RankingSpec | None  # None = the collection's live spec
    create_session: bool
    interleave: bool
    # How the filter and sort were written, kept with a recorded session.
    filter_json: dict[str, Any] | None = None
    sort_json: dict[str, Any] | None = None
    # The caller's app: the session the search records belongs to it ("" = none).
    app: str = ""


@dataclass(frozen=True)
class SearchOutput:
    hits: list[SearchHit]
    next_page_token: str
    session_id: str  # "" when none was recorded
    collection_id: str
    ranking: RankingSpec  # with its window filled in
    ranking_version: int
    interleaved_collection_id: str  # "" when the page was not interleaved


@dataclass(frozen=True)
class _Page:
    hits: list[SearchHit]
    next_token: str
    first_rank: int
    ranking: Ranking
    vector: Vector | None  # None when the ranking used none


async def search(ctx: SearchContext, request: SearchInput) -> SearchOutput:
    ctx.check_filter(request.options.filter)
    words = check_words(
        request.query_text or "", request.lexical_query, ctx.settings.max_query_chars
    )
    collection = await ctx.page_collection(request.collection_id, request.options.page_token)
    interleave = interleaving_wanted(
        requested=request.interleave,
        share=ctx.settings.interleaving_share,
        text_query=request.query_text is not None,
        create_session=request.create_session,
        first_page=not request.options.page_token,
        names_collection=bool(request.collection_id),
        sorted_by_field=request.sort is not None,
    )
    page = await _search_in(ctx, collection, request, words)
    hits = page.hits
    session_id, green_id, picks = uuid.uuid4().hex, "", None
    pair = await _interleaving_pair(ctx, required=request.interleave) if interleave else None
    if pair is not None and pair.blue.collection_id == collection.collection_id:
        try:
            green_hits: list[SearchHit] | None = (
                await _search_in(ctx, pair.green, request, words)
            ).hits
        except Exception:
            if request.interleave:
                raise
            # A search drawn by ES_INTERLEAVING_SHARE is an experiment: it never fails
            # because the green side did (its encoder down, say); blue answers alone.
            log.warning("interleaving with %s failed", pair.green.collection_id, exc_info=True)
            green_hits = None
        if green_hits is not None:
            hits, picks = interleave_hits(hits, green_hits, request.options.limit, session_id)
            green_id = pair.green.collection_id if hits else ""
    if request.create_session and hits:
        await _record_session(
            ctx, request, collection, words, page, hits, session_id, green_id, picks
        )
    else:
        session_id = ""
    return SearchOutput(
        hits=hits,
        next_page_token=page.next_token,
        session_id=session_id,
        collection_id=collection.collection_id,
        ranking=with_window(page.ranking.spec, ctx.settings),
        ranking_version=page.ranking.version,
        interleaved_collection_id=green_id,
    )


async def _interleaving_pair(ctx: SearchContext, *, required: bool) -> Pair | None:
    """Blue and the green collection to interleave with; None for a drawn search when there is
    none (a search that asked for interleaving gets FAILED_PRECONDITION)."""
    try:
        async with ctx.pool.acquire() as conn:
            return await interleaving_pair(conn, field="interleave")
    except FailedPrecondition:
        if required:
            raise
        return None


async def _query_vector(ctx: SearchContext, request: SearchInput, collection: Collection) -> Vector:
    if request.query_vector is not None:
        check_vector(request.query_vector, "query_vector.values", collection)
        return np.asarray(request.query_vector, dtype=np.float32)
    text = check_query_text(request.query_text, ctx.settings.max_query_chars)
    return await ctx.encode_query(collection, text)


async def _search_in(
    ctx: SearchContext, collection: Collection, request: SearchInput, words: str
) -> _Page:
    """One collection's page."""
    options = request.options
    ranking = choose_ranking(
        request.ranking,
        collection,
        ctx.settings,
        words=words,
        sorted_by_field=request.sort is not None,
        max_distance=options.max_distance,
    )
    vector = None
    if ranking.spec.uses_vector or request.query_vector is not None:
        vector = await _query_vector(ctx, request, collection)
    if ranking.spec.method == "vector":
        assert vector is not None
        query = VectorQuery(vector=vector, sort=request.sort, **options.as_query_fields())
        hits, next_token = await vector_search(
            ctx.pool, collection, query, ctx.settings, ctx.tokens
        )
        return _Page(hits, next_token, page_start(query, collection, ctx.tokens), ranking, vector)
    ranked = RankedQuery(
        spec=with_window(ranking.spec, ctx.settings),
        words=words,
        vector=vector if ranking.spec.uses_vector else None,
        **options.as_query_fields(),
    )
    hits, next_token = await ranked_search(ctx.pool, collection, ranked, ctx.settings, ctx.tokens)
    first_rank = ranked_page_start(ranked, collection, ctx.tokens)
    return _Page(hits, next_token, first_rank, ranking, vector)


async def _record_session(
    ctx: SearchContext,
    request: SearchInput,
    collection: Collection,
    words: str,
    page: _Page,
    hits: list[SearchHit],
    session_id: str,
    green_id: str,
    picks: list[Pick] | None,
) -> None:
    """The page as shown (ranks continue across pages), with the query vector for learning
    (and the words a vector query was ranked by, as its query text); an interleaved page with
    its draft, in the same transaction."""
    session = Session(
        session_id=session_id,
        results=[
            ShownResult(hit.object_id, rank) for rank, hit in enumerate(hits, start=page.first_rank)
        ],
        user_id=request.options.user_id,
        query_text=request.query_text or words,
        filter=request.filter_json,
        sort=request.sort_json,
        collection_id=collection.collection_id,
        app=request.app,
    )
    async with ctx.pool.acquire() as conn, conn.transaction():
        await register_session(conn, session, datetime.now(UTC), page.vector)
        if picks is not None:
            await record_interleaving(
                conn,
                session.session_id,
                blue_collection_id=collection.collection_id,
                green_collection_id=green_id,
                picks=picks,
            )
