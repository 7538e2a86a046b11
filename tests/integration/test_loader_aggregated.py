"""A mix of sources read through the registry: the postgres loader on a real customer database
and a small counting loader registered beside it, each spec going to the loader it names."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.model import (
    ItemFailure,
    Locator,
    Page,
    Record,
    SourceSpec,
    Stage,
)
from es_core.loaders.registry import ENTRY_POINT_GROUP, Loaders

pytestmark = pytest.mark.integration

FIELD = "items[0].source"


class CountingLoader:
    """Items ``c0`` … ``c{n-1}`` of a source whose ``key`` is ``n`` (``"?"``: n unknown to
    ``estimate``, 5 to read); remembers each fetch it was asked for."""

    def __init__(self, settings: Settings) -> None:
        self.fetched: list[list[str]] = []

    def check(self, spec: SourceSpec, field: str, *, whole: bool) -> None:
        if not spec.locator.key:
            raise InvalidArgument.field_error(f"{field}.key", "required")

    async def probe(self, spec: SourceSpec, field: str) -> None:
        self.check(spec, field, whole=True)

    async def fetch(self, refs: Sequence[tuple[str, SourceSpec]]) -> list[Record | ItemFailure]:
        self.fetched.append([object_id for object_id, _ in refs])
        return [Record(object_id, {"id": object_id, "text": "counted"}) for object_id, _ in refs]

    async def pages(
        self, spec: SourceSpec, checkpoint: str | None, page_size: int
    ) -> AsyncIterator[Page]:
        start = 0 if checkpoint is None else int(checkpoint) + 1
        count = _count(spec)
        for first in range(start, count, page_size):
            last = min(first + page_size, count) - 1
            items: list[Record | ItemFailure] = [
                Record(f"c{i}", {"id": f"c{i}"}) for i in range(first, last + 1)
            ]
            yield Page(items, str(last))

    async def estimate(self, spec: SourceSpec) -> int | None:
        return None if spec.locator.key == "?" else _count(spec)

    async def close(self) -> None:
        pass


def _count(spec: SourceSpec) -> int:
    return 5 if spec.locator.key == "?" else int(spec.locator.key)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def table(source_pg_dsn: str) -> AsyncIterator[str]:
    name = f"mixed_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(source_pg_dsn)
    try:
        await conn.execute(f"""
            CREATE TABLE {name} (id integer PRIMARY KEY, text text);
            INSERT INTO {name} SELECT i, 'row ' || i FROM generate_series(1, 11) AS i;
        """)
        yield name
        await conn.execute(f"DROP TABLE {name}")
    finally:
        await conn.close()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def loaders(
    tmp_path_factory: pytest.TempPathFactory, source_pg_dsn: str
) -> AsyncIterator[Loaders]:
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("agg")),
        postgres_sources={"customer": source_pg_dsn},  # type: ignore[dict-item]
    )
    points = [
        EntryPoint("postgres", "es_core.loaders.postgres:PostgresLoader", ENTRY_POINT_GROUP),
        EntryPoint("counting", f"{__name__}:CountingLoader", ENTRY_POINT_GROUP),
    ]
    registry = Loaders(settings, found=points)
    yield registry
    await registry.close()


def rows(table: str, row_id: str = "") -> SourceSpec:
    return SourceSpec("postgres", Locator(database="customer", table=table, row_id=row_id))


def counted(n: str) -> SourceSpec:
    return SourceSpec("counting", Locator(key=n))


async def read_all(
    loader: AggregatedLoader, specs: list[SourceSpec], checkpoint: str | None, page_size: int
) -> list[tuple[list[str], str]]:
    return [
        ([item.object_id for item in page.items], page.checkpoint)
        async for page in loader.pages(specs, checkpoint, page_size)
    ]


async def test_a_mixed_fetch_keeps_the_order_and_calls_each_loader_once(
    loaders: Loaders, table: str
) -> None:
    counting = loaders.get("counting", "loader")
    assert isinstance(counting, CountingLoader)
    counting.fetched.clear()
    refs = [
        ("a", counted("1")),
        ("b", rows(table, "2")),
        ("c", counted("1")),
        ("d", rows(table, "99")),
        ("e", rows(table, "3")),
    ]
    got = await AggregatedLoader(loaders).fetch(refs)
    assert [item.object_id for item in got] == ["a", "b", "c", "d", "e"]
    assert [type(item).__name__ for item in got] == [
        "Record",
        "Record",
        "Record",
        "ItemFailure",
        "Record",
    ]
    assert got[1].content == {"id": 2, "text": "row 2"}  # type: ignore[union-attr]
    assert got[2].content == {"id": "c", "text": "counted"}  # type: ignore[union-attr]
    assert counting.fetched == [["a", "c"]]


async def test_a_loader_missing_where_the_fetch_runs_fails_only_its_items(
    loaders: Loaders, table: str
) -> None:
    gone = SourceSpec("vanished", Locator(key="x"))
    got = await AggregatedLoader(loaders).fetch([("a", gone), ("b", rows(table, "1"))])
    failure = got[0]
    assert isinstance(failure, ItemFailure) and failure.stage is Stage.FETCH
    assert failure.object_id == "a" and "'vanished'" in failure.reason
    assert isinstance(got[1], Record)


async def test_an_import_of_several_sources_resumes_inside_the_right_one_at_every_page(
    loaders: Loaders, table: str
) -> None:
    loader = AggregatedLoader(loaders)
    specs = [rows(table), counted("6"), counted("0"), rows(table)]
    pages = await read_all(loader, specs, None, 4)
    every = [object_id for ids, _ in pages for object_id in ids]
    table_ids = [str(i) for i in range(1, 12)]
    assert every == table_ids + [f"c{i}" for i in range(6)] + table_ids
    assert [len(ids) for ids, _ in pages] == [4, 4, 3, 4, 2, 4, 4, 3]  # one source a page
    assert json.loads(pages[3][1]) == {"source": 1, "checkpoint": "3"}
    for k, (_, checkpoint) in enumerate(pages):
        rest = await read_all(loader, specs, checkpoint, 4)
        done = sum(len(ids) for ids, _ in pages[: k + 1])
        assert [i for ids, _ in rest for i in ids] == every[done:]


@pytest.mark.parametrize(
    "checkpoint",
    [
        "not json",
        "[]",
        '{"source": 4, "checkpoint": null}',
        '{"source": true, "checkpoint": null}',
        '{"source": 0, "checkpoint": 3}',
        '{"source": 0}',
    ],
)
async def test_a_checkpoint_that_is_not_one_is_refused(
    loaders: Loaders, table: str, checkpoint: str
) -> None:
    with pytest.raises(InvalidArgument):
        await read_all(AggregatedLoader(loaders), [rows(table), counted("2")], checkpoint, 4)


async def test_an_unknown_loader_is_refused_naming_the_loader_field(loaders: Loaders) -> None:
    loader = AggregatedLoader(loaders)
    unknown = SourceSpec("ftp", Locator(path="/x"))
    with pytest.raises(InvalidArgument) as caught:
        loader.check(unknown, FIELD, whole=True)
    assert caught.value.violations[0].field == f"{FIELD}.loader"
    assert "'ftp'" in caught.value.message and "counting, postgres" in caught.value.message
    with pytest.raises(InvalidArgument) as caught:
        await loader.probe(unknown, FIELD)
    assert caught.value.violations[0].field == f"{FIELD}.loader"


async def test_check_and_probe_go_to_the_named_loader(loaders: Loaders, table: str) -> None:
    loader = AggregatedLoader(loaders)
    loader.check(counted("3"), FIELD, whole=True)
    loader.check(rows(table), FIELD, whole=True)
    await loader.probe(rows(table), FIELD)
    # A loader names the flat locator's fields; the request nests them (ContentSource).
    with pytest.raises(InvalidArgument) as caught:
        loader.check(counted(""), FIELD, whole=True)
    assert caught.value.violations[0].field == f"{FIELD}.bucket.key"
    assert caught.value.message.startswith(f"{FIELD}.bucket.key: ")
    with pytest.raises(InvalidArgument) as caught:
        loader.check(rows(table, "1"), FIELD, whole=True)
    assert caught.value.violations[0].field == f"{FIELD}.table.row_id"


async def test_estimate_sums_the_sources_unless_one_is_unknown(
    loaders: Loaders, table: str
) -> None:
    loader = AggregatedLoader(loaders)
    assert await loader.estimate([rows(table), counted("6")]) == 17
    assert await loader.estimate([rows(table), counted("?")]) is None
    assert await loader.estimate([]) == 0
