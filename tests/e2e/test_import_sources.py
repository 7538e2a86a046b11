"""Content by reference, end to end: 300 SciFact abstracts imported from S3 (moto), GCS (the
GCS emulator), a customer's PostgreSQL table, a JSONL file and a mix of the three give the
same search results as the same abstracts upserted inline; bad references fail the item (with
its stage) or the request (naming the field), and never show a credential.

One stack (encoding in-process), its loaders pointed at real servers run by the fixtures. Each
round deletes what the previous one wrote, imports, and searches the dev claims again."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import boto3
import grpc
import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.protobuf import json_format

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, source_pb2, task_pb2, upsert_pb2
from es_harness.beir import Dataset, Document, load_dataset, scifact_dir
from es_harness.throwaway import ThrowawayStack
from tests.e2e.conftest import NO_TRITON
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

N_DOCS = 300
N_CLAIMS = 20
BUCKET = "scifact-e2e"
KEY_ID = "AKIAE2EDISTINCT4Q"
SECRET = "e2e-s3cr3t-Distinctive-71c9"
SOURCE_DB = "customer"


def _pick(data: Dataset) -> tuple[list[Document], dict[str, str]]:
    """The relevant abstracts of dev claims (id % 5 == 0) first, then others, N_DOCS in all;
    the first N_CLAIMS dev claims whose abstracts are all among them."""
    dev = sorted((q for q in data.qrels if int(q) % 5 == 0), key=int)
    chosen: list[str] = []
    for query_id in dev:
        for doc_id in data.qrels[query_id]:
            if doc_id in data.corpus and doc_id not in chosen and len(chosen) < N_DOCS:
                chosen.append(doc_id)
    chosen += [d for d in sorted(data.corpus, key=int) if d not in chosen][: N_DOCS - len(chosen)]
    kept = set(chosen)
    claims = {q: data.queries[q] for q in dev if set(data.qrels[q]) <= kept}
    return [data.corpus[d] for d in chosen], dict(list(claims.items())[:N_CLAIMS])


@pytest.fixture(scope="module")
def scifact() -> tuple[list[Document], dict[str, str]]:
    directory = scifact_dir()
    if not (directory / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {directory}; set ES_SCIFACT_DIR")
    return _pick(load_dataset(directory))


def _record(doc: Document) -> dict[str, Any]:
    return {"id": doc.doc_id, "text": doc.full_text, "title": doc.title}


@pytest.fixture(scope="module")
def sources(
    scifact: tuple[list[Document], dict[str, str]],
    s3_endpoint: str,
    gcs_endpoint: str,
    source_pg_dsn: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """The abstracts put where a customer keeps them: one object per abstract in an S3 and a
    GCS bucket, a table in their PostgreSQL, a JSONL file; and thirds of them for the mix."""
    docs, _ = scifact
    thirds = [docs[:100], docs[100:200], docs[200:]]
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )
    s3.create_bucket(Bucket=BUCKET)
    gcs = storage.Client(
        project="local",
        credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
        client_options={"api_endpoint": gcs_endpoint},
    ).create_bucket(BUCKET)
    for doc in docs:
        body = doc.full_text.encode()
        s3.put_object(Bucket=BUCKET, Key=f"abstracts/{doc.doc_id}.txt", Body=body)
        gcs.blob(f"abstracts/{doc.doc_id}.txt").upload_from_string(body)
    for doc in thirds[1]:
        s3.put_object(Bucket=BUCKET, Key=f"mix/{doc.doc_id}.txt", Body=doc.full_text.encode())

    async def fill_table() -> None:
        conn = await asyncpg.connect(source_pg_dsn)
        try:
            await conn.execute(
                "CREATE TABLE scifact (id integer PRIMARY KEY, text text, title text)"
            )
            await conn.executemany(
                "INSERT INTO scifact VALUES ($1, $2, $3)",
                [(int(d.doc_id), d.full_text, d.title) for d in docs],
            )
            first = ",".join(d.doc_id for d in thirds[0])
            await conn.execute(
                f"CREATE VIEW scifact_first AS SELECT * FROM scifact WHERE id IN ({first})"
            )
        finally:
            await conn.close()

    asyncio.run(fill_table())
    root = Path(tmp_path_factory.mktemp("file-root"))
    (root / "abstracts.jsonl").write_text("".join(json.dumps(_record(d)) + "\n" for d in docs))
    (root / "mix.jsonl").write_text("".join(json.dumps(_record(d)) + "\n" for d in thirds[2]))
    return {
        "ES_S3_ENDPOINT_URL": s3_endpoint,
        "ES_S3_ACCESS_KEY_ID": KEY_ID,
        "ES_S3_SECRET_ACCESS_KEY": SECRET,
        "ES_GCS_ENDPOINT_URL": gcs_endpoint,
        "ES_GCS_PROJECT": "local",
        "ES_POSTGRES_SOURCES": json.dumps({SOURCE_DB: source_pg_dsn}),
        "ES_FILE_ROOTS": json.dumps([str(root)]),
    }


@pytest.fixture(scope="module")
def client(sources: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    data_dir = Path(tmp_path_factory.mktemp("import-stack"))
    with ThrowawayStack(data_dir, extra_env={**NO_TRITON, **sources}) as info:
        with Client(info.grpc_address) as c:
            yield c


def json_source(spec: dict[str, Any]) -> source_pb2.ContentSource:
    return json_format.ParseDict(spec, source_pb2.ContentSource())


S3_ALL = {"loader": "s3", "bucket": {"bucket": BUCKET, "prefix": "abstracts/"}}
GCS_ALL = {"loader": "gcs", "bucket": {"bucket": BUCKET, "prefix": "abstracts/"}}
TABLE_ALL = {"table": {"database": SOURCE_DB, "table": "scifact"}, "fields": {"payload": ["title"]}}
JSONL_ALL = {"path": "abstracts.jsonl"}
MIX = [
    {"table": {"database": SOURCE_DB, "table": "scifact_first"}},
    {"loader": "s3", "bucket": {"bucket": BUCKET, "prefix": "mix/"}},
    {"path": "mix.jsonl"},
]


def _doc_id(object_id: str) -> str:
    """The abstract an object id names: a bucket key "abstracts/123.txt" names 123."""
    return object_id.rsplit("/", 1)[-1].removesuffix(".txt")


def _results(client: Client, claims: dict[str, str]) -> dict[str, list[tuple[str, float]]]:
    return {
        q: [(_doc_id(r.object_id), r.score) for r in client.search_text(text, limit=10).results]
        for q, text in claims.items()
    }


def _stored_ids(client: Client, candidates: list[str]) -> list[str]:
    found: list[str] = []
    for start in range(0, len(candidates), 1000):
        response = client.upsert.GetItems(
            upsert_pb2.GetItemsRequest(object_ids=candidates[start : start + 1000])
        )
        found += [item.object_id for item in response.items]
    return found


def _clear(client: Client, object_ids: list[str]) -> None:
    present = _stored_ids(client, object_ids)
    if present:
        task = client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=present)).task
        done = client.wait_for_task(task.task_id, timeout_seconds=120)
        assert done.status == common_pb2.TASK_STATUS_DONE, done.error


def _all_ids(docs: list[Document]) -> list[str]:
    ids = [d.doc_id for d in docs]
    return ids + [f"abstracts/{i}.txt" for i in ids] + [f"mix/{i}.txt" for i in ids]


def _import(client: Client, specs: list[dict[str, Any]]) -> common_pb2.Task:
    task = client.import_items([json_source(s) for s in specs], page_size=64)
    done = client.wait_for_task(task.task_id, timeout_seconds=900)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    return done


def test_every_source_gives_the_search_results_of_the_inline_upsert(
    client: Client, scifact: tuple[list[Document], dict[str, str]]
) -> None:
    docs, claims = scifact
    assert len(claims) == N_CLAIMS
    task = client.upsert_items(
        [{"object_id": d.doc_id, "payload": {"title": d.title}, "text": d.full_text} for d in docs]
    )
    done = client.wait_for_task(task.task_id, timeout_seconds=900)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    inline = _results(client, claims)
    assert sum(len(r) for r in inline.values()) == 10 * N_CLAIMS

    rounds: list[tuple[str, list[dict[str, Any]]]] = [
        ("s3", [S3_ALL]),
        ("gcs", [GCS_ALL]),
        ("postgres", [TABLE_ALL]),
        ("jsonl", [JSONL_ALL]),
        ("mix", MIX),
    ]
    for name, specs in rounds:
        _clear(client, _all_ids(docs))
        imported = _import(client, specs)
        outcome = imported.import_result
        assert (outcome.imported_count, outcome.failed_count) == (N_DOCS, 0), name
        assert outcome.sources_done == len(specs), name
        assert imported.progress == pytest.approx(1.0), name
        got = _results(client, claims)
        for q in claims:
            assert [d for d, _ in got[q]] == [d for d, _ in inline[q]], (name, q)
            # Texts meet in other batches (other padding) than inline: OpenVINO's bf16 kernels
            # move a score by up to about 1e-4 with that, torch's float32 by 1e-6.
            assert [s for _, s in got[q]] == pytest.approx([s for _, s in inline[q]], abs=1e-3)


def test_an_item_by_reference_keeps_its_source_and_the_tables_payload(
    client: Client, scifact: tuple[list[Document], dict[str, str]]
) -> None:
    docs, _ = scifact
    doc = docs[0]
    task = client.upsert_items(
        [
            {
                "object_id": "ref-table",
                "payload": {"title": "given wins"},
                "source": {
                    "table": {"database": SOURCE_DB, "table": "scifact", "row_id": doc.doc_id},
                    "fields": {"payload": ["title", "id"]},
                },
            },
            {
                "object_id": "ref-s3",
                "source": {
                    "loader": "s3",
                    "bucket": {"bucket": BUCKET, "key": f"abstracts/{doc.doc_id}.txt"},
                },
            },
        ]
    )
    done = client.wait_for_task(task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert done.upsertion.upserted_count == 2 and done.upsertion.failed_count == 0
    items = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=["ref-table", "ref-s3"], include_vectors=True)
    ).items
    by_id = {item.object_id: item for item in items}
    table_item = by_id["ref-table"]
    assert dict(table_item.payload) == {"title": "given wins", "id": float(doc.doc_id)}
    assert table_item.source.table.row_id == doc.doc_id
    assert by_id["ref-s3"].source.bucket.key == f"abstracts/{doc.doc_id}.txt"
    assert [p.text for p in table_item.parts] == [p.text for p in by_id["ref-s3"].parts]
    assert list(table_item.parts[0].vector) == pytest.approx(list(by_id["ref-s3"].parts[0].vector))


def test_bad_references_fail_their_item_with_the_stage_and_no_credential(client: Client) -> None:
    task = client.upsert_items(
        [
            {
                "object_id": "bad-key",
                "source": {"loader": "s3", "bucket": {"bucket": BUCKET, "key": "nope.txt"}},
            },
            {
                "object_id": "bad-bucket",
                "source": {
                    "loader": "gcs",
                    "bucket": {"bucket": "no-such-bucket-x", "key": "a.txt"},
                },
            },
            {
                "object_id": "bad-row",
                "source": {
                    "table": {"database": SOURCE_DB, "table": "scifact", "row_id": "999999999"}
                },
            },
            {"object_id": "bad-file", "source": {"path": "missing.txt"}},
            {"object_id": "empty-doc", "text": ""},
            {"object_id": "good", "text": "vitamin D and bone density"},
        ]
    )
    done = client.wait_for_task(task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    result = done.upsertion
    assert result.upserted_count == 1 and result.failed_count == 5
    stages = {f.object_id: f.stage for f in result.failed_items}
    assert stages == {
        "bad-key": source_pb2.ITEM_STAGE_FETCH,
        "bad-bucket": source_pb2.ITEM_STAGE_FETCH,
        "bad-row": source_pb2.ITEM_STAGE_FETCH,
        "bad-file": source_pb2.ITEM_STAGE_FETCH,
        "empty-doc": source_pb2.ITEM_STAGE_SPLIT,
    }
    reasons = " ".join(f.reason for f in result.failed_items)
    assert SECRET not in reasons and KEY_ID not in reasons and "Traceback" not in reasons
    assert "\n" not in reasons


@pytest.mark.parametrize(
    ("spec", "code", "field"),
    [
        (
            {"loader": "s3", "bucket": {"bucket": "no-such-bucket-y", "prefix": ""}},
            grpc.StatusCode.FAILED_PRECONDITION,
            "sources[0].bucket.bucket",
        ),
        (
            {"table": {"database": SOURCE_DB, "table": "scifact"}, "fields": {"text": "abstract"}},
            grpc.StatusCode.FAILED_PRECONDITION,
            "sources[0].fields.text",
        ),
        (
            {"table": {"database": SOURCE_DB, "table": "no_such_table"}},
            grpc.StatusCode.FAILED_PRECONDITION,
            "sources[0].table.table",
        ),
        (
            {"table": {"database": "elsewhere", "table": "scifact"}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "sources[0].table.database",
        ),
        ({"path": "/etc"}, grpc.StatusCode.INVALID_ARGUMENT, "sources[0].path"),
        ({"path": "../../etc/passwd"}, grpc.StatusCode.INVALID_ARGUMENT, "sources[0].path"),
        ({"url": "http://127.0.0.1:9/x.jsonl"}, grpc.StatusCode.INVALID_ARGUMENT, "sources[0].url"),
        ({"loader": "ftp", "path": "x"}, grpc.StatusCode.INVALID_ARGUMENT, "sources[0].loader"),
    ],
)
def test_a_wrong_source_is_refused_at_the_request_naming_the_field(
    client: Client, spec: dict[str, Any], code: grpc.StatusCode, field: str
) -> None:
    imports = task_pb2.ListTasksRequest(kind=common_pb2.TASK_KIND_IMPORT)
    before = client.tasks.ListTasks(imports)
    error = expect_error(lambda: client.import_items([json_source(spec)]), code, field)
    assert SECRET not in (error.details() or "")
    after = client.tasks.ListTasks(imports)
    assert len(after.tasks) == len(before.tasks)  # nothing was started
