"""Bulk load of pre-computed vectors through the system against raw COPY + CREATE INDEX.

    .venv/bin/python -m bench.load [--items N] [--quick] [--queries N] [--json out.json]

The items (384-d unit vectors drawn around 1,000 random centres, so neighbours mean something;
no text, no encoding) go through the system's bulk path: UpsertItems with vectors into a
collection that is filled without its HNSW index ('building', as a reindex's green collection
is), then ``es_core.storage.bulk_index.build_vector_index`` (the step a reindex's last subtask
and a bulk import run: CREATE INDEX CONCURRENTLY with ES_INDEX_BUILD_MAINTENANCE_WORK_MEM and
ES_INDEX_BUILD_PARALLEL_WORKERS, then ANALYZE). No request creates an empty collection, so the
bench creates it with ``es_core.storage.catalog.create_collection`` on the stack's database.

The baseline, in the same run and the same PostgreSQL: the same vectors COPYed (binary) into a
bare table, then CREATE INDEX with the same HNSW parameters and session settings. Then gRPC
Search latency (p50/p99, one client) and recall@10 against exact search (numpy, the same
cosine distance) on the collection, and the table and index sizes of both.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from bench.common import Row, base_parser, percentile_ms, report, running_stack, wait_all
from embedding_studio.client import AsyncClient
from embedding_studio.v1 import common_pb2, search_pb2, upsert_pb2
from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.storage import catalog
from es_core.storage.bulk_index import build_vector_index
from es_core.storage.db import create_pool

DIM = 384
LIMIT = 10
CENTRES = 1000
Vectors = np.ndarray[Any, np.dtype[np.float32]]


def unit_vectors(rng: np.random.Generator, n: int) -> Vectors:
    v = rng.standard_normal((n, DIM))
    unit: Vectors = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return unit


def clustered(rng: np.random.Generator, centres: Vectors, n: int) -> Vectors:
    """Unit vectors around random centres (cosine to their centre about 0.7)."""
    v = centres[rng.integers(0, len(centres), n)] + rng.normal(0, 0.05, (n, DIM))
    unit: Vectors = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return unit


def exact_top(vectors: Vectors, queries: Vectors, k: int) -> list[list[int]]:
    """The k nearest items by cosine distance (unit vectors: the largest dot products)."""
    best: list[list[int]] = []
    for q in queries:
        scores = np.empty(len(vectors), dtype=np.float32)
        for s in range(0, len(vectors), 200_000):
            scores[s : s + 200_000] = vectors[s : s + 200_000] @ q
        top = np.argpartition(-scores, k)[:k]
        best.append([int(i) for i in top[np.argsort(-scores[top])]])
    return best


async def create_bulk_collection(dsn: str, settings: Settings) -> Collection:
    """A model of 384-d cosine vectors and its collection, created without its vector index."""
    model = Model(
        model_id=f"bench-load-{uuid.uuid4().hex[:8]}",
        name="bench-load",
        version="1",
        dimensions=DIM,
        metric="cosine",
        aggregation="min",
        source="bench:vectors-only",
        deployed=True,
    )
    pool = await create_pool(settings, dsn, max_size=1)  # the catalog reads jsonb as JSON
    try:
        async with pool.acquire() as conn, conn.transaction():
            await catalog.insert_model(conn, model)
            return await catalog.create_collection(
                conn,
                model.model_id,
                model,
                state="green",
                hnsw_m=settings.hnsw_m,
                hnsw_ef_construction=settings.hnsw_ef_construction,
                vector_index=False,
            )
    finally:
        await pool.close()


async def load_through_api(
    client: AsyncClient, collection_id: str, vectors: Vectors, batch: int, inflight: int
) -> float:
    gate = asyncio.Semaphore(inflight)

    async def send(start: int) -> str:
        request = upsert_pb2.UpsertItemsRequest(
            collection_id=collection_id,
            items=[
                upsert_pb2.UpsertItem(
                    object_id=str(i),
                    parts=[common_pb2.ItemPart(part_id="0", vector=vectors[i].tolist())],
                )
                for i in range(start, min(start + batch, len(vectors)))
            ],
        )
        async with gate:
            reply = await client.upsert.UpsertItems(request, timeout=600)
        return str(reply.task.task_id)

    started = time.perf_counter()
    task_ids = await asyncio.gather(*(send(s) for s in range(0, len(vectors), batch)))
    await wait_all(client, task_ids, timeout_s=24 * 3600)
    return time.perf_counter() - started


async def raw_copy_and_index(
    conn: asyncpg.Connection, settings: Settings, vectors: Vectors
) -> tuple[float, float]:
    """(COPY seconds, CREATE INDEX seconds) into a bare table of the same vectors."""
    await conn.execute("DROP TABLE IF EXISTS bench_raw_load")
    await conn.execute(f"CREATE TABLE bench_raw_load (id bigint, vector vector({DIM}))")
    started = time.perf_counter()
    for s in range(0, len(vectors), 50_000):
        await conn.copy_records_to_table(
            "bench_raw_load",
            records=[(s + i, v) for i, v in enumerate(vectors[s : s + 50_000])],
            columns=["id", "vector"],
        )
    copy_s = time.perf_counter() - started
    await conn.execute("SET statement_timeout = 0")
    await conn.execute(
        "SELECT set_config('maintenance_work_mem', $1, false),"
        " set_config('max_parallel_maintenance_workers', $2, false)",
        settings.index_build_maintenance_work_mem.replace(" ", ""),
        str(settings.index_build_parallel_workers),
    )
    started = time.perf_counter()
    await conn.execute(
        "CREATE INDEX bench_raw_load_vector_idx ON bench_raw_load USING hnsw"
        f" (vector vector_cosine_ops) WITH (m = {settings.hnsw_m},"
        f" ef_construction = {settings.hnsw_ef_construction})"
    )
    return copy_s, time.perf_counter() - started


async def sizes(conn: asyncpg.Connection, table: str, index: str) -> dict[str, int]:
    row = await conn.fetchrow(
        "SELECT pg_relation_size(to_regclass($1)) AS heap,"
        " pg_total_relation_size(to_regclass($1)) AS total,"
        " pg_relation_size(to_regclass($2)) AS vector_index",
        table,
        index,
    )
    return dict(row)


async def main_async(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    centres = unit_vectors(rng, CENTRES)
    vectors = clustered(rng, centres, args.items)
    queries = clustered(rng, centres, args.queries)
    settings = Settings()
    print(f"{args.items} vectors of {DIM} dimensions, {args.queries} queries")
    mib = 1024 * 1024
    with running_stack() as stack:
        async with AsyncClient(stack.grpc_address) as client:
            collection = await create_bulk_collection(stack.postgres_dsn, settings)
            rows_s = await load_through_api(
                client, collection.collection_id, vectors, args.batch, args.inflight
            )
            print(f"rows in (UpsertItems, no vector index): {rows_s:.1f} s")
            pool = await create_pool(settings, stack.postgres_dsn, max_size=2)
            try:
                built = await build_vector_index(pool, settings, collection.collection_id)
            finally:
                await pool.close()
            index_s = float(built["index_seconds"])
            system_s = rows_s + index_s
            print(f"vector index built in {index_s:.1f} s; total {system_s:.1f} s")

            latencies: list[float] = []
            found: list[list[int]] = []
            for q in queries:
                request = search_pb2.SearchRequest(
                    query_vector=common_pb2.Vector(values=q.tolist()),
                    limit=LIMIT,
                    collection_id=collection.collection_id,
                )
                started = time.perf_counter()
                reply = await client.search.Search(request, timeout=60)
                latencies.append(time.perf_counter() - started)
                found.append([int(r.object_id) for r in reply.results])
            truth = exact_top(vectors, queries, LIMIT)
            recall = float(
                np.mean([len(set(f) & set(t)) / LIMIT for f, t in zip(found, truth, strict=True)])
            )

            conn = await asyncpg.connect(stack.postgres_dsn)
            try:
                await register_vector(conn)
                system_sizes = await sizes(
                    conn,
                    catalog.items_table(collection),
                    catalog.vector_index_name(collection.table_name),
                )
                copy_s, raw_index_s = await raw_copy_and_index(conn, settings, vectors)
                raw_sizes = await sizes(conn, "bench_raw_load", "bench_raw_load_vector_idx")
            finally:
                await conn.close()
    raw_s = copy_s + raw_index_s
    n = args.items
    rows = [
        Row("load through the system: items/s", n / system_s, n / raw_s, "COPY + CREATE INDEX"),
        Row("  rows in (UpsertItems, no index): s", rows_s, copy_s, "COPY"),
        Row("  vector index build: s", index_s, raw_index_s, "CREATE INDEX"),
        Row("search p50: ms", percentile_ms(latencies, 50)),
        Row("search p99: ms", percentile_ms(latencies, 99)),
        Row("recall@10 vs exact search", recall),
        Row(
            "collection table (heap): MiB",
            system_sizes["heap"] / mib,
            raw_sizes["heap"] / mib,
            "bare table",
        ),
        Row(
            "collection table + indexes: MiB",
            system_sizes["total"] / mib,
            raw_sizes["total"] / mib,
            "bare table + HNSW",
        ),
        Row(
            "HNSW index: MiB",
            system_sizes["vector_index"] / mib,
            raw_sizes["vector_index"] / mib,
            "bare HNSW",
        ),
        Row(
            "bytes per item, table + indexes",
            system_sizes["total"] / n,
            raw_sizes["total"] / n,
            "bare",
        ),
    ]
    report(
        f"bulk load: {n} vectors of {DIM} dimensions, m={settings.hnsw_m},"
        f" ef_construction={settings.hnsw_ef_construction},"
        f" maintenance_work_mem={settings.index_build_maintenance_work_mem},"
        f" {settings.index_build_parallel_workers} parallel workers",
        rows,
        args.json,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "system_sizes": system_sizes,
            "raw_sizes": raw_sizes,
        },
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "bulk load benchmark")
    parser.add_argument("--items", type=int, help="vectors (default 1,000,000; quick 20,000)")
    parser.add_argument("--queries", type=int, help="search queries (default 500; quick 100)")
    parser.add_argument("--batch", type=int, default=1000, help="items per UpsertItems")
    parser.add_argument("--inflight", type=int, default=4, help="UpsertItems calls at once")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.items is None:
        args.items = 20_000 if args.quick else 1_000_000
    if args.queries is None:
        args.queries = 100 if args.quick else 500
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
