"""The GCS loader against a real GCS emulator (gcp-storage-emulator, run as a process)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument, Unavailable
from es_core.loaders.gcs import GcsLoader
from es_core.loaders.model import ItemFailure, Locator, Record, SourceSpec, Stage
from es_harness.source_servers import free_port
from tests.integration.loader_checks import (
    assert_resumes,
    csv_file,
    expected_jsonl_keys,
    jsonl_file,
    parquet_file,
)

CAP = 1000


def spec(bucket: str = "docs", key: str = "", prefix: str = "") -> SourceSpec:
    return SourceSpec("gcs", Locator(bucket=bucket, key=key, prefix=prefix))


@pytest.fixture(scope="module")
def filled(gcs_endpoint: str) -> None:
    client = storage.Client(
        project="local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": gcs_endpoint},
    )
    bucket = client.create_bucket("docs")
    client.create_bucket("empty")
    objects = {
        "notes/a.txt": b"alpha",
        "big.bin": b"x" * (CAP + 1),
        "data/docs.jsonl": jsonl_file(),
        "data/rows.csv": csv_file(),
        "data/rows.parquet": parquet_file(),
        "mixed/a.txt": b"a",
        "mixed/b.ndjson": b'{"id": "m1"}\n{"id": "m2"}\n',
        "mixed/c.txt": b"c",
    }
    objects |= {f"many/{n:03}.txt": b"item %d" % n for n in range(20)}
    for key, body in objects.items():
        bucket.blob(key).upload_from_string(body, content_type="application/octet-stream")
    bucket.blob("notes/page").upload_from_string(b"<p>hi</p>", content_type="text/html")


@pytest_asyncio.fixture(loop_scope="session")
async def loader(gcs_endpoint: str, filled: None) -> AsyncIterator[GcsLoader]:
    built = GcsLoader(
        Settings(gcs_endpoint_url=gcs_endpoint, gcs_project="local", loader_max_item_bytes=CAP)
    )
    yield built
    await built.close()


async def test_fetch_reads_each_reference_under_its_id(loader: GcsLoader) -> None:
    a, page = spec(key="notes/a.txt"), spec(key="notes/page")
    got = await loader.fetch([("1", a), ("2", page)])
    assert got == [
        Record("1", b"alpha", "text/plain", {}, a),
        Record("2", b"<p>hi</p>", "text/html", {}, page),
    ]


async def test_bad_references_fail_alone(loader: GcsLoader) -> None:
    got = await loader.fetch(
        [
            ("nobucket", spec(bucket="no-such-bucket", key="x.txt")),
            ("nokey", spec(key="notes/missing.txt")),
            ("big", spec(key="big.bin")),
            ("records", spec(key="data/rows.csv")),
            ("good", spec(key="notes/a.txt")),
        ]
    )
    assert got[:4] == [
        ItemFailure("nobucket", Stage.FETCH, "gs://no-such-bucket/x.txt: no such object"),
        ItemFailure("nokey", Stage.FETCH, "gs://docs/notes/missing.txt: no such object"),
        ItemFailure(
            "big", Stage.FETCH, f"gs://docs/big.bin is {CAP + 1} bytes, more than the {CAP} allowed"
        ),
        ItemFailure(
            "records",
            Stage.PARSE,
            "gs://docs/data/rows.csv: a record file holds many items; import it with ImportItems",
        ),
    ]
    assert isinstance(got[4], Record)


def test_check_refuses_a_reference_without_a_key(loader: GcsLoader) -> None:
    with pytest.raises(InvalidArgument) as raised:
        loader.check(spec(prefix="many/"), "items[2].source", whole=False)
    assert [v.field for v in raised.value.violations] == ["items[2].source.prefix"]


async def test_import_of_a_prefix_pages_and_resumes(loader: GcsLoader) -> None:
    keys = await assert_resumes(loader, spec(prefix="many/"), 7)
    assert keys == [f"many/{n:03}.txt" for n in range(20)]
    assert await loader.estimate(spec(prefix="many/")) == 20


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("data/docs.jsonl", expected_jsonl_keys("gs://docs/data/docs.jsonl")),
        ("data/rows.csv", [f"c{n}" for n in range(1, 31)]),
        ("data/rows.parquet", [f"q{n}" for n in range(1, 31)]),
    ],
)
async def test_import_of_a_record_file_streams_and_resumes(
    loader: GcsLoader, key: str, expected: list[str]
) -> None:
    assert await assert_resumes(loader, spec(key=key), 7) == expected


async def test_import_crosses_blobs_and_record_files(loader: GcsLoader) -> None:
    keys = await assert_resumes(loader, spec(prefix="mixed/"), 2)
    assert keys == ["mixed/a.txt", "m1", "m2", "mixed/c.txt"]


async def test_empty_bucket_has_no_pages(loader: GcsLoader) -> None:
    assert [p async for p in loader.pages(spec(bucket="empty"), None, 7)] == []


async def test_probe_names_the_missing_bucket_or_key(loader: GcsLoader) -> None:
    await loader.probe(spec(prefix="many/"), "src")
    with pytest.raises(FailedPrecondition) as raised:
        await loader.probe(spec(bucket="no-such-bucket"), "src")
    assert [v.field for v in raised.value.violations] == ["src.bucket"]
    with pytest.raises(FailedPrecondition) as raised:
        await loader.probe(spec(key="data/none.jsonl"), "src")
    assert [v.field for v in raised.value.violations] == ["src.key"]


async def test_unreachable_service_is_unavailable() -> None:
    down = GcsLoader(Settings(gcs_endpoint_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(Unavailable) as raised:
        await down.fetch([("1", spec(key="notes/a.txt"))])
    assert str(raised.value) == "GCS cannot be reached"
    await down.close()
