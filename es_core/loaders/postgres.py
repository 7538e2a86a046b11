"""The ``postgres`` loader: rows of a customer's own PostgreSQL table or view, by reference
(one row by its id) or as an import (the whole table).

A source is named, never given: ``locator.database`` names a DSN in ES_POSTGRES_SOURCES. A row
is read whole (``SELECT *``) as a JSON-able dict (``pg_values``); the ingest pipeline picks
its id, text and payload through the spec's ``Fields``.

An import pages on the id column (keyset: ``WHERE id > last ORDER BY id LIMIT n``), one short
query per page, so neither a table nor a transaction is held while a page is encoded; an index
on the id column keeps each page cheap. A page's checkpoint is the JSON text of its last id
in PostgreSQL's text form, which casts back exactly. Rows whose id is NULL are never read (they
have no id an item could carry), and an id column that is not unique loses the rows that share
a page's last id with it: the id column should be a key.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.errors import (
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
    connection_reason,
    first_line,
)
from es_core.loaders.model import Fields, ItemFailure, Page, Record, SourceSpec, Stage
from es_core.loaders.pg_names import TableName, parse_table, quote_ident, template_columns
from es_core.loaders.pg_values import content_bytes, row_content
from es_core.loaders.records import record_of
from es_core.storage.db import CONNECTION_ERRORS

# Every query on a source is cancelled past this; a count for an estimate much sooner.
STATEMENT_TIMEOUT_SECONDS = 60
COUNT_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 10
MAX_ROW_ID_CHARS = 1000

# Connecting failed, or the connection was lost: the source as a whole is unavailable.
_UNREACHABLE = (
    OSError,
    TimeoutError,
    *CONNECTION_ERRORS,
    asyncpg.exceptions.InvalidAuthorizationSpecificationError,  # role or password refused
    asyncpg.exceptions.InvalidCatalogNameError,  # the DSN's database does not exist
)
_OTHER_LOCATORS = ("bucket", "key", "prefix", "path", "url")
_READABLE_KINDS = ("r", "p", "v", "m", "f")  # tables, partitioned, views, materialized, foreign


@dataclass(frozen=True)
class _Table:
    name: TableName
    columns: dict[str, str]  # column -> type (format_type, without a length modifier)

    def id_type(self, column: str) -> str:
        return self.columns[column]


class PostgresLoader:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pools: dict[str, asyncpg.Pool] = {}
        self._pools_lock = asyncio.Lock()

    # -- SourceLoader -------------------------------------------------------------------

    def check(self, spec: SourceSpec, field: str, *, whole: bool) -> None:
        locator = spec.locator
        for name in _OTHER_LOCATORS:
            if getattr(locator, name):
                raise InvalidArgument.field_error(
                    f"{field}.{name}", "not read by the postgres loader: give database and table"
                )
        self._dsn(locator.database, field)
        _table_name(locator.table, field)
        if whole and locator.row_id:
            raise InvalidArgument.field_error(
                f"{field}.row_id", "an import reads the whole table: leave row_id empty"
            )
        if len(locator.row_id) > MAX_ROW_ID_CHARS:
            raise InvalidArgument.field_error(
                f"{field}.row_id", f"at most {MAX_ROW_ID_CHARS} characters"
            )
        for path, column in _named_columns(spec.fields):
            if not column.strip():
                raise InvalidArgument.field_error(f"{field}.{path}", "a column name is required")

    async def probe(self, spec: SourceSpec, field: str) -> None:
        locator = spec.locator
        self._dsn(locator.database, field)
        name = _table_name(locator.table, field)
        async with self._connection(locator.database) as conn:
            table = await _find_table(conn, name)
            if table is None:
                raise FailedPrecondition.field_error(
                    f"{field}.table",
                    f"no table or view {str(name)!r} in source {locator.database!r}",
                )
            for path, column in _named_columns(spec.fields):
                if column not in table.columns:
                    raise FailedPrecondition.field_error(
                        f"{field}.{path}", f"no column {column!r} in {str(name)!r}"
                    )
            try:  # readable by the source's role, and its ids can be ordered
                await conn.execute(
                    f"SELECT * FROM {name.sql} ORDER BY {quote_ident(spec.fields.id)} LIMIT 0"
                )
            except _UNREACHABLE:
                raise
            except asyncpg.PostgresError as exc:
                raise FailedPrecondition.field_error(f"{field}.table", first_line(exc)) from None

    async def fetch(self, refs: Sequence[tuple[str, SourceSpec]]) -> list[Record | ItemFailure]:
        results: list[Record | ItemFailure | None] = [None] * len(refs)
        groups: dict[tuple[str, str, str], list[int]] = defaultdict(list)
        for i, (_, spec) in enumerate(refs):
            locator = spec.locator
            groups[(locator.database, locator.table, spec.fields.id)].append(i)
        for (database, table_text, id_column), indexes in groups.items():
            group = [refs[i] for i in indexes]
            found = await self._fetch_group(database, table_text, id_column, group)
            for i, result in zip(indexes, found, strict=True):
                results[i] = result
        return [result for result in results if result is not None]

    async def pages(
        self, spec: SourceSpec, checkpoint: str | None, page_size: int
    ) -> AsyncIterator[Page]:
        locator = spec.locator
        self._dsn(locator.database, "source")
        name = _table_name(locator.table, "source")
        after = _checkpoint_id(checkpoint)
        async with self._connection(locator.database) as conn:
            table = await _find_table(conn, name)
        if table is None or spec.fields.id not in table.columns:
            raise FailedPrecondition(
                f"source {locator.database!r} has no table or view {str(name)!r} "
                f"with a column {spec.fields.id!r}"
            )
        id_sql = quote_ident(spec.fields.id)
        first = (
            f"SELECT s.{id_sql}::text, s.* FROM {name.sql} AS s WHERE s.{id_sql} IS NOT NULL "
            f"ORDER BY s.{id_sql} LIMIT $1"
        )
        following = (
            f"SELECT s.{id_sql}::text, s.* FROM {name.sql} AS s "
            f"WHERE s.{id_sql} > $2::text::{table.id_type(spec.fields.id)} "
            f"ORDER BY s.{id_sql} LIMIT $1"
        )
        where = f"a row of {str(name)!r}"
        while True:
            async with self._connection(locator.database) as conn:
                if after is None:
                    rows = await conn.fetch(first, page_size)
                else:
                    rows = await conn.fetch(following, page_size, after)
            if not rows:
                return
            items = [self._item(spec, row, where) for row in rows]
            after = rows[-1][0]
            yield Page(items, json.dumps(after))
            if len(rows) < page_size:
                return

    async def estimate(self, spec: SourceSpec) -> int | None:
        locator = spec.locator
        name = parse_table(locator.table)
        if name is None or locator.database not in self._settings.postgres_sources:
            return None
        async with self._connection(locator.database) as conn:
            table = await _find_table(conn, name)
            if table is None:
                return None
            tuples = await conn.fetchval(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass($1)", name.sql
            )
            if tuples is not None and tuples > 0:
                return int(tuples)
            try:  # never analysed, or a view: count, if that is quick
                async with conn.transaction(readonly=True):
                    await conn.execute(f"SET LOCAL statement_timeout = '{COUNT_TIMEOUT_SECONDS}s'")
                    return int(await conn.fetchval(f"SELECT count(*) FROM {name.sql}"))
            except asyncpg.exceptions.QueryCanceledError:
                return None

    async def close(self) -> None:
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            await pool.close()

    # -- reading rows --------------------------------------------------------------------

    async def _fetch_group(
        self,
        database: str,
        table_text: str,
        id_column: str,
        refs: list[tuple[str, SourceSpec]],
    ) -> list[Record | ItemFailure]:
        """One source's refs to one table under one id column: one query, or one per ref
        when an id does not cast to the column's type."""
        name = parse_table(table_text)
        if database not in self._settings.postgres_sources:
            return _failures(refs, f"no PostgreSQL source is called {database!r}")
        if name is None:
            return _failures(refs, f"{table_text!r} is not a table name")
        row_ids = [spec.locator.row_id or object_id for object_id, spec in refs]
        async with self._connection(database) as conn:
            table = await _find_table(conn, name)
            if table is None:
                return _failures(refs, f"no table or view {str(name)!r} in source {database!r}")
            if id_column not in table.columns:
                return _failures(refs, f"no column {id_column!r} in {str(name)!r}")
            query = (
                f"SELECT t.ref, s.* FROM unnest($1::text[]) AS t(ref) CROSS JOIN LATERAL "
                f"(SELECT * FROM {name.sql} WHERE {quote_ident(id_column)} = "
                f"t.ref::{table.id_type(id_column)}) AS s"
            )
            found: dict[str, Any]
            try:
                found = {row[0]: row for row in await conn.fetch(query, row_ids)}
            except _UNREACHABLE:
                raise
            except asyncpg.PostgresError as exc:
                if not _bad_value(exc):
                    return _failures(refs, f"reading {str(name)!r} failed: {first_line(exc)}")
                found = await _fetch_one_by_one(conn, query, row_ids)
        results: list[Record | ItemFailure] = []
        for (object_id, spec), row_id in zip(refs, row_ids, strict=True):
            row = found.get(row_id)
            if row is None:
                reason = f"no row with id {row_id!r} in {str(name)!r}"
                results.append(ItemFailure(object_id, Stage.FETCH, reason))
            elif isinstance(row, str):
                results.append(ItemFailure(object_id, Stage.FETCH, row))
            else:
                item = self._item(spec, row, f"row {row_id!r} of {str(name)!r}")
                results.append(replace(item, object_id=object_id))
        return results

    def _item(self, spec: SourceSpec, row: asyncpg.Record, where: str) -> Record | ItemFailure:
        """A row read after its key column (the id's text, or the ref that found it) as an
        item under its id, referring to it by that id."""
        key = row[0]
        content = row_content(list(row.items())[1:])
        size = content_bytes(content)
        limit = self._settings.loader_max_item_bytes
        if size > limit:
            reason = f"{where} is {size} bytes as JSON, more than the {limit} allowed"
            return ItemFailure(str(content.get(spec.fields.id, "")), Stage.FETCH, reason)
        reference = replace(spec, locator=replace(spec.locator, row_id=key))
        return record_of(spec, content, where, reference)

    # -- connections ---------------------------------------------------------------------

    def _dsn(self, name: str, field: str) -> str:
        sources = self._settings.postgres_sources
        configured = (
            f"configured: {', '.join(sorted(sources))}"
            if sources
            else "none is configured in ES_POSTGRES_SOURCES"
        )
        if not name:
            raise InvalidArgument.field_error(
                f"{field}.database", f"required: the name of a PostgreSQL source ({configured})"
            )
        if name not in sources:
            raise InvalidArgument.field_error(
                f"{field}.database", f"no PostgreSQL source is called {name!r} ({configured})"
            )
        return sources[name].get_secret_value()

    async def _pool(self, database: str) -> asyncpg.Pool:
        async with self._pools_lock:
            pool = self._pools.get(database)
            if pool is None:
                pool = await asyncpg.create_pool(
                    self._dsn(database, "source"),
                    min_size=0,
                    max_size=2,
                    timeout=CONNECT_TIMEOUT_SECONDS,
                    init=_init_connection,
                    server_settings={
                        "application_name": "embedding-studio-loader",
                        "statement_timeout": f"{STATEMENT_TIMEOUT_SECONDS}s",
                        "default_transaction_read_only": "on",
                    },
                )
                self._pools[database] = pool
            return pool

    @asynccontextmanager
    async def _connection(self, database: str) -> AsyncIterator[asyncpg.Connection]:
        """A connection to the source; Unavailable (with a short reason, never the DSN) when
        it cannot be reached or is lost."""
        pool = await self._pool(database)
        try:
            async with pool.acquire() as conn:
                yield conn
        except _UNREACHABLE as exc:
            raise Unavailable(
                f"PostgreSQL source {database!r} cannot be reached now "
                f"({connection_reason(exc)}); retry later"
            ) from None
        except asyncpg.exceptions.ClientConfigurationError:
            raise Unavailable(f"PostgreSQL source {database!r} has a malformed DSN") from None


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _find_table(conn: asyncpg.Connection, name: TableName) -> _Table | None:
    """The table or view and its columns, or None when there is none by that name."""
    rows = await conn.fetch(
        "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_class c "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
        "WHERE c.oid = to_regclass($1) AND c.relkind::text = ANY($2::text[]) ORDER BY a.attnum",
        name.sql,
        list(_READABLE_KINDS),
    )
    if not rows:
        return None
    return _Table(name, {row[0]: row[1] for row in rows})


