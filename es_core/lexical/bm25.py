"""BM25 over a collection's postings, with document frequencies and lengths read from the
statistics PostgreSQL keeps for it (see migration 0004).

score(item) = sum over the query's distinct terms t of
    idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl)),
    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))
(Lucene's BM25). The query's words are analysed by the collection's text search
configuration, as the items' texts were, so stemming and stop words agree on both sides.
Every matching item is scored exactly; the query's terms' idf are computed once per query.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from es_core.domain import Collection
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.filters.model import Filter
from es_core.storage.catalog import items_table, postings_table, termstats_table
from es_core.storage.item_rows import head_rows

K1 = 1.2
B = 0.75


@dataclass(frozen=True)
class LexicalHit:
    object_id: str
    score: float
    payload: dict[str, Any]


def _scored_cte(collection: Collection, params: SqlParams, text: str, ids: str | None) -> str:
    """CTEs up to ``scored (object_id, score)``: every item holding a query term, or only the
    items of the SQL array ``ids`` when given."""
    stats = termstats_table(collection)
    config = params.add(collection.text_search_config)
    words = params.add(text)
    only = f" AND p.object_id = ANY({ids})" if ids else ""
    return (
        f"WITH n AS MATERIALIZED (SELECT coalesce(sum(df), 0)::float8 AS docs,"
        f"  greatest(coalesce(sum(length), 0)::float8, 1) AS total FROM {stats} WHERE term = ''),"
        f" q AS MATERIALIZED (SELECT s.term, ln(1 + (n.docs - s.df + 0.5) / (s.df + 0.5)) AS idf,"
        f"  n.total / greatest(n.docs, 1) AS avgdl"
        f"  FROM (SELECT term, sum(df)::float8 AS df FROM {stats}"
        f"   WHERE term IN (SELECT lexeme"
        f"    FROM unnest(to_tsvector({config}::text::regconfig, {words})))"
        f"   GROUP BY term HAVING sum(df) > 0) s CROSS JOIN n),"
        f" scored AS (SELECT p.object_id, sum(q.idf * p.tf * {K1 + 1}::float8"
        f"  / (p.tf + {K1}::float8 * ({1 - B}::float8 + {B}::float8 * p.dl / q.avgdl))) AS score"
        f"  FROM q JOIN {postings_table(collection)} p ON p.term = q.term{only}"
        f"  GROUP BY p.object_id)"
    )


async def lexical_top(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    text: str,
    *,
    limit: int,
    filter: Filter | None = None,
    after: tuple[float, str] | None = None,
) -> list[LexicalHit]:
    """The ``limit`` items with the highest BM25 for ``text`` among those ``filter`` admits,
    score descending then object_id; ``after``: only items after that (score, object_id)."""
    hits, _ = await lexical_pool(conn, collection, text, limit=limit, filter=filter, after=after)
    return hits


async def lexical_pool(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    text: str,
    *,
    limit: int,
    filter: Filter | None = None,
    after: tuple[float, str] | None = None,
    also: Sequence[str] = (),
) -> tuple[list[LexicalHit], dict[str, float]]:
    """``lexical_top``, and in the same statement the BM25 of the items named in ``also``
    (items without a query word are absent: their score is 0)."""
    params = SqlParams()
    cte = _scored_cte(collection, params, text, None)
    ranked = []
    if after is not None:
        score, object_id = params.add(after[0]), params.add(after[1])
        ranked.append(
            f"(s.score < {score}::float8 OR (s.score = {score}::float8"
            f" AND s.object_id > {object_id}::text))"
        )
    heads = f"JOIN {items_table(collection)} h ON h.object_id = s.object_id AND {head_rows('h')}"
    if filter is None:
        # Rank first, then read the payloads of the page alone.
        page = (
            f"SELECT s.object_id, s.score, h.payload FROM (SELECT object_id, score FROM scored s"
            f" WHERE {' AND '.join(ranked) or 'true'} ORDER BY s.score DESC, s.object_id"
            f" LIMIT {params.add(limit)}::int) s {heads}"
        )
    else:
        where = " AND ".join(
            [
                compile_filter(filter, params, "h.payload", declared=collection.filterable_fields),
                *ranked,
            ]
        )
        page = (
            f"SELECT s.object_id, s.score, h.payload FROM scored s {heads} WHERE {where}"
            f" ORDER BY s.score DESC, s.object_id LIMIT {params.add(limit)}::int"
        )
    extra = ""
    if also:
        extra = (
            f" UNION ALL SELECT object_id, score, NULL, false FROM scored"
            f" WHERE object_id = ANY({params.add(list(also))}::text[])"
        )
    rows = await conn.fetch(
        f"{cte} SELECT * FROM (SELECT object_id, score, payload, true AS listed FROM ({page}) p"
        f"{extra}) r ORDER BY listed DESC, score DESC, object_id",
        *params.values,
    )
    hits = [
        LexicalHit(r["object_id"], float(r["score"]), r["payload"]) for r in rows if r["listed"]
    ]
    return hits, {r["object_id"]: float(r["score"]) for r in rows if not r["listed"]}


async def compact_statistics(conn: asyncpg.Connection, table_name: str) -> int:
    """Fold the statistics deltas of a collection table; returns how many rows it saved."""
    return int(await conn.fetchval("SELECT es_lexical_compact($1)", table_name))


async def compact_live_statistics(pool: asyncpg.Pool) -> int:
    """Fold the deltas of every live collection (writers keep adding rows; readers sum them)."""
    folded = 0
    async with pool.acquire() as conn:
        tables = await conn.fetch(
            "SELECT table_name FROM collections WHERE delete_time IS NULL ORDER BY collection_id"
        )
        for row in tables:
            try:
                folded += await compact_statistics(conn, row["table_name"])
            except asyncpg.UndefinedTableError:
                continue  # dropped by a DeleteCollection meanwhile
    return folded
