"""The postgres loader on a real customer database (a second database on the session's
server): rows by reference, whole tables page by page, and every way a source can be wrong."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument, Unavailable
from es_core.loaders.model import Fields, ItemFailure, Locator, Record, SourceSpec, Stage
from es_core.loaders.postgres import PostgresLoader
from tests.source_postgres import UNREACHABLE_PASSWORD, unreachable_dsn

pytestmark = pytest.mark.integration

FIELD = "items[0].source"
ROWS = 50
SEEN = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)


@dataclass(frozen=True)
class Tables:
    docs: str  # int ids 1..50 with values of many types
    notes: str  # text ids
    view: str
    loose: str  # int ids, two NULL
    odd: str  # values of types JSON has no form for
    plain: str  # an unqualified name (in public)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def tables(source_pg_dsn: str) -> AsyncIterator[Tables]:
    schema = f"shop_{uuid.uuid4().hex[:8]}"
    plain = f"plain_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(source_pg_dsn)
    try:
        await conn.execute(f"""
            CREATE SCHEMA {schema};
            CREATE TABLE {schema}.docs (
                id integer PRIMARY KEY, title text, body text, price numeric(10, 2),
                stock bigint, seen timestamptz, meta jsonb, active boolean, raw bytea,
                tags text[], ref uuid);
            INSERT INTO {schema}.docs
                SELECT i, 'title ' || i, CASE WHEN i % 5 = 0 THEN NULL ELSE 'body ' || i END,
                       i + 0.5, i * 1000, '2024-05-17 08:30:00+00'::timestamptz,
                       jsonb_build_object('n', i, 'kind', 'doc'), i % 2 = 0,
                       CASE WHEN i = 1 THEN 'hello'::bytea WHEN i = 2 THEN '\\xff00'::bytea END,
                       ARRAY['a', 'b'], ('00000000-0000-0000-0000-00000000000' || (i % 10))::uuid
                FROM generate_series(1, {ROWS}) AS i;
            CREATE TABLE {schema}.notes (id text PRIMARY KEY, text text, amount integer);
            INSERT INTO {schema}.notes VALUES ('n-1', 'first', 1), ('n-2', 'second', NULL),
                ('N 3', 'third', 3);
            CREATE VIEW {schema}.docs_view AS SELECT id, title AS text FROM {schema}.docs
                WHERE id <= 10;
            CREATE TABLE {schema}.loose (id integer, text text);
            INSERT INTO {schema}.loose VALUES (1, 'a'), (NULL, 'b'), (2, 'c'), (NULL, 'd');
            CREATE TABLE {schema}.odd (id integer PRIMARY KEY, whole numeric, nan numeric,
                inf float8, span interval, day date, ip inet, spot point, blobs bytea[]);
            INSERT INTO {schema}.odd VALUES (1, 12.000, 'NaN', '-Infinity', '1 day 2 hours',
                '2024-02-29', '10.0.0.1', '(1.5, 2)', ARRAY['ok'::bytea, '\\xff'::bytea]);
            CREATE TABLE public.{plain} (id integer PRIMARY KEY, text text);
            INSERT INTO public.{plain} VALUES (1, 'only');
        """)
        yield Tables(
            f"{schema}.docs",
            f"{schema}.notes",
            f"{schema}.docs_view",
            f"{schema}.loose",
            f"{schema}.odd",
            plain,
        )
        await conn.execute(f"DROP SCHEMA {schema} CASCADE; DROP TABLE public.{plain}")
    finally:
        await conn.close()


def loader_settings(tmp_path: Path, source_dsn: str, **overrides: object) -> Settings:
    sources = {"customer": source_dsn, "down": unreachable_dsn()}
    return Settings(data_dir=tmp_path, postgres_sources=sources, **overrides)  # type: ignore[arg-type]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def loader(
    tmp_path_factory: pytest.TempPathFactory, source_pg_dsn: str
) -> AsyncIterator[PostgresLoader]:
    built = PostgresLoader(loader_settings(tmp_path_factory.mktemp("pgl"), source_pg_dsn))
    yield built
    await built.close()


def spec(table: str, row_id: str = "", database: str = "customer", **fields: object) -> SourceSpec:
    return SourceSpec(
        "postgres",
        Locator(database=database, table=table, row_id=row_id),
        fields=Fields(**fields),  # type: ignore[arg-type]
    )


async def read_all(
    loader: PostgresLoader, source: SourceSpec, checkpoint: str | None, page_size: int
) -> list[tuple[list[str], str]]:
    """(object ids, checkpoint) of each page from ``checkpoint`` on."""
    pages = []
    async for page in loader.pages(source, checkpoint, page_size):
        ids = [item.object_id for item in page.items if isinstance(item, Record)]
        assert len(ids) == len(page.items)
        pages.append((ids, page.checkpoint))
    return pages


# -- fetch ----------------------------------------------------------------------------------


async def test_fetch_reads_each_row_as_json_values_under_the_given_object_id(
    loader: PostgresLoader, tables: Tables
) -> None:
    got = await loader.fetch(
        [("first", spec(tables.docs, "1")), ("2", spec(tables.docs)), ("x", spec(tables.docs, "5"))]
    )
    assert [item.object_id for item in got] == ["first", "2", "x"]
    first, second, fifth = got
    assert isinstance(first, Record) and isinstance(second, Record) and isinstance(fifth, Record)
    assert first.content == {
        "id": 1,
        "title": "title 1",
        "body": "body 1",
        "price": 1.5,
        "stock": 1000,
        "seen": SEEN.isoformat(),
        "meta": {"n": 1, "kind": "doc"},
        "active": False,
        "raw": "hello",  # bytea that is UTF-8 becomes text
        "tags": ["a", "b"],
        "ref": "00000000-0000-0000-0000-000000000001",
    }
    assert isinstance(second.content, dict)
    assert "raw" not in second.content  # bytea that is not UTF-8 is left out
    assert second.content["active"] is True
    assert isinstance(fifth.content, dict) and fifth.content["body"] is None
    assert first.reference == spec(tables.docs, "1")
    assert second.reference == spec(tables.docs, "2")  # an empty row_id is the object id
    assert json.dumps(first.content)  # every value is JSON


async def test_values_json_has_no_form_for_become_text_numbers_or_null(
    loader: PostgresLoader, tables: Tables
) -> None:
    [row] = await loader.fetch([("1", spec(tables.odd))])
    assert isinstance(row, Record)
    assert row.content == {
        "id": 1,
        "whole": 12,
        "nan": "NaN",
        "inf": "-inf",
        "span": 93600.0,
        "day": "2024-02-29",
        "ip": "10.0.0.1",
        "spot": [1.5, 2.0],
        "blobs": ["ok", None],
    }


async def test_text_ids_are_read_as_given(loader: PostgresLoader, tables: Tables) -> None:
    got = await loader.fetch([("a", spec(tables.notes, "N 3")), ("n-2", spec(tables.notes))])
    assert [item.content for item in got if isinstance(item, Record)] == [
        {"id": "N 3", "text": "third", "amount": 3},
        {"id": "n-2", "text": "second", "amount": None},
    ]


async def test_a_missing_row_fails_only_its_item(loader: PostgresLoader, tables: Tables) -> None:
    got = await loader.fetch([("a", spec(tables.docs, "999")), ("b", spec(tables.docs, "4"))])
    assert got[0] == ItemFailure("a", Stage.FETCH, f"no row with id '999' in {tables.docs!r}")
    assert isinstance(got[1], Record) and got[1].object_id == "b"


async def test_an_id_that_does_not_fit_the_id_column_fails_only_its_item(
    loader: PostgresLoader, tables: Tables
) -> None:
    refs = [
        ("a", spec(tables.docs, "3")),
        ("b", spec(tables.docs, "three")),
        ("c", spec(tables.docs, "99999999999")),  # out of integer's range
        ("d", spec(tables.docs, "7")),
    ]
    got = await loader.fetch(refs)
    assert [type(item) for item in got] == [Record, ItemFailure, ItemFailure, Record]
    assert [item.object_id for item in got] == ["a", "b", "c", "d"]
    bad = got[1]
    assert isinstance(bad, ItemFailure) and bad.stage is Stage.FETCH
    assert "'three'" in bad.reason and "\n" not in bad.reason


async def test_one_batch_reads_several_tables_and_sources(
    loader: PostgresLoader, tables: Tables
) -> None:
    got = await loader.fetch(
        [
            ("a", spec(tables.notes, "n-1")),
            ("b", spec(tables.docs, "8")),
            ("c", spec("no_such_table")),
            ("d", spec(tables.docs, "9", id="title")),  # another id column
            ("e", spec(tables.view, "2")),
            ("f", spec(tables.plain, "1")),
            ("g", spec(tables.docs, "1", database="warehouse")),
            ("h", spec("docs; --", "1")),
        ]
    )
    assert [type(item).__name__ for item in got] == [
        "Record",
        "Record",
        "ItemFailure",
        "ItemFailure",
        "Record",
        "Record",
        "ItemFailure",
        "ItemFailure",
    ]
    assert got[6] == ItemFailure("g", Stage.FETCH, "no PostgreSQL source is called 'warehouse'")
    assert got[7] == ItemFailure("h", Stage.FETCH, "'docs; --' is not a table name")
    assert got[2] == ItemFailure(
        "c", Stage.FETCH, "no table or view 'no_such_table' in source 'customer'"
    )
    assert got[3] == ItemFailure("d", Stage.FETCH, f"no row with id '9' in {tables.docs!r}")
    assert got[4].content == {"id": 2, "text": "title 2"}  # type: ignore[union-attr]


async def test_a_column_gone_from_the_table_fails_its_items(
    loader: PostgresLoader, tables: Tables
) -> None:
    got = await loader.fetch([("a", spec(tables.docs, "1", id="sku"))])
    assert got == [ItemFailure("a", Stage.FETCH, f"no column 'sku' in {tables.docs!r}")]


async def test_a_row_larger_than_the_item_limit_fails_its_item(
    tmp_path: Path, source_pg_dsn: str, tables: Tables
) -> None:
    small = PostgresLoader(loader_settings(tmp_path, source_pg_dsn, loader_max_item_bytes=100))
    try:
        got = await small.fetch([("big", spec(tables.docs, "1")), ("ok", spec(tables.notes))])
    finally:
        await small.close()
    big = got[0]
    assert isinstance(big, ItemFailure) and big.object_id == "big"
    assert "more than the 100 allowed" in big.reason
    assert got[1] == ItemFailure("ok", Stage.FETCH, f"no row with id 'ok' in {tables.notes!r}")


# -- check and probe ------------------------------------------------------------------------


async def test_a_source_that_is_not_configured_is_refused_naming_the_configured_ones(
    loader: PostgresLoader, tables: Tables
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        loader.check(spec(tables.docs, database="warehouse"), FIELD, whole=True)
    assert caught.value.violations[0].field == f"{FIELD}.database"
    assert "'warehouse'" in caught.value.message and "customer, down" in caught.value.message
    assert UNREACHABLE_PASSWORD not in caught.value.message
    assert "postgresql://" not in caught.value.message
    with pytest.raises(InvalidArgument) as caught:
        loader.check(spec(tables.docs, database=""), FIELD, whole=False)
    assert caught.value.violations[0].field == f"{FIELD}.database"


@pytest.mark.parametrize(
    "table",
    [
        "docs; DROP TABLE docs",
        'docs" OR 1=1 --',
        "a.b.c",
        "1docs",
        "docs ",
        "",
        "x" * 64,
        "shop.",
    ],
)
def test_a_table_name_that_is_not_an_identifier_is_refused_at_check(
    loader: PostgresLoader, table: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        loader.check(spec(table), FIELD, whole=True)
    assert caught.value.violations[0].field == f"{FIELD}.table"


def test_check_asks_an_import_for_a_whole_table_and_nothing_of_other_loaders(
    loader: PostgresLoader, tables: Tables
) -> None:
    loader.check(spec(tables.docs), FIELD, whole=True)
    loader.check(spec(tables.docs, "3"), FIELD, whole=False)
    loader.check(spec(tables.docs), FIELD, whole=False)
    cases = [
        (spec(tables.docs, "3"), True, "row_id"),
        (
            replace(spec(tables.docs), locator=Locator("b", "k", database="customer", table="t")),
            False,
            "bucket",
        ),
        (
            replace(
                spec(tables.docs), locator=Locator(database="customer", table="t", url="http://x")
            ),
            False,
            "url",
        ),
        (spec(tables.docs, id=""), True, "fields.id"),
        (spec(tables.docs, text=" "), True, "fields.text"),
        (spec(tables.docs, payload=("title", "")), True, "fields.payload[1]"),
        (spec(tables.docs, "9" * 1001), False, "row_id"),
    ]
    for source, whole, path in cases:
        with pytest.raises(InvalidArgument) as caught:
            loader.check(source, FIELD, whole=whole)
        assert caught.value.violations[0].field == f"{FIELD}.{path}"


async def test_probe_passes_a_readable_table_and_a_view(
    loader: PostgresLoader, tables: Tables
) -> None:
    await loader.probe(spec(tables.docs, text="body", payload=("title", "meta")), FIELD)
    await loader.probe(spec(tables.view), FIELD)
    await loader.probe(spec(tables.plain), FIELD)
    await loader.probe(spec(tables.docs, template="{title}: {meta.kind}", text=""), FIELD)


@pytest.mark.parametrize(
    ("fields", "path", "column"),
    [
        ({"id": "sku"}, "fields.id", "sku"),
        ({}, "fields.text", "text"),  # docs has no column "text"
        ({"text": "body", "payload": ("title", "colour")}, "fields.payload[1]", "colour"),
        ({"template": "{title} by {author.name}"}, "fields.template", "author"),
    ],
)
async def test_probe_names_the_field_of_a_missing_column(
    loader: PostgresLoader, tables: Tables, fields: dict[str, Any], path: str, column: str
) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        await loader.probe(replace(spec(tables.docs), fields=Fields(**fields)), FIELD)
    assert caught.value.violations[0].field == f"{FIELD}.{path}"
    assert f"no column {column!r}" in caught.value.message


async def test_probe_names_the_table_when_there_is_none(loader: PostgresLoader) -> None:
    for table in ("no_such_table", "no_schema.docs"):
        with pytest.raises(FailedPrecondition) as caught:
            await loader.probe(spec(table), FIELD)
        assert caught.value.violations[0].field == f"{FIELD}.table"
        assert f"no table or view {table!r} in source 'customer'" in caught.value.message


async def test_an_unreachable_source_is_unavailable_and_its_dsn_never_shown(
    loader: PostgresLoader, tables: Tables
) -> None:
    source = spec(tables.docs, database="down")
    for attempt in (
        loader.probe(source, FIELD),
        loader.fetch([("a", replace(source, locator=replace(source.locator, row_id="1")))]),
        read_all(loader, source, None, 7),
        loader.estimate(source),
    ):
        with pytest.raises(Unavailable) as caught:
            await attempt
        message = caught.value.message
        assert "'down'" in message
        assert UNREACHABLE_PASSWORD not in message and "customer:" not in message
        assert "127.0.0.1" not in message and "\n" not in message


# -- imports --------------------------------------------------------------------------------


async def test_an_import_pages_in_id_order_and_resumes_after_every_checkpoint(
    loader: PostgresLoader, tables: Tables
) -> None:
    source = spec(tables.docs)
    pages = await read_all(loader, source, None, 7)
    assert [len(ids) for ids, _ in pages] == [7] * 7 + [1]
    every = [object_id for ids, _ in pages for object_id in ids]
    assert every == [str(i) for i in range(1, ROWS + 1)]  # numeric order: 2 before 10
    for k, (_, checkpoint) in enumerate(pages):
        rest = await read_all(loader, source, checkpoint, 7)
        assert [i for ids, _ in rest for i in ids] == every[7 * (k + 1) :]


async def test_imported_rows_refer_to_themselves(loader: PostgresLoader, tables: Tables) -> None:
    items = [
        item async for page in loader.pages(spec(tables.notes), None, 10) for item in page.items
    ]
    assert sorted(item.object_id for item in items) == ["N 3", "n-1", "n-2"]
    for item in items:
        assert isinstance(item, Record) and item.reference is not None
        assert item.reference == spec(tables.notes, item.object_id)
        assert await loader.fetch([(item.object_id, item.reference)]) == [item]


async def test_an_import_of_a_view_and_of_text_ids_resumes_exactly(
    loader: PostgresLoader, tables: Tables
) -> None:
    view = await read_all(loader, spec(tables.view), None, 3)
    assert [i for ids, _ in view for i in ids] == [str(i) for i in range(1, 11)]
    notes = await read_all(loader, spec(tables.notes), None, 2)
    ids = [i for page_ids, _ in notes for i in page_ids]
    assert sorted(ids) == ["N 3", "n-1", "n-2"]
    rest = await read_all(loader, spec(tables.notes), notes[0][1], 2)
    assert [i for page_ids, _ in rest for i in page_ids] == ids[2:]


async def test_rows_without_an_id_are_not_imported(loader: PostgresLoader, tables: Tables) -> None:
    pages = await read_all(loader, spec(tables.loose), None, 10)
    assert pages == [(["1", "2"], json.dumps("2"))]


async def test_after_the_last_checkpoint_there_are_no_pages(
    loader: PostgresLoader, tables: Tables
) -> None:
    last = (await read_all(loader, spec(tables.docs), None, 100))[-1][1]
    assert await read_all(loader, spec(tables.docs), last, 100) == []


async def test_a_checkpoint_that_is_not_one_is_refused(
    loader: PostgresLoader, tables: Tables
) -> None:
    for checkpoint in ("not json", "12", '{"a": 1}'):
        with pytest.raises(InvalidArgument):
            await read_all(loader, spec(tables.docs), checkpoint, 7)


async def test_an_import_of_a_table_that_is_gone_fails(loader: PostgresLoader) -> None:
    with pytest.raises(FailedPrecondition):
        await read_all(loader, spec("no_such_table"), None, 7)


async def test_estimate_counts_the_rows(loader: PostgresLoader, tables: Tables) -> None:
    assert await loader.estimate(spec(tables.docs)) == ROWS
    assert await loader.estimate(spec(tables.view)) == 10
    assert await loader.estimate(spec("no_such_table")) is None
