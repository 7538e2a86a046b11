"""Models, collections and the blue alias: which table holds which model's vectors."""

from __future__ import annotations

import hashlib

import asyncpg

from es_core.domain import (
    Collection,
    CollectionKind,
    CollectionState,
    FilterableField,
    Metric,
    Model,
)
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.storage.db import quote_ident

# pgvector's distance operator and HNSW operator class per metric; smaller is closer for each.
DISTANCE_OPERATORS: dict[Metric, str] = {"cosine": "<=>", "dot": "<#>", "euclidean": "<->"}
HNSW_OPCLASSES: dict[Metric, str] = {
    "cosine": "vector_cosine_ops",
    "dot": "vector_ip_ops",
    "euclidean": "vector_l2_ops",
}


def items_table(collection: Collection) -> str:
    """The collection's table of item vectors, quoted for SQL."""
    return quote_ident(collection.table_name)


def postings_table(collection: Collection) -> str:
    """(term, object_id, tf, dl): the lexical index of the collection's original items."""
    return quote_ident(collection.table_name + "_postings")


def termstats_table(collection: Collection) -> str:
    """Deltas of document frequency and length per term ('' = documents overall)."""
    return quote_ident(collection.table_name + "_termstats")


def versions_table(collection: Collection) -> str:
    """(object_id, version, deleted): the latest write applied to each item, tombstones too."""
    return quote_ident(collection.table_name + "_versions")


COLLECTION_SELECT = """
SELECT c.collection_id, c.table_name, c.state, c.hnsw_m, c.hnsw_ef_construction,
       c.create_time AS c_create_time, c.reindex_task_id, c.text_search_config,
       c.signal_fields, c.ranking_version, c.kind, c.index_state, c.filterable_fields,
       r.spec AS ranking_spec, m.*
FROM collections c JOIN models m USING (model_id)
LEFT JOIN ranking_specs r
  ON r.collection_id = c.collection_id AND r.version = c.ranking_version
"""


def model_from_row(row: asyncpg.Record) -> Model:
    return Model(
        model_id=row["model_id"],
        name=row["name"],
        version=row["version"],
        dimensions=row["dimensions"],
        metric=row["metric"],
        aggregation=row["aggregation"],
        source=row["source"],
        parent_model_id=row["parent_model_id"],
        deployed=row["deployed"],
        create_time=row["create_time"],
    )


def collection_from_row(row: asyncpg.Record) -> Collection:
    return Collection(
        collection_id=row["collection_id"],
        model=model_from_row(row),
        table_name=row["table_name"],
        state=row["state"],
        hnsw_m=row["hnsw_m"],
        hnsw_ef_construction=row["hnsw_ef_construction"],
        create_time=row["c_create_time"],
        reindex_task_id=None if row["reindex_task_id"] is None else str(row["reindex_task_id"]),
        text_search_config=row["text_search_config"],
        ranking_spec=row["ranking_spec"],
        ranking_version=row["ranking_version"],
        signal_fields=tuple(row["signal_fields"]),
        kind=row["kind"],
        index_state=row["index_state"],
        filterable_fields=tuple(
            FilterableField(f["field"], f["type"]) for f in row["filterable_fields"]
        ),
    )


async def get_model(conn: asyncpg.Connection, model_id: str) -> Model:
    row = await conn.fetchrow("SELECT * FROM models WHERE model_id = $1", model_id)
    if row is None:
        raise NotFound(f"model {model_id!r} does not exist")
    return model_from_row(row)


async def insert_model(conn: asyncpg.Connection, model: Model) -> None:
    await conn.execute(
        "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation, source,"
        " parent_model_id, deployed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        model.model_id,
        model.name,
        model.version,
        model.dimensions,
        model.metric,
        model.aggregation,
        model.source,
        model.parent_model_id,
        model.deployed,
    )


async def get_collection(
    conn: asyncpg.Connection, collection_id: str, *, kind: CollectionKind | None = "items"
) -> Collection:
    """A live collection of ``kind`` (None: of either kind); a deleted one, or one of the other
    kind, is NOT_FOUND like one that never existed: a categories collection is never what a
    request about items names."""
    row = await conn.fetchrow(
        COLLECTION_SELECT + " WHERE c.collection_id = $1 AND c.delete_time IS NULL"
        " AND ($2::text IS NULL OR c.kind = $2)",
        collection_id,
        kind,
    )
    if row is None:
        raise NotFound(f"collection {collection_id!r} does not exist")
    return collection_from_row(row)


async def get_blue_collection(conn: asyncpg.Connection) -> Collection:
    row = await conn.fetchrow(
        COLLECTION_SELECT + " WHERE c.collection_id = (SELECT collection_id FROM blue_collection)"
    )
    if row is None:
        raise FailedPrecondition("no blue collection is set")
    return collection_from_row(row)


MAX_COLLECTION_ID_CHARS = 128


def check_collection_id(collection_id: str, field_path: str = "collection_id") -> None:
    """A collection id a request names: set, and at most 128 characters."""
    if not collection_id:
        raise InvalidArgument.field_error(field_path, "must name a collection")
    if len(collection_id) > MAX_COLLECTION_ID_CHARS:
        raise InvalidArgument.field_error(
            field_path, f"must be at most {MAX_COLLECTION_ID_CHARS} characters"
        )


async def resolve_collection(
    conn: asyncpg.Connection, collection_id: str, *, field: str = "collection_id"
) -> Collection:
    """The named collection, or the blue one when the name is empty."""
    if not collection_id:
        return await get_blue_collection(conn)
    check_collection_id(collection_id, field)
    try:
        return await get_collection(conn, collection_id)
    except NotFound as exc:
        raise NotFound.field_error(field, exc.message) from None


