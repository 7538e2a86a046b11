"""ImportItems from a PostgreSQL table and from an S3 bucket against encoding the same texts.

    .venv/bin/python -m bench.import [--quick] [--items N] [--generated N] [--json out.json]

A customer's PostgreSQL (a second embedded server) holds SciFact abstracts (``title + ". " +
text``) in a table; a real S3-compatible server (moto, a process) holds the same abstracts,
one object each. The stack imports the table, then the bucket prefix, each as one ImportItems
task timed from the request to DONE. The baseline is the same texts encoded in this process
with the same model, split the way the worker splits them, while the stack is idle (after a
warm-up import has loaded the model in the worker).

``--generated N`` then imports N short generated rows from the table ``generated`` (no
baseline: the run shows that a large import finishes and reports its progress as it goes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import boto3

from bench.common import Row, base_parser, report, running_stack, wait_all, worker_parts
from embedding_studio.client import AsyncClient
from embedding_studio.v1 import common_pb2, task_pb2
from es_cli.embedded import start_postgres
from es_core.config import Settings
from es_core.encoders.local import SentenceTransformerEncoder, base_model_path
from es_harness.beir import load_dataset, scifact_dir
from es_harness.source_servers import moto_s3

BUCKET = "bench-import"
SOURCE = "customer"
WORDS = "cell protein gene tumor immune signal brain heart drug dose risk trial blood".split()


async def fill_table(dsn: str, ids: list[str], texts: list[str], generated: int) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TABLE abstracts (id integer PRIMARY KEY, text text)")
        await conn.copy_records_to_table(
            "abstracts", records=[(int(i), t) for i, t in zip(ids, texts, strict=True)]
        )
        await conn.execute("CREATE TABLE generated (id integer PRIMARY KEY, text text, n int)")
        await conn.execute(
            "INSERT INTO generated SELECT g, 'item ' || g || ' about '"
            " || ($2::text[])[1 + g % $3] || ' and '"
            " || ($2::text[])[1 + (g / 7) % $3], g % 100"
            " FROM generate_series(0, $1 - 1) g",
            generated,
            WORDS,
            len(WORDS),
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def fill_bucket(endpoint: str, ids: list[str], texts: list[str]) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
    )
    s3.create_bucket(Bucket=BUCKET)
    for doc_id, text in zip(ids, texts, strict=True):
        s3.put_object(Bucket=BUCKET, Key=f"abstracts/{doc_id}.txt", Body=text.encode())


async def timed_import(
    client: AsyncClient, source: dict[str, Any], label: str, every_s: float = 10.0
) -> tuple[float, common_pb2.Task, int]:
    """Seconds from the request to DONE, the final task, and how many progress updates the
    watch saw (printed at most every ``every_s``)."""
    started = time.perf_counter()
    task = await client.import_items([source], page_size=256)
    updates, last_print = 0, 0.0
    final = task
    while final.status not in (common_pb2.TASK_STATUS_DONE, common_pb2.TASK_STATUS_FAILED):
        stream = client.tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task.task_id))
        async for message in stream:
            final = message.task
            updates += 1
            now = time.perf_counter() - started
            if now - last_print >= every_s:
                print(f"  {label} {now:6.0f} s: {final.progress:5.1%} {final.progress_message}")
                last_print = now
    seconds = time.perf_counter() - started
    if final.status != common_pb2.TASK_STATUS_DONE:
        raise RuntimeError(f"{label} import failed: {final.error}")
    return seconds, final, updates


async def main_async(args: argparse.Namespace) -> None:
    corpus = list(load_dataset(scifact_dir()).corpus.values())[: args.items]
    ids, texts = [d.doc_id for d in corpus], [d.full_text for d in corpus]
    n = len(texts)
    settings = Settings()

    with tempfile.TemporaryDirectory(prefix="es-bench-source-") as tmp, moto_s3() as s3_url:
        source_pg = start_postgres(Path(tmp) / "pg")
        try:
            await fill_table(source_pg.dsn, ids, texts, args.generated)
            fill_bucket(s3_url, ids, texts)
            print(f"{n} SciFact abstracts in a PostgreSQL table and in S3 (moto at {s3_url})")
            env = {
                "ES_POSTGRES_SOURCES": json.dumps({SOURCE: source_pg.dsn}),
                "ES_S3_ENDPOINT_URL": s3_url,
                "ES_S3_ACCESS_KEY_ID": "bench",
                "ES_S3_SECRET_ACCESS_KEY": "bench-secret",
            }
            with running_stack(env) as stack:
                async with AsyncClient(stack.grpc_address) as client:
                    rows = await measure(client, texts, settings, args)
        finally:
            source_pg.stop()
    report(
        f"import: {n} SciFact abstracts from PostgreSQL and from S3",
        rows,
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}},
    )


async def measure(
    client: AsyncClient,
    texts: list[str],
    settings: Settings,
    args: argparse.Namespace,
) -> list[Row]:
    n = len(texts)
    warm = await client.upsert_items([{"object_id": "warm-up", "text": "warm-up text"}])
    await wait_all(client, [warm.task_id])  # loads the model in the worker

    encoder = SentenceTransformerEncoder(base_model_path(), batch_size=settings.encode_batch_size)
    encoder.encode_items(texts[:64])  # warm-up, untimed
    started = time.perf_counter()
    for start in range(0, n, 256):
        encoder.encode_items(worker_parts(texts[start : start + 256], settings))
    direct_s = time.perf_counter() - started
    direct = n / direct_s
    print(f"direct encode, split like the worker: {direct:.1f} items/s")

    table = {"table": {"database": SOURCE, "table": "abstracts"}}
    pg_s, pg_task, _ = await timed_import(client, table, "postgres")
    print(f"ImportItems from PostgreSQL: {n} items in {pg_s:.1f} s = {n / pg_s:.1f} items/s")
    s3 = {"loader": "s3", "bucket": {"bucket": BUCKET, "prefix": "abstracts/"}}
    s3_s, s3_task, _ = await timed_import(client, s3, "s3")
    print(f"ImportItems from S3: {n} items in {s3_s:.1f} s = {n / s3_s:.1f} items/s")
    for task, label in ((pg_task, "postgres"), (s3_task, "s3")):
        if task.import_result.imported_count != n or task.import_result.failed_count:
            raise RuntimeError(f"{label}: {task.import_result}")

    rows = [
        Row("ImportItems from PostgreSQL: items/s", n / pg_s, direct, "direct encode, split"),
        Row("ImportItems from S3: items/s", n / s3_s, direct, "direct encode, split"),
        Row("direct encode, split: items/s", direct),
    ]
    if args.generated:
        generated = {"table": {"database": SOURCE, "table": "generated"}}
        gen_s, gen_task, updates = await timed_import(client, generated, "generated", 30.0)
        outcome = gen_task.import_result
        print(
            f"generated: {outcome.imported_count} imported, {outcome.failed_count} failed in"
            f" {gen_s:.0f} s ({updates} progress updates)"
        )
        if outcome.imported_count != args.generated:
            raise RuntimeError(f"generated: {outcome}")
        rows += [
            Row(f"ImportItems of {args.generated} generated rows: items/s", args.generated / gen_s),
            Row("  its progress updates seen", updates),
        ]
    return rows


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "import benchmark")
    parser.add_argument("--items", type=int, help="abstracts to import (default 1000; quick 100)")
    parser.add_argument(
        "--generated",
        type=int,
        default=0,
        help="generated rows imported after (e.g. 100000)",
    )
    args = parser.parse_args()
    if args.items is None:
        args.items = 100 if args.quick else 1000
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
