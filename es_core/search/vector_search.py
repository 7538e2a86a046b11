"""Nearest items to a vector: HNSW over parts for candidates, exact item scores over all parts.

Items are scored by MIN or AVG of their parts' distances. The index finds the nearest parts;
every part of those candidate items is then scored exactly, so an item's score never depends
on which of its parts the index happened to return, and keyset pages never overlap. When the
index cannot supply enough candidates (a selective filter, a deep page) the candidate pool
grows, and at last the same query runs exactly over every matching part.

A user with improved copies of some items sees those copies in place of the originals: the
copies join the candidates, and each candidate is scored with the user's copy when there is
one. Users without copies run exactly the query everyone else runs.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.filters.cost import exact_is_cheaper
from es_core.page_tokens import PageTokens
from es_core.pagination import page_offset
from es_core.search.filter_estimates import filter_estimate
from es_core.search.keyset import SortKey, cursor_key, distance_key, payload_sort_key
from es_core.search.query import SearchHit, VectorQuery
from es_core.storage.catalog import DISTANCE_OPERATORS, items_table
from es_core.storage.item_rows import head_rows

ORIGINALS = "p.user_id IS NULL AND NOT p.is_average"


def _scored_sql(
    collection: Collection,
    query: VectorQuery,
    params: SqlParams,
    candidates: int | None,
    personal: bool,
    object_ids: list[str] | None = None,
) -> str:
    """The CTEs ``stats`` (raw candidate count, farthest raw distance) and ``scored``.

    ``candidates`` None means exact: every matching item is scored. ``personal``: the user
    has copies, which take the place of their originals. ``object_ids``: score exactly these
    items (those the filter admits) instead. An item's payload is on its head row alone
    (alias ``h``): the filter reads it there.
    """
    op = DISTANCE_OPERATORS[collection.model.metric]
    agg = "min" if collection.model.aggregation == "min" else "avg"
    t = items_table(collection)
    vec = params.add(query.vector)
    where = compile_filter(query.filter, params, "h.payload", declared=collection.filterable_fields)
    heads = f"{t} h WHERE {head_rows('h')} AND ({where})"
    if object_ids is not None:
        raw = "SELECT NULL::float8 AS d WHERE false"
        named = params.add(object_ids)
        pool = f"SELECT h.object_id FROM {heads} AND h.object_id = ANY({named}::text[])"
    elif candidates is None:
        raw = "SELECT NULL::float8 AS d WHERE false"
        pool = f"SELECT h.object_id FROM {heads}"
    else:
        parts = f"{t} p"
        if query.filter is not None:
            parts += f" JOIN {t} h ON h.object_id = p.object_id AND {head_rows('h')}"
        raw = (
            f"SELECT p.object_id, p.vector {op} {vec} AS d FROM {parts}"
            f" WHERE {ORIGINALS} AND ({where})"
            f" ORDER BY p.vector {op} {vec} LIMIT {params.add(candidates)}::int"
        )
        pool = "SELECT DISTINCT object_id FROM raw"
    scored_parts = "p.user_id IS NULL"
    if personal:
        user = params.add(query.user_id)
        pool += (
            f" UNION SELECT c.object_id FROM {t} c JOIN {t} h ON h.object_id = c.object_id"
            f" AND {head_rows('h')} WHERE c.user_id = {user} AND c.is_average AND ({where})"
        )
        scored_parts = (
            f"(p.user_id = {user} OR (p.user_id IS NULL AND NOT EXISTS (SELECT 1 FROM {t} c"
            f" WHERE c.user_id = {user} AND c.object_id = p.object_id AND c.is_average)))"
        )
    return (
        f"WITH raw AS MATERIALIZED ({raw}),"
        f" stats AS (SELECT count(*) AS n_raw, max(d) AS max_raw FROM raw),"
        f" candidates AS ({pool}),"
        f" scored AS (SELECT s.*, h.payload FROM ("
        f"  SELECT p.object_id, {agg}(p.vector {op} {vec}) AS distance,"
        f"   (array_agg(p.part_id ORDER BY p.vector {op} {vec}, p.part_id))[1] AS part_id,"
        f"   bool_or(p.user_id IS NOT NULL) AS personal"
        f"  FROM {t} p JOIN candidates c USING (object_id)"
        f"  WHERE {scored_parts} AND NOT p.is_average GROUP BY p.object_id) s"
        f" JOIN {t} h ON h.object_id = s.object_id AND {head_rows('h')})"
    )


async def vector_search(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    query: VectorQuery,
    settings: Settings,
    tokens: PageTokens,
) -> tuple[list[SearchHit], str]:
    """One page of hits and the token of the next page ("" when this is the last)."""
    scope = query.scope(collection.collection_id)
    after = None
    if query.page_token:
        after = cursor_key(tokens.decode(query.page_token, scope), _key_casts(query))
    start = page_start(query, collection, tokens)
    hits, last_key = await vector_page(conn, collection, query, settings, after)
    if last_key is None:
        return hits, ""
    cursor = {"k": last_key, "n": start + query.limit, "col": collection.collection_id}
    return hits, tokens.encode(cursor, scope)


async def vector_page(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    query: VectorQuery,
    settings: Settings,
    after: list[Any] | None = None,
) -> tuple[list[SearchHit], list[Any] | None]:
    """The ``query.limit`` nearest items after the sort key ``after`` (from the first when
    None), and the sort key of the last of them when more follow (None on the last page)."""
    # Sorting by a payload field reads every matching item anyway: go exact at once.
    exact = query.sort is not None
    candidates = first_candidates(query)
    if not exact and query.filter is not None:
        matches, items = await filter_estimate(conn, collection, query.filter)
        exact = exact_is_cheaper(matches, items, candidates, settings.hnsw_ef_search)
    personal = bool(query.user_id) and await has_copies(conn, collection, query.user_id)
    while True:
        rows, n_raw, max_raw = await _run(
            conn, collection, query, after, candidates, exact, personal
        )
        if exact:
            break
        if n_raw < candidates:
            exact = True  # the index stopped short (filter, scan cap): ask exactly
            continue
        # An item with no part among the candidates is at least max_raw away (MIN, and AVG
        # since avg >= min), so rows up to max_raw are in their true order; later ones may not be.
        assert max_raw is not None  # there were candidates
        safe = [r for r in rows if r["distance"] <= max_raw]
        cut_off = query.max_distance is not None and max_raw > query.max_distance
        if len(safe) > query.limit or cut_off:
            rows = safe
            break
        candidates *= 4
        if candidates > settings.exact_search_after_candidates:
            exact = True
    hits = [_hit(r, query) for r in rows[: query.limit]]
    if len(rows) <= query.limit:
        return hits, None
    last = rows[query.limit - 1]
    return hits, [last[f"k{i}"] for i in range(len(_key_casts(query)))]


def first_candidates(query: VectorQuery) -> int:
    """How many parts the index is first asked for. Unfiltered, the index's first pass
    (hnsw.ef_search parts) costs the same whatever the number, so ask for a margin that covers
    items of several parts. Filtered, every part beyond that first pass is read by the iterative
    scan, about 1/selectivity parts per match: ask for just enough to prove a page (grown when
    it is not)."""
    if query.filter is None:
        return max(4 * query.limit, 40)
    return query.limit + 1


async def vector_pool(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    query: VectorQuery,
    settings: Settings,
) -> list[SearchHit]:
    """About the ``query.limit`` nearest items, as a candidate pool for fusion: the index reads
    that many parts (more while they belong to fewer items), their items scored exactly.
    Unlike a page it does not read on until its order is proven, so an item just past the
    read may be missing; when the index stops short (a selective filter) it goes exact."""
    candidates, exact = max(query.limit, 1), False
    if query.filter is not None:
        matches, items = await filter_estimate(conn, collection, query.filter)
        exact = exact_is_cheaper(matches, items, candidates, settings.hnsw_ef_search)
    personal = bool(query.user_id) and await has_copies(conn, collection, query.user_id)
    while True:
        rows, n_raw, max_raw = await _run(
            conn, collection, query, None, candidates, exact, personal
        )
        if exact or len(rows) >= query.limit:
            break
        if query.max_distance is not None and max_raw is not None and max_raw > query.max_distance:
            break  # every item past the read is farther than max_distance
        if n_raw < candidates:
            exact = True
            continue
        candidates *= 4
        exact = candidates > settings.exact_search_after_candidates
    return [_hit(r, query) for r in rows[: query.limit]]


def page_start(query: VectorQuery, collection: Collection, tokens: PageTokens) -> int:
    """How many results came before this page: 0 for the first, then what the token says."""
    if not query.page_token:
        return 0
    cursor = tokens.decode(query.page_token, query.scope(collection.collection_id))
    return page_offset(cursor, query.limit)


async def _fetch_on_index(
    conn: asyncpg.Connection | asyncpg.Pool, sql: str, values: list[object]
) -> list[asyncpg.Record]:
    """Run ``sql`` with its candidates taken from the HNSW index, whatever the planner's
    statistics say. Otherwise writes elsewhere in the table (users' copies, which the index
    does not hold) could tip the plan to an exact scan, and the same query would start
    returning a slightly different ranking for users who changed nothing."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired:
            return await _fetch_on_index(acquired, sql, values)
    async with conn.transaction():
        # No bitmap scans either: a filter's payload index would sort every match instead.
        await conn.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_bitmapscan = off")
        return list(await conn.fetch(sql, *values))