async def _fetch_one_by_one(
    conn: asyncpg.Connection, query: str, row_ids: list[str]
) -> dict[str, Any]:
    """Each id on its own: the row found under it, or (text) why it does not fit the column."""
    found: dict[str, Any] = {}
    for row_id in dict.fromkeys(row_ids):
        try:
            for row in await conn.fetch(query, [row_id]):
                found[row[0]] = row
        except _UNREACHABLE:
            raise
        except asyncpg.PostgresError as exc:
            if not _bad_value(exc):
                raise
            found[row_id] = f"id {row_id!r} does not fit the id column: {first_line(exc)}"
    return found


def _bad_value(error: asyncpg.PostgresError) -> bool:
    """A value that does not cast to a type (SQLSTATE class 22: data exception)."""
    return str(getattr(error, "sqlstate", "") or "").startswith("22")


def _failures(refs: Iterable[tuple[str, SourceSpec]], reason: str) -> list[Record | ItemFailure]:
    return [ItemFailure(object_id, Stage.FETCH, reason) for object_id, _ in refs]


def _table_name(text: str, field: str) -> TableName:
    if not text:
        raise InvalidArgument.field_error(
            f"{field}.table", "required: the table or view to read (table or schema.table)"
        )
    name = parse_table(text)
    if name is None:
        raise InvalidArgument.field_error(
            f"{field}.table",
            f"{text!r} is not a table name: give table or schema.table, each part letters, "
            "digits, _ or $ (at most 63, not starting with a digit)",
        )
    return name


def _named_columns(fields: Fields) -> list[tuple[str, str]]:
    """(request path under the source, column) for each column the fields name."""
    named = [("fields.id", fields.id)]
    if fields.template:
        named += [("fields.template", column) for column in template_columns(fields.template)]
    else:
        named.append(("fields.text", fields.text))
    named += [(f"fields.payload[{i}]", column) for i, column in enumerate(fields.payload)]
    return named


def _checkpoint_id(checkpoint: str | None) -> str | None:
    if checkpoint is None:
        return None
    try:
        after = json.loads(checkpoint)
    except ValueError:
        after = None
    if not isinstance(after, str):
        raise InvalidArgument(f"not a checkpoint of the postgres loader: {checkpoint[:80]!r}")
    return after
