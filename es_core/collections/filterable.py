"""Payload fields a collection declares as filterable: each gets a btree index on its values of
the declared type (numbers, or strings by code point) over the collection's table, and filters
on it add a clause over the same expression (es_core/filters/declared.py) that the planner can
answer with the index and estimate from the index's statistics.

A declaration is a task (kind ``filterable_fields``, on the bulk workers' queue): the request
is checked and the task recorded at once (``start_declaration``), and a worker builds the
indexes, CREATE INDEX CONCURRENTLY, so writes and searches go on while they build; on a large
collection that takes about as long as a scan of its table per field. Only then is the new set
recorded and the indexes of fields left out dropped (``run_declaration``). The indexes cover
every row, not only the heads that hold payloads: PostgreSQL keeps no statistics for the
expressions of a partial index, and those statistics are what make a range filter's estimate
right. Rows that are not heads hold an empty payload, so their entries are NULL.
A build that fails, or is cancelled (CancelTask, or the worker stopping), drops its invalid
index and leaves the previous declaration as it was; one left by a crash is dropped by the next
run on that collection (the same task run again, or a later declaration).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import asyncpg

from es_core.collections.listing import CollectionInfo, describe
from es_core.context import Context
from es_core.domain import Collection, FilterableField, FilterableType, Progress
from es_core.errors import Aborted, InvalidArgument, NotFound
from es_core.filters.declared import field_expression
from es_core.filters.validation import check_field_path
from es_core.storage.catalog import get_collection, items_table, resolve_collection
from es_core.storage.db import quote_ident
from es_core.tasks.model import Task, TaskKind
from es_core.tasks.store import create_task, merge_task_params, parse_task_id

MAX_FILTERABLE_FIELDS = 16
"""Fields one collection may declare: each index costs every write to the collection."""

TYPES = ("keyword", "number")

TASK_KIND: TaskKind = "filterable_fields"
MAX_IDEMPOTENCY_KEY_CHARS = 128

CANCEL_CHECK_SECONDS = 1.0
"""How often a build asks its task whether it was canceled (each ask renews its lease)."""

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


@dataclass(frozen=True)
class StartedDeclaration:
    task: Task
    # The collection as it is when the request is answered (its previous declaration until
    # the task is done).
    collection: CollectionInfo
    created: bool


def fields_to_json(fields: Sequence[FilterableField]) -> list[dict[str, str]]:
    return [{"field": f.field, "type": f.type} for f in fields]


def fields_from_json(stored: Sequence[dict[str, str]]) -> list[FilterableField]:
    return [FilterableField(d["field"], cast(FilterableType, d["type"])) for d in stored]


async def start_declaration(
    ctx: Context,
    collection_id: str,
    fields: Sequence[FilterableField],
    idempotency_key: str = "",
) -> StartedDeclaration:
    """The SetFilterableFields use case: the task is recorded, then sent once it is committed
    (a retry with the same key sends nothing)."""
    async with ctx.pool.acquire() as conn:
        started = await create_declaration(
            conn, collection_id, fields, idempotency_key=idempotency_key
        )
    await ctx.send_if_created(started.task, started.created)
    return started


async def create_declaration(
    conn: asyncpg.Connection,
    collection_id: str,
    fields: Sequence[FilterableField],
    *,
    idempotency_key: str = "",
) -> StartedDeclaration:
    """Check a declaration of the collection's (the blue one's when ``collection_id`` is empty)
    filterable fields and record its pending task (not sent). Bad fields: InvalidArgument
    naming the field; an unknown collection: NotFound naming ``collection_id``; another
    declaration of the same collection not yet ended: Aborted naming its task. Nothing is
    written for a refused request.

    A declaration in flight refuses the next rather than queueing it: the set replaces the
    previous one, so a queued declaration would undo (or be undone by) the one building, in an
    order the bulk workers, several of which may run at once, do not promise."""
    check_filterable_fields(fields)
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument.field_error(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )
    async with conn.transaction():
        # The request as sent is what an idempotency key stands for; what it resolved to (the
        # blue collection of the moment) is added to the params afterwards.
        task, created = await create_task(
            conn,
            TASK_KIND,
            {"collection_id": collection_id, "fields": fields_to_json(fields)},
            idempotency_key=idempotency_key,
        )
        if not created:
            collection = await get_collection(conn, str(task.params["resolved_collection_id"]))
            return StartedDeclaration(task, await describe(conn, collection), False)
        collection = await resolve_collection(conn, collection_id)
        # Two requests for one collection take their turns here, so the second sees the first.
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            f"es_filterable_start:{collection.table_name}",
        )
        running = await conn.fetchval(
            "SELECT task_id FROM tasks WHERE kind = $1 AND status IN ('pending', 'processing')"
            " AND params->>'resolved_collection_id' = $2 AND task_id <> $3"
            " ORDER BY create_time LIMIT 1",
            TASK_KIND,
            collection.collection_id,
            parse_task_id(task.task_id),
        )
        if running is not None:
            raise Aborted(
                f"another SetFilterableFields (task {running}) is building indexes on collection"
                f" {collection.collection_id!r}; watch it or cancel it, then send the request"
                " again"
            )
        task = await merge_task_params(
            conn, task.task_id, {"resolved_collection_id": collection.collection_id}
        )
        return StartedDeclaration(task, await describe(conn, collection), True)


async def run_declaration(pool: asyncpg.Pool, task: Task, progress: Progress) -> dict[str, Any]:
    """The worker's part of a declaration: build the indexes of new fields, record the set,
    drop the indexes of fields no longer declared. Safe to run again (a replay rebuilds
    nothing that is built, and records the same set). Canceled mid-build: the invalid index is
    dropped, nothing recorded, ``{"stopped": True}``. A build that fails: Aborted naming
    ``fields[i].field``, nothing recorded."""
    wanted = fields_from_json(task.params["fields"])
    async with pool.acquire() as conn:
        collection = await get_collection(conn, str(task.params["resolved_collection_id"]))
        key = _lock_key(collection)
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtext($1))", key):
            raise Aborted(
                f"another SetFilterableFields is building indexes on collection"
                f" {collection.collection_id!r}; restart this task once it is done"
            )
        try:
            built = await _build(pool, conn, collection, wanted, progress)
            if built is None or not await progress(1.0, "recording the declaration"):
                return {"stopped": True}
            updated = await conn.fetchval(
                "UPDATE collections SET filterable_fields = $2, update_time = now()"
                " WHERE collection_id = $1 AND delete_time IS NULL RETURNING true",
                collection.collection_id,
                fields_to_json(wanted),
            )
            if not updated:
                raise NotFound(f"collection {collection.collection_id!r} does not exist")
            names = {index_name(collection.table_name, f) for f in wanted}
            dropped = 0
            for name in await _indexes(conn, collection):
                if name not in names:
                    await _drop(conn, name)
                    dropped += 1
            return {
                "collection_id": collection.collection_id,
                "filterable_fields": fields_to_json(wanted),
                "indexes_built": built,
                "indexes_dropped": dropped,
            }
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
    progress: Progress,
) -> int | None:
    """Build the missing indexes of ``wanted``, first dropping invalid ones (a build that
    died); how many were built, or None once the task was canceled."""
    existing = await _indexes(conn, collection)
    for name, valid in existing.items():
        if not valid:
            await _drop(conn, name)
    missing = [
        (i, f)
        for i, f in enumerate(wanted)
        if not existing.get(index_name(collection.table_name, f))
    ]
    for done, (i, f) in enumerate(missing):
        message = f"building the index of {f.field!r} ({done + 1}/{len(missing)})"
        if not await _create_index(
            pool, conn, collection, i, f, progress, done / len(missing), message
        ):
            return None
    return len(missing)


async def _create_index(
    pool: asyncpg.Pool,
    conn: asyncpg.Connection,
    collection: Collection,
    i: int,
    f: FilterableField,
    progress: Progress,
    fraction: float,
    message: str,
) -> bool:
    """Build one index, asking the task every CANCEL_CHECK_SECONDS whether it still runs;
    False once it was canceled (the build stopped and its invalid index dropped)."""
    name = index_name(collection.table_name, f)
    if not await progress(fraction, message):
        return False
    build = asyncio.ensure_future(conn.execute(_create_sql(collection, f, concurrently=True)))
    try:
        while not (await asyncio.wait({build}, timeout=CANCEL_CHECK_SECONDS))[0]:
            if not await progress(fraction, message):
                build.cancel()
                with contextlib.suppress(asyncio.CancelledError, asyncpg.PostgresError):
                    await build
                await asyncio.shield(_drop_after_failure(pool, name))
                return False
        build.result()
        return True
    except asyncpg.PostgresError as exc:
        left = ""
        try:
            await _drop(conn, name)
        except asyncpg.PostgresError as drop_exc:
            left = (
                f"; its invalid index {name} could not be dropped ({drop_exc}), the next"
                " run on this collection drops it"
            )
        raise Aborted.field_error(
            f"fields[{i}].field",
            f"building its index failed ({exc.__class__.__name__}: {exc}); no declaration"
            f" changed, restart the task or send the request again{left}",
        ) from None
    except BaseException:
        # This run itself cancelled (the worker stopping): the index the build created is invalid.
        build.cancel()
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
