"""The S3 loader against a real S3-compatible server (moto, run as a process)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import boto3
import pytest
import pytest_asyncio
from pydantic import SecretStr

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument, Unavailable
from es_core.loaders.model import ItemFailure, Locator, Record, SourceSpec, Stage
from es_core.loaders.s3 import S3Loader
from es_harness.source_servers import free_port
from tests.integration.loader_checks import (
    assert_resumes,
    csv_file,
    expected_jsonl_keys,
    jsonl_file,
    parquet_file,
)

KEY_ID = "AKIADISTINCTIVE7Q3X"
SECRET = "s3cr3t-Distinctive-9f2c"
CAP = 1000


def s3_settings(endpoint: str) -> Settings:
    return Settings(
        s3_endpoint_url=endpoint,
        s3_access_key_id=SecretStr(KEY_ID),
        s3_secret_access_key=SecretStr(SECRET),
        loader_max_item_bytes=CAP,
    )


def spec(bucket: str = "docs", key: str = "", prefix: str = "", **more: str) -> SourceSpec:
    return SourceSpec("s3", Locator(bucket=bucket, key=key, prefix=prefix, **more))


@pytest.fixture(scope="module")
def filled(s3_endpoint: str) -> None:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    client.create_bucket(Bucket="docs")
    client.create_bucket(Bucket="empty")
    objects = {
        "notes/a.txt": b"alpha",
        "notes/c.json": b'{"x": 1}',
        "big.bin": b"x" * (CAP + 1),
        "data/docs.jsonl": jsonl_file(),
        "data/rows.csv": csv_file(),
        "data/rows.parquet": parquet_file(),
        "mixed/a.txt": b"a",
        "mixed/b.jsonl": b'{"id": "m1"}\n{"id": "m2"}\n{"id": "m3"}\n',
        "mixed/c.txt": b"c",
        "mixed/folder/": b"",
    }
    objects |= {f"many/{n:03}.txt": b"item %d" % n for n in range(20)}
    for key, body in objects.items():
        client.put_object(Bucket="docs", Key=key, Body=body)
    client.put_object(
        Bucket="docs", Key="notes/b", Body=b"<p>hi</p>", ContentType="text/html; charset=utf-8"
    )


@pytest_asyncio.fixture(loop_scope="session")
async def loader(s3_endpoint: str, filled: None) -> AsyncIterator[S3Loader]:
    built = S3Loader(s3_settings(s3_endpoint))
    yield built
    await built.close()


def no_secrets(items: list[Record | ItemFailure]) -> None:
    for item in items:
        if isinstance(item, ItemFailure):
            assert KEY_ID not in item.reason and SECRET not in item.reason


async def test_fetch_reads_each_reference_under_its_id(loader: S3Loader) -> None:
    a, b, c = spec(key="notes/a.txt"), spec(key="notes/b"), spec(key="notes/c.json")
    got = await loader.fetch([("1", a), ("2", b), ("3", c)])
    assert got == [
        Record("1", b"alpha", "text/plain", {}, a),
        Record("2", b"<p>hi</p>", "text/html; charset=utf-8", {}, b),
        Record("3", b'{"x": 1}', "application/json", {}, c),
    ]


async def test_spec_content_type_wins(loader: S3Loader) -> None:
    given = SourceSpec("s3", Locator(bucket="docs", key="notes/a.txt"), content_type="text/html")
    [record] = await loader.fetch([("1", given)])
    assert isinstance(record, Record) and record.content_type == "text/html"


async def test_bad_references_fail_alone_with_short_reasons(loader: S3Loader) -> None:
    got = await loader.fetch(
        [
            ("nobucket", spec(bucket="no-such-bucket", key="x.txt")),
            ("nokey", spec(key="notes/missing.txt")),
            ("big", spec(key="big.bin")),
            ("records", spec(key="data/docs.jsonl")),
            ("good", spec(key="notes/a.txt")),
        ]
    )
    assert got[:4] == [
        ItemFailure("nobucket", Stage.FETCH, "s3://no-such-bucket/x.txt: no such bucket"),
        ItemFailure("nokey", Stage.FETCH, "s3://docs/notes/missing.txt: no such object"),
        ItemFailure(
            "big", Stage.FETCH, f"s3://docs/big.bin is {CAP + 1} bytes, more than the {CAP} allowed"
        ),
        ItemFailure(
            "records",
            Stage.PARSE,
            "s3://docs/data/docs.jsonl: a record file holds many items; import it with ImportItems",
        ),
    ]
    assert isinstance(got[4], Record)
    no_secrets(got)


@pytest.mark.parametrize(
    ("locator", "whole", "field"),
    [
        (Locator(key="a.txt"), False, "f.bucket"),
        (Locator(bucket="docs"), False, "f.key"),
        (Locator(bucket="docs", key="a.txt", prefix="notes/"), False, "f.prefix"),
        (Locator(bucket="docs", key="a.txt", table="t"), False, "f.table"),
        (Locator(bucket="docs", url="http://x/"), True, "f.url"),
        (Locator(bucket="docs", key="a.jsonl", prefix="data/"), True, "f.key"),
        (Locator(prefix="data/"), True, "f.bucket"),
    ],
)
def test_check_refuses_malformed_locators(
    loader: S3Loader, locator: Locator, whole: bool, field: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        loader.check(SourceSpec("s3", locator), "f", whole=whole)
    assert [v.field for v in raised.value.violations] == [field]


async def test_import_of_a_prefix_pages_and_resumes(loader: S3Loader) -> None:
    whole = spec(prefix="many/")
    keys = await assert_resumes(loader, whole, 7)
    assert keys == [f"many/{n:03}.txt" for n in range(20)]
    [page, *_] = [p async for p in loader.pages(whole, None, 7)]
    first = page.items[0]
    assert first == Record("many/000.txt", b"item 0", "text/plain", {}, spec(key="many/000.txt"))
    assert await loader.estimate(whole) == 20


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("data/docs.jsonl", expected_jsonl_keys("s3://docs/data/docs.jsonl")),
        ("data/rows.csv", [f"c{n}" for n in range(1, 31)]),
        ("data/rows.parquet", [f"q{n}" for n in range(1, 31)]),
    ],
)
async def test_import_of_a_record_file_streams_and_resumes(
    loader: S3Loader, key: str, expected: list[str]
) -> None:
    assert await assert_resumes(loader, spec(key=key), 7) == expected
    assert await loader.estimate(spec(key=key)) is None


async def test_records_carry_their_fields_and_no_reference(loader: S3Loader) -> None:
    [page] = [p async for p in loader.pages(spec(prefix="mixed/b"), None, 10)]
    assert page.items[0] == Record("m1", {"id": "m1"}, "", {}, None)


async def test_import_crosses_blobs_and_record_files(loader: S3Loader) -> None:
    keys = await assert_resumes(loader, spec(prefix="mixed/"), 2)
    assert keys == ["mixed/a.txt", "m1", "m2", "m3", "mixed/c.txt"]


async def test_empty_source_has_no_pages(loader: S3Loader) -> None:
    assert [p async for p in loader.pages(spec(bucket="empty"), None, 7)] == []
    assert [p async for p in loader.pages(spec(prefix="nothing/"), None, 7)] == []


async def test_probe_names_the_missing_bucket_or_key(loader: S3Loader) -> None:
    await loader.probe(spec(prefix="many/"), "src")
    with pytest.raises(FailedPrecondition) as raised:
        await loader.probe(spec(bucket="no-such-bucket"), "src")
    assert [v.field for v in raised.value.violations] == ["src.bucket"]
    with pytest.raises(FailedPrecondition) as raised:
        await loader.probe(spec(key="data/none.jsonl"), "src")
    assert [v.field for v in raised.value.violations] == ["src.key"]


async def test_unreachable_service_is_unavailable_without_secrets() -> None:
    down = S3Loader(s3_settings(f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(Unavailable) as raised:
        await down.fetch([("1", spec(key="notes/a.txt"))])
    assert KEY_ID not in str(raised.value) and SECRET not in str(raised.value)
    with pytest.raises(Unavailable):
        await down.probe(spec(prefix="many/"), "src")
    await down.close()