async def vector_distances(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    query: VectorQuery,
    object_ids: list[str],
) -> dict[str, SearchHit]:
    """Exact hits for the named items (scored as a search would score them, the user's copies
    included); items the filter excludes, or that are gone, are absent."""
    if not object_ids:
        return {}
    personal = bool(query.user_id) and await has_copies(conn, collection, query.user_id)
    params = SqlParams()
    cte = _scored_sql(collection, query, params, None, personal, object_ids)
    rows = await conn.fetch(
        f"{cte} SELECT object_id, distance, part_id, payload, personal FROM scored", *params.values
    )
    return {r["object_id"]: _hit(r, query) for r in rows}


def _hit(row: asyncpg.Record, query: VectorQuery) -> SearchHit:
    return SearchHit(
        object_id=row["object_id"],
        distance=float(row["distance"]),
        payload=row["payload"],
        matched_part_id=row["part_id"],
        user_id=query.user_id if row["personal"] else "",
    )


async def has_copies(
    conn: asyncpg.Connection | asyncpg.Pool, collection: Collection, user_id: str
) -> bool:
    """Whether the user has any improved copy in this collection (an index lookup)."""
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {items_table(collection)} WHERE user_id = $1)", user_id
        )
    )


def _key_casts(query: VectorQuery) -> list[str]:
    """The types of the sort key's columns (what a page cursor holds)."""
    if query.sort is None:
        return distance_key()[1]
    return payload_sort_key(query.sort, SqlParams())[1]