def table_name_for(collection_id: str) -> str:
    """A safe, stable table name whatever characters the collection id has."""
    return "items_" + hashlib.sha1(collection_id.encode()).hexdigest()[:16]


async def create_collection(
    conn: asyncpg.Connection,
    collection_id: str,
    model: Model,
    *,
    state: CollectionState,
    hnsw_m: int,
    hnsw_ef_construction: int,
    text_search_config: str = "english",
    kind: CollectionKind = "items",
    vector_index: bool = True,
) -> Collection:
    """Register the collection and create its table and indexes, in the caller's transaction;
    ``vector_index`` False leaves the HNSW index for a bulk fill to build once its rows are in
    (``es_core.storage.bulk_index``): the collection is then ``index_state`` 'building'."""
    table_name = table_name_for(collection_id)
    await conn.execute(
        "INSERT INTO collections (collection_id, model_id, table_name, state, hnsw_m,"
        " hnsw_ef_construction, text_search_config, kind, index_state)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        collection_id,
        model.model_id,
        table_name,
        state,
        hnsw_m,
        hnsw_ef_construction,
        text_search_config,
        kind,
        "ready" if vector_index else "building",
    )
    await create_items_table(
        conn, table_name, model, hnsw_m, hnsw_ef_construction, vector_index=vector_index
    )
    return await get_collection(conn, collection_id, kind=kind)


async def create_items_table(
    conn: asyncpg.Connection,
    table_name: str,
    model: Model,
    hnsw_m: int,
    hnsw_ef_construction: int,
    *,
    vector_index: bool = True,
) -> None:
    """The table of one collection with its unique and HNSW indexes, in the caller's
    transaction (the HNSW one only when ``vector_index``)."""
    table = quote_ident(table_name)
    # One row per part; the is_average row doubles as the item's head row (one per item).
    await conn.execute(
        f"""
        CREATE TABLE {table} (
            row_id      bigserial PRIMARY KEY,
            object_id   text NOT NULL,
            part_id     text NOT NULL,
            is_average  boolean NOT NULL,
            user_id     text,
            text        text,
            vector      vector({int(model.dimensions)}) NOT NULL,
            payload     jsonb NOT NULL DEFAULT '{{}}',
            update_time timestamptz NOT NULL DEFAULT now(),
            version     bigint NOT NULL DEFAULT 0,
            source      jsonb,
            content_hash bytea
        )
        """
    )
    await conn.execute(
        f"CREATE UNIQUE INDEX ON {table} (object_id, coalesce(user_id, ''), is_average, part_id)"
    )
    await conn.execute(f"CREATE INDEX ON {table} (user_id, object_id) WHERE user_id IS NOT NULL")
    if vector_index:
        await conn.execute(vector_index_sql(table_name, model, hnsw_m, hnsw_ef_construction))
    # Term filters test containment of the heads' payloads (es_core/filters/compiler.py). No
    # pending list: rows written wait in it until vacuum, and every search would read it whole.
    await conn.execute(
        f"CREATE INDEX {quote_ident(table_name + '_payload_gin')} ON {table}"
        " USING gin (payload jsonb_path_ops) WITH (fastupdate = off)"
        " WHERE is_average AND user_id IS NULL"
    )
    await conn.execute("SELECT es_lexical_create($1)", table_name)
    await conn.execute("SELECT es_versions_create($1)", table_name)


def vector_index_name(table_name: str) -> str:
    """The name of a collection table's HNSW index (PostgreSQL's own choice for it, which the
    tables created before bulk fills already carry)."""
    return table_name + "_vector_idx"


def vector_index_sql(
    table_name: str,
    model: Model,
    hnsw_m: int,
    hnsw_ef_construction: int,
    *,
    concurrently: bool = False,
) -> str:
    """CREATE INDEX of the HNSW index over the original parts (what searches rank)."""
    how = "CONCURRENTLY IF NOT EXISTS" if concurrently else "IF NOT EXISTS"
    return (
        f"CREATE INDEX {how} {quote_ident(vector_index_name(table_name))}"
        f" ON {quote_ident(table_name)} USING hnsw (vector {HNSW_OPCLASSES[model.metric]})"
        f" WITH (m = {int(hnsw_m)}, ef_construction = {int(hnsw_ef_construction)})"
        " WHERE user_id IS NULL AND NOT is_average"
    )


async def set_blue_collection(conn: asyncpg.Connection, collection_id: str) -> None:
    """Point the alias at a collection, keeping the one it pointed at as the rollback target."""
    async with conn.transaction():
        previous = await conn.fetchval("SELECT collection_id FROM blue_collection FOR UPDATE")
        await conn.execute(
            "INSERT INTO blue_collection (singleton, collection_id, previous_collection_id)"
            " VALUES (true, $1, $2) ON CONFLICT (singleton) DO UPDATE SET"
            " collection_id = EXCLUDED.collection_id,"
            " previous_collection_id = EXCLUDED.previous_collection_id, switch_time = now()",
            collection_id,
            previous,
        )
        if previous is not None and previous != collection_id:
            await conn.execute(
                "UPDATE collections SET state = 'retired', update_time = now()"
                " WHERE collection_id = $1",
                previous,
            )
        await conn.execute(
            "UPDATE collections SET state = 'blue', update_time = now() WHERE collection_id = $1",
            collection_id,
        )
