"""Payload fields a collection declares as filterable: each gets a btree index on its values of
the declared type (numbers, or strings by code point) over the collection's table, and filters
on it add a clause over the same expression (es_core/filters/declared.py) that the planner can
answer with the index and estimate from the index's statistics.

The indexes are built in the request, CREATE INDEX CONCURRENTLY, so writes and searches go on
while they build; on a large collection that takes about as long as a scan of its table. The
indexes cover every row, not only the heads that hold payloads: PostgreSQL keeps no statistics
for the expressions of a partial index, and those statistics are what make a range filter's
estimate right. Rows that are not heads hold an empty payload, so their entries are NULL.
A build that fails, or is cancelled, drops its invalid index; one left by a crash is dropped by
the next declaration on that collection.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence

import asyncpg

from es_core.collections.listing import CollectionInfo, describe
from es_core.domain import Collection, FilterableField
from es_core.errors import Aborted, InvalidArgument, NotFound
from es_core.filters.declared import field_expression
from es_core.filters.validation import check_field_path
from es_core.storage.catalog import get_collection, items_table, resolve_collection
from es_core.storage.db import quote_ident

MAX_FILTERABLE_FIELDS = 16
"""Fields one collection may declare: each index costs every write to the collection."""

TYPES = ("keyword", "number")

# A segment PostgreSQL's #> would read as an array position; filters never index arrays.
_POSITION_LIKE = re.compile(r"[ \t\n\v\f\r]*[+-]?[0-9]+")


def check_filterable_fields(fields: Sequence[FilterableField], field_path: str = "fields") -> None:
    """InvalidArgument naming ``fields[i].field`` / ``fields[i].type`` for a bad declaration."""
    if len(fields) > MAX_FILTERABLE_FIELDS:
        raise InvalidArgument.field_error(
            field_path, f"must have at most {MAX_FILTERABLE_FIELDS} fields"
        )
    seen: dict[str, int] = {}
    for i, f in enumerate(fields):
        at = f"{field_path}[{i}]"
        segments = check_field_path(f.field, f"{at}.field")
        for segment in segments:
            if _POSITION_LIKE.fullmatch(segment):
                raise InvalidArgument.field_error(
                    f"{at}.field",
                    f"segment {segment!r} reads as an array position; declare fields of objects",
                )
        if f.type not in TYPES:
            raise InvalidArgument.field_error(f"{at}.type", "must be KEYWORD or NUMBER")
        if f.field in seen:
            raise InvalidArgument.field_error(
                f"{at}.field", f"is declared twice (also {field_path}[{seen[f.field]}])"
            )
        seen[f.field] = i


def index_name(table_name: str, f: FilterableField) -> str:
    """The index of a declared field: stable for a table, field and type."""
    digest = hashlib.sha1(f"{f.type}:{f.field}".encode()).hexdigest()[:12]
    return f"{table_name}_pf_{digest}"


def _index_prefix(table_name: str) -> str:
    return f"{table_name}_pf_"


def _create_sql(collection: Collection, f: FilterableField, *, concurrently: bool) -> str:
    how = "CONCURRENTLY " if concurrently else ""
    return (
        f"CREATE INDEX {how}IF NOT EXISTS {quote_ident(index_name(collection.table_name, f))}"
        f" ON {items_table(collection)} ({field_expression('payload', f)})"
    )


async def _indexes(conn: asyncpg.Connection, collection: Collection) -> dict[str, bool]:
    """The declared-field indexes the collection's table has, and whether each is valid."""
    rows = await conn.fetch(
        "SELECT c.relname, x.indisvalid FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid"
        " WHERE x.indrelid = $1::regclass AND starts_with(c.relname, $2)",
        items_table(collection),
        _index_prefix(collection.table_name),
    )
    return {r["relname"]: r["indisvalid"] for r in rows}


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {quote_ident(name)}")


async def _drop_after_failure(pool: asyncpg.Pool, name: str) -> None:
    """Drop the invalid index a failed or cancelled build left, on a fresh connection (the
    build's own may be mid-cancel)."""
    async with pool.acquire() as conn:
        await _drop(conn, name)


def _lock_key(collection: Collection) -> str:
    return f"es_filterable:{collection.table_name}"


async def set_filterable_fields(
    pool: asyncpg.Pool, collection_id: str, fields: Sequence[FilterableField]
) -> CollectionInfo:
    """Replace the collection's (the blue one's when ``collection_id`` is empty) declared
    filterable fields: build the indexes of new ones, record the set, drop the indexes of
    fields no longer declared. Another declaration running on the same collection: Aborted."""
    check_filterable_fields(fields)
    wanted = list(fields)
    async with pool.acquire() as conn:
        collection = await resolve_collection(conn, collection_id)
        key = _lock_key(collection)
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
            raise Aborted(
                f"another SetFilterableFields is building indexes on collection"
                f" {collection.collection_id!r}; send the request again once it is done"
            )
        try:
            await _build(pool, conn, collection, wanted)
            updated = await conn.fetchval(
                "UPDATE collections SET filterable_fields = $2, update_time = now()"
                " WHERE collection_id = $1 AND delete_time IS NULL RETURNING true",
                collection.collection_id,
                [{"field": f.field, "type": f.type} for f in wanted],
            )
            if not updated:
                raise NotFound(f"collection {collection.collection_id!r} does not exist")
            names = {index_name(collection.table_name, f) for f in wanted}
            for name in await _indexes(conn, collection):
                if name not in names:
                    await _drop(conn, name)
            collection = await get_collection(conn, collection.collection_id)
            return await describe(conn, collection)
        finally:
            try:
                await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", key)
            except (asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # a connection cut mid-call: the pool's reset or its end releases the lock


async def _build(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    collection: Collection,
    wanted: list[FilterableField],
) -> None:
    """Build the missing indexes of ``wanted``, first dropping invalid ones (a build that died)."""
    existing = await _indexes(conn, collection)
    for name, valid in existing.items():
        if not valid:
            await _drop(conn, name)
    for i, f in enumerate(wanted):
        name = index_name(collection.table_name, f)
        if existing.get(name):
            continue
        try:
            await conn.execute(_create_sql(collection, f, concurrently=True))
        except asyncpg.PostgresError as exc:
            left = ""
            try:
                await _drop(conn, name)
            except asyncpg.PostgresError as drop_exc:
                left = (
                    f"; its invalid index {name} could not be dropped ({drop_exc}), the next"
                    " SetFilterableFields on this collection drops it"
                )
            raise Aborted.field_error(
                f"fields[{i}].field",
                f"building its index failed ({exc.__class__.__name__}: {exc}); no declaration"
                f" changed, send the request again{left}",
            ) from None
        except BaseException:
            # Cancelled (the call's deadline): the index the build created is invalid.
            await asyncio.shield(_drop_after_failure(pool, name))
            raise


async def inherit_filterable_fields(
    conn: asyncpg.Connection, source: Collection, destination: Collection
) -> None:
    """A collection a reindex creates declares what its source declares; its table is new and
    empty, so its indexes are built at once, in the caller's transaction."""
    await conn.execute(
        "UPDATE collections SET filterable_fields = $2 WHERE collection_id = $1",
        destination.collection_id,
        [{"field": f.field, "type": f.type} for f in source.filterable_fields],
    )
    for f in source.filterable_fields:
        await conn.execute(_create_sql(destination, f, concurrently=False))
