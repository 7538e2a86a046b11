"""Search ranked by words (BM25) alone, or by a fusion of vector and words and business signals.

Lexical ranking pages through every matching item by (BM25 descending, object_id). A hybrid
ranking takes each retriever's top ``window`` items, at least the first page's ``limit``
(filters apply to both, ``max_distance`` to the vector side, the user's improved copies to the
vector scores), scores every item of that pool on both sides exactly, fuses the scores, and
pages through the pool by (fused score descending, object_id). Later pages rebuild the pool
with the first page's window and score boosts at its moment, so pages never repeat or skip an
item while the collection does not change. Like Elasticsearch's rank window, results end where
the pool does.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.config import Settings
from es_core.domain import Collection
from es_core.errors import InvalidArgument
from es_core.filters.model import Filter
from es_core.lexical.bm25 import lexical_pool, lexical_top
from es_core.page_tokens import PageTokens
from es_core.pagination import page_offset
from es_core.ranking.fusion import Candidate, ranked
from es_core.ranking.spec import RankingSpec
from es_core.search.query import SearchHit, VectorQuery
from es_core.search.vector_search import vector_distances, vector_pool


@dataclass(frozen=True)
class RankedQuery:
    """A lexical or hybrid search: ``words`` feed BM25, ``vector`` (hybrid) the vector side."""

    spec: RankingSpec
    words: str
    vector: npt.NDArray[np.float32] | None = None
    filter: Filter | None = None
    limit: int = 10
    max_distance: float | None = None
    page_token: str = ""
    user_id: str = ""

    def scope(self, collection_id: str) -> dict[str, Any]:
        """What a page token is bound to: the same query must come back with it."""
        vector = (
            ""
            if self.vector is None
            else hashlib.sha256(np.ascontiguousarray(self.vector).tobytes()).hexdigest()
        )
        return {
            "kind": "ranked",
            "collection": collection_id,
            "spec": self.spec.to_json(),
            "words": self.words,
            "vector": vector,
            "filter": repr(self.filter),
            "max_distance": self.max_distance,
            "user": self.user_id,
        }

    def vector_query(self, limit: int) -> VectorQuery:
        assert self.vector is not None
        return VectorQuery(
            vector=self.vector,
            filter=self.filter,
            limit=limit,
            max_distance=self.max_distance,
            user_id=self.user_id,
        )


@dataclass(frozen=True)
class _Cursor:
    """Where a later page starts: after (score, object_id) of the previous page's last hit,
    with ``start`` hits before it; the moment the first page's boosts were scored at and the
    window its pool was built with (None on the first page)."""

    after: tuple[float, str] | None = None
    start: int = 0
    moment: float | None = None
    window: int | None = None


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _cursor(query: RankedQuery, collection: Collection, tokens: PageTokens) -> _Cursor:
    if not query.page_token:
        return _Cursor()
    cursor = tokens.decode(query.page_token, query.scope(collection.collection_id))
    start = page_offset(cursor, query.limit)
    try:
        score, object_id = cursor["k"]
        moment, window = cursor.get("t"), cursor.get("w")
        if not _number(score) or not isinstance(object_id, str):
            raise TypeError
        if moment is not None and not _number(moment):
            raise TypeError
        if window is not None and (
            isinstance(window, bool) or not isinstance(window, int) or window < 1
        ):
            raise TypeError
        return _Cursor((float(score), object_id), start, moment, window)
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument.field_error(
            "page_token", "is not a page token this service issued"
        ) from None


def page_start(query: RankedQuery, collection: Collection, tokens: PageTokens) -> int:
    return _cursor(query, collection, tokens).start


def _page(
    query: RankedQuery,
    collection: Collection,
    hits: list[SearchHit],
    start: int,
    tokens: PageTokens,
    **carried: float | int,
) -> tuple[list[SearchHit], str]:
    """The page out of ``limit + 1`` (or more) ordered hits and the next page's token, which
    carries ``carried`` (the first page's moment "t" and window "w") to the pages after."""
    page = hits[: query.limit]
    if len(hits) <= query.limit:
        return page, ""
    last = page[-1]
    cursor: dict[str, Any] = {
        "k": [last.score, last.object_id],
        "n": start + len(page),
        "col": collection.collection_id,
        **carried,
    }
    return page, tokens.encode(cursor, query.scope(collection.collection_id))


async def ranked_search(
    pool: asyncpg.Pool,
    collection: Collection,
    query: RankedQuery,
    settings: Settings,
    tokens: PageTokens,
) -> tuple[list[SearchHit], str]:
    """One page of hits and the token of the next page ("" when this is the last)."""
    cursor = _cursor(query, collection, tokens)
    if query.spec.method == "lexical":
        found = await lexical_top(
            pool,
            collection,
            query.words,
            limit=query.limit + 1,
            filter=query.filter,
            after=cursor.after,
        )
        hits = [
            SearchHit(h.object_id, 0.0, h.payload, score=h.score, lexical_score=h.score)
            for h in found
        ]
        return _page(query, collection, hits, cursor.start, tokens)
    # The pool holds at least a first page; later pages reuse the first page's window.
    window = cursor.window or max(query.spec.window or settings.ranking_window, query.limit)
    candidates = await hybrid_pool(pool, collection, query, settings, window)
    # Every page scores recency boosts at the first page's moment: scored at its own, a page
    # would see every score move a little and repeat or skip items at its start.
    now = time.time() if cursor.moment is None else cursor.moment
    ordered = [
        replace(_as_hit(c, query), score=score) for score, c in ranked(candidates, query.spec, now)
    ]
    if cursor.after is not None:
        score, object_id = cursor.after
        ordered = [
            h
            for h in ordered
            if h.score is not None
            and (h.score < score or (h.score == score and h.object_id > object_id))
        ]
    return _page(query, collection, ordered, cursor.start, tokens, t=now, w=window)


def _as_hit(c: Candidate, query: RankedQuery) -> SearchHit:
    return SearchHit(
        object_id=c.object_id,
        distance=c.distance,
        payload=c.payload,
        matched_part_id=c.matched_part_id,
        user_id=query.user_id if c.personal else "",
        lexical_score=c.lexical,
    )


async def hybrid_pool(
    pool: asyncpg.Pool,
    collection: Collection,
    query: RankedQuery,
    settings: Settings,
    window: int | None = None,
) -> list[Candidate]:
    """Each retriever's top ``window`` items (default: the spec's, else the server's), every
    one scored on both sides (three statements: the vector top, the BM25 top with the vector
    top's BM25, the BM25 top's distances)."""
    window = window or query.spec.window or settings.ranking_window
    vector_hits = await vector_pool(pool, collection, query.vector_query(window), settings)
    lexical_hits, lexical_of_vector_hits = await lexical_pool(
        pool,
        collection,
        query.words,
        limit=window,
        filter=query.filter,
        also=[h.object_id for h in vector_hits],
    )
    by_id: dict[str, Candidate] = {}
    for rank, hit in enumerate(vector_hits, start=1):
        by_id[hit.object_id] = Candidate(
            hit.object_id,
            hit.distance,
            lexical_of_vector_hits.get(hit.object_id, 0.0),
            hit.payload,
            vector_rank=rank,
            matched_part_id=hit.matched_part_id,
            personal=bool(hit.user_id),
        )
    lexical_only = [h.object_id for h in lexical_hits if h.object_id not in by_id]
    distances = await vector_distances(pool, collection, query.vector_query(window), lexical_only)
    for rank, lexical in enumerate(lexical_hits, start=1):
        known = by_id.get(lexical.object_id)
        if known is not None:
            known.lexical_rank = rank
            continue
        vector = distances.get(lexical.object_id)
        if vector is None:
            continue  # gone between the two reads
        by_id[lexical.object_id] = Candidate(
            lexical.object_id,
            vector.distance,
            lexical.score,
            lexical.payload,
            lexical_rank=rank,
            matched_part_id=vector.matched_part_id,
            personal=bool(vector.user_id),
        )
    return list(by_id.values())