async def _run(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    query: VectorQuery,
    cursor: list[Any] | None,
    candidates: int,
    exact: bool,
    personal: bool,
) -> tuple[list[asyncpg.Record], int, float | None]:
    params = SqlParams()
    cte = _scored_sql(collection, query, params, None if exact else candidates, personal)
    key: SortKey
    if query.sort is None:
        key, casts = distance_key()
    else:
        key, casts = payload_sort_key(query.sort, params)
    conditions = ["true"]
    if query.max_distance is not None:
        conditions.append(f"distance <= {params.add(query.max_distance)}::float8")
    if query.exclude_object_id:
        conditions.append(f"object_id <> {params.add(query.exclude_object_id)}::text")
    if cursor is not None:
        conditions.append(key.after(cursor, casts, params))
    key_columns = ", ".join(f"{expr} AS k{i}" for i, (expr, _) in enumerate(key.columns))
    limit = params.add(query.limit + 1)
    sql = (
        f"{cte} SELECT st.n_raw, st.max_raw, page.* FROM stats st LEFT JOIN LATERAL ("
        f" SELECT object_id, distance, part_id, payload, personal, {key_columns} FROM scored"
        f" WHERE {' AND '.join(conditions)} ORDER BY {key.order_by()} LIMIT {limit}::int"
        f") page ON true"
    )
    if exact:
        # The planner picks how to find the matches: the payload index, or a scan.
        rows = await conn.fetch(sql, *params.values)
    else:
        rows = await _fetch_on_index(conn, sql, params.values)
    n_raw = int(rows[0]["n_raw"]) if rows else 0
    max_raw = rows[0]["max_raw"] if rows else None
    return [r for r in rows if r["object_id"] is not None], n_raw, max_raw
