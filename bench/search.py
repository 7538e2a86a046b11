"""Vector search through gRPC against the same SQL run directly with asyncpg; filtered searches.

    .venv/bin/python -m bench.search [--quick] [--items N] [--queries N] [--json out.json]

Loads unit vectors through UpsertItems (pre-computed vectors, each part with a text of words
drawn from a Zipf vocabulary, so the lexical index is filled as for real texts), then runs a
fixed number of queries from concurrent clients: gRPC ``Search`` (one grpc.aio channel per
client) vs ``es_core.search.vector_search.vector_page`` called directly on an asyncpg pool (the
server's own code and session settings), then filtered searches against unfiltered gRPC (term
filters at 10% and 1% selectivity, and a 1% range on ``price``, a number field the bench
declares filterable with SetFilterableFields before it searches), and hybrid ranking (the same
vectors plus 3-5 query words, BM25 fused with the vector side at the default window) against
vector ranking.

Vectors, items' and queries' alike, are drawn like real embeddings, not uniformly: around
CLUSTERS random centres, spread over a shared LOCAL_DIMS-dimensional subspace, plus a little
noise in every dimension. Uniform random vectors in 384 dimensions have no near neighbours to
find (their distances all concentrate), so an HNSW index's recall on them says nothing.

Filtered searches also report the share of queries that returned ``limit`` results and their
recall@10 against an exact filtered search (the same SQL with index scans disabled, on
--recall-queries of the timed queries); unfiltered recall is reported beside them, since the
HNSW index's recall bounds both. The table is ANALYZEd after the load (autovacuum would, a
little later), so the planner's estimates of a filter's matches are current.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import numpy as np

from bench.common import Row, base_parser, percentile_ms, report, running_stack, wait_all
from embedding_studio.client import AsyncClient, to_struct, to_value
from embedding_studio.v1 import common_pb2, ranking_pb2, search_pb2, upsert_pb2
from es_core.config import Settings
from es_core.domain import Collection
from es_core.filters import Filter, Range, Term
from es_core.filters.compiler import SqlParams, compile_filter
from es_core.search.query import VectorQuery
from es_core.search.vector_search import vector_page
from es_core.storage.catalog import DISTANCE_OPERATORS, get_blue_collection, items_table
from es_core.storage.db import create_pool

DIM = 384
LIMIT = 10
Vectors = np.ndarray[Any, np.dtype[np.float32]]
Query = Callable[[int], Awaitable[int]]  # query index -> number of results returned


def unit_vectors(rng: np.random.Generator, n: int, dim: int = DIM) -> Vectors:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    unit: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit


CLUSTERS = 500
LOCAL_DIMS = 32
SPREAD = 1.0  # the spread within a cluster (a standard deviation), as long as a centre
NOISE = 0.3  # the length of the noise every dimension adds


class EmbeddingSpace:
    """A Gaussian mixture: CLUSTERS unit centres, each item its centre plus a Gaussian in a
    LOCAL_DIMS-dimensional subspace (the same for every cluster) and isotropic noise; unit
    length, as a cosine model's embeddings are."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.centres = unit_vectors(rng, CLUSTERS)
        self.basis = unit_vectors(rng, LOCAL_DIMS)

    def draw(self, rng: np.random.Generator, n: int) -> Vectors:
        cluster = rng.integers(CLUSTERS, size=n)
        local = rng.standard_normal((n, LOCAL_DIMS)).astype(np.float32) @ self.basis
        noise = rng.standard_normal((n, DIM)).astype(np.float32)
        v = (
            self.centres[cluster]
            + SPREAD * local / np.sqrt(LOCAL_DIMS)
            + NOISE * noise / np.sqrt(DIM)
        )
        unit: Vectors = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
        return unit


VOCABULARY = 50_000
WORDS_PER_ITEM = 60
# The most frequent words stand in for stop words: queries do not use them.
COMMON_WORDS = 100


def zipf_words(rng: np.random.Generator, n: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Word ranks 1..VOCABULARY drawn with Zipf's law (exponent 1.1)."""
    ranks = np.arange(1, VOCABULARY + 1, dtype=np.float64)
    weights = ranks**-1.1
    return rng.choice(VOCABULARY, size=n, p=weights / weights.sum()) + 1


def texts(rng: np.random.Generator, n: int) -> list[str]:
    words = zipf_words(rng, n * WORDS_PER_ITEM).reshape(n, WORDS_PER_ITEM)
    return [" ".join(f"w{w}" for w in row) for row in words]


def query_words(rng: np.random.Generator, n: int) -> list[str]:
    """3-5 words per query, drawn like item words but never among the most common ones."""
    out = []
    for _ in range(n):
        words: list[str] = []
        wanted = int(rng.integers(3, 6))
        while len(words) < wanted:
            w = int(zipf_words(rng, 1)[0])
            if w > COMMON_WORDS:
                words.append(f"w{w}")
        out.append(" ".join(words))
    return out


def price(i: int) -> float:
    """Item ``i``'s price: uniform in [0, 1000), in cents, the same on every run."""
    return int.from_bytes(hashlib.blake2b(str(i).encode(), digest_size=8).digest()) % 100_000 / 100


def upsert_request(
    vectors: Vectors, words: list[str], start: int, stop: int
) -> upsert_pb2.UpsertItemsRequest:
    return upsert_pb2.UpsertItemsRequest(
        items=[
            upsert_pb2.UpsertItem(
                object_id=f"v{i}",
                payload=to_struct({"bucket": i % 100, "group": f"g{i % 10}", "price": price(i)}),
                parts=[common_pb2.ItemPart(part_id="0", vector=vectors[i].tolist(), text=words[i])],
            )
            for i in range(start, stop)
        ]
    )


async def load(
    client: AsyncClient, vectors: Vectors, words: list[str], batch: int, inflight: int
) -> float:
    """Send every batch (``inflight`` calls at once), wait for every task; returns seconds."""
    started = time.perf_counter()
    requests = [
        upsert_request(vectors, words, s, min(s + batch, len(vectors)))
        for s in range(0, len(vectors), batch)
    ]
    print(f"built {len(requests)} UpsertItems requests in {time.perf_counter() - started:.1f} s")
    gate = asyncio.Semaphore(inflight)

    async def send(request: upsert_pb2.UpsertItemsRequest) -> str:
        async with gate:
            reply = await client.upsert.UpsertItems(request, timeout=300)
            return str(reply.task.task_id)

    started = time.perf_counter()
    task_ids = await asyncio.gather(*(send(r) for r in requests))
    print(f"all {len(task_ids)} requests accepted after {time.perf_counter() - started:.1f} s")
    await wait_all(client, task_ids)
    return time.perf_counter() - started


async def run(queries: Sequence[Query], indices: range) -> tuple[list[float], float, list[int]]:
    """Each concurrent client takes the next query index until none are left."""
    latencies: list[float] = []
    counts: list[int] = []
    todo = iter(indices)

    async def client_loop(query: Query) -> None:
        for i in todo:
            t = time.perf_counter()
            counts.append(await query(i))
            latencies.append(time.perf_counter() - t)

    started = time.perf_counter()
    await asyncio.gather(*(client_loop(q) for q in queries))
    return latencies, time.perf_counter() - started, counts


def to_proto(f: Filter | None) -> common_pb2.Filter | None:
    """The request form of the bench's filters (a term or a range)."""
    if isinstance(f, Term):
        return common_pb2.Filter(term=common_pb2.TermFilter(field=f.field, value=to_value(f.value)))
    if isinstance(f, Range):
        bounds = {
            b: to_value(getattr(f, b))
            for b in ("gt", "gte", "lt", "lte")
            if getattr(f, b) is not None
        }
        return common_pb2.Filter(range=common_pb2.RangeFilter(field=f.field, **bounds))
    return None


# The filtered cases: the same filter for gRPC and for the exact SQL recall is measured against.
FILTERS: dict[str, Filter | None] = {
    "gRPC": None,
    "gRPC filter 10%": Term("group", "g3"),
    "gRPC filter 1%": Term("bucket", 7),
    "gRPC range 1% (declared)": Range("price", gte=500, lt=510),
}
# Declared filterable before the searches (SetFilterableFields): the range above uses its index.
DECLARED = {"price": "number"}


async def exact_top(
    pool: Any, collection: Collection, vector: Vectors, flt: Filter | None, limit: int
) -> list[str]:
    """The true nearest items (MIN over parts) the filter admits: index scans disabled."""
    params = SqlParams()
    op = DISTANCE_OPERATORS[collection.model.metric]
    t = items_table(collection)
    vec = params.add(vector)
    where = compile_filter(flt, params, "h.payload", declared=collection.filterable_fields)
    sql = (
        f"SELECT p.object_id, min(p.vector {op} {vec}) AS d FROM {t} p JOIN {t} h"
        f" ON h.object_id = p.object_id AND h.is_average AND h.user_id IS NULL"
        f" WHERE p.user_id IS NULL AND NOT p.is_average AND ({where})"
        f" GROUP BY p.object_id ORDER BY d, p.object_id LIMIT {int(limit)}"
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off;"
            " SET LOCAL enable_indexonlyscan = off"
        )
        return [r["object_id"] for r in await conn.fetch(sql, *params.values)]


async def main_async(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    space = EmbeddingSpace(rng)
    vectors = space.draw(rng, args.items)
    query_vectors = space.draw(rng, args.warmup + args.queries)
    item_texts = texts(rng, args.items)
    query_texts = query_words(rng, args.warmup + args.queries)
    warm, timed = range(args.warmup), range(args.warmup, args.warmup + args.queries)
    settings = Settings()
    rows: list[Row] = []

    def requests(
        flt: common_pb2.Filter | None, hybrid: bool = False
    ) -> list[search_pb2.SearchRequest]:
        out = []
        for q, words in zip(query_vectors, query_texts, strict=True):
            r = search_pb2.SearchRequest(
                query_vector=common_pb2.Vector(values=q.tolist()), limit=LIMIT
            )
            if flt is not None:
                r.filter.CopyFrom(flt)
            if hybrid:
                r.lexical_query = words
                r.ranking.method = ranking_pb2.RANKING_METHOD_HYBRID
            out.append(r)
        return out

    with running_stack() as stack:
        clients = [AsyncClient(stack.grpc_address) for _ in range(args.concurrency)]
        # The server's search role: its sessions are planned as the server's searches are.
        pool = await create_pool(
            settings, stack.postgres_dsn, role="search", max_size=args.concurrency
        )
        try:
            seconds = await load(clients[0], vectors, item_texts, args.batch, args.inflight)
            rate = args.items / seconds
            print(f"loaded {args.items} items in {seconds:.1f} s = {rate:,.0f} items/s")
            rows += [
                Row("load: items/s (UpsertItems, vectors)", rate),
                Row("load: seconds", seconds),
            ]

            def grpc_queries(reqs: list[search_pb2.SearchRequest]) -> list[Query]:
                def bind(c: AsyncClient) -> Query:
                    async def query(i: int) -> int:
                        return len((await c.search.Search(reqs[i], timeout=60)).results)

                    return query

                return [bind(c) for c in clients]

            started = time.perf_counter()
            declared = await clients[0].set_filterable_fields(DECLARED, timeout=60)
            built = await clients[0].wait_for_task(declared.task.task_id, timeout_seconds=3600)
            if built.status != common_pb2.TASK_STATUS_DONE:
                raise SystemExit(f"SetFilterableFields {DECLARED}: task ended {built}")
            print(f"SetFilterableFields {DECLARED}: {time.perf_counter() - started:.1f} s")
            async with pool.acquire() as conn:
                collection = await get_blue_collection(conn)
                started = time.perf_counter()
                await conn.execute(f"ANALYZE {items_table(collection)}")
                print(f"ANALYZE after the load: {time.perf_counter() - started:.1f} s")

            async def direct(i: int) -> int:
                query = VectorQuery(vector=query_vectors[i], limit=LIMIT)
                return len((await vector_page(pool, collection, query, settings))[0])

            filtered = {n: requests(to_proto(f)) for n, f in FILTERS.items()}
            cases: dict[str, list[Query]] = {
                "gRPC": grpc_queries(filtered["gRPC"]),
                "direct SQL": [direct] * args.concurrency,
                **{n: grpc_queries(filtered[n]) for n in FILTERS if n != "gRPC"},
                "gRPC hybrid": grpc_queries(requests(None, hybrid=True)),
            }
            stats: dict[str, tuple[float, float, float, list[int]]] = {}
            for name, queries in cases.items():
                await run(queries, warm)
                latencies, wall, counts = await run(queries, timed)
                stats[name] = (
                    percentile_ms(latencies, 50),
                    percentile_ms(latencies, 99),
                    len(latencies) / wall,
                    counts,
                )
                print(
                    f"{name}: p50 {stats[name][0]:.2f} ms, p99 {stats[name][1]:.2f} ms,"
                    f" {stats[name][2]:.0f} QPS, results/query min {min(counts)}"
                    f" mean {np.mean(counts):.2f}"
                )
                if min(counts) < LIMIT:
                    short = sum(c < LIMIT for c in counts)
                    print(
                        f"WARNING: {name}: {short}/{len(counts)} queries returned fewer than"
                        f" limit={LIMIT} results (min {min(counts)})"
                    )

            recall: dict[str, float] = {}
            for name, flt in FILTERS.items():
                found = []
                for i in list(timed)[: args.recall_queries]:
                    reply = await clients[0].search.Search(filtered[name][i], timeout=60)
                    got = {r.object_id for r in reply.results}
                    truth = await exact_top(pool, collection, query_vectors[i], flt, LIMIT)
                    found.append(len(got & set(truth)) / max(1, len(truth)))
                recall[name] = float(np.mean(found))
                print(f"{name}: recall@{LIMIT} vs exact {recall[name]:.3f}")

            hits, _ = await vector_page(
                pool, collection, VectorQuery(vector=query_vectors[0], limit=LIMIT), settings
            )
            reply = await clients[0].search.Search(requests(None)[0])
            same = [h.object_id for h in hits] == [r.object_id for r in reply.results]
            print(f"gRPC and direct SQL return the same top {LIMIT} for a sample query: {same}")
        finally:
            await pool.close()
            for c in clients:
                await c.close()

    for name, base, base_name in [
        ("gRPC", "direct SQL", f"direct SQL ({args.concurrency} asyncpg conns)"),
        ("gRPC filter 10%", "gRPC", "unfiltered gRPC"),
        ("gRPC filter 1%", "gRPC", "unfiltered gRPC"),
        ("gRPC range 1% (declared)", "gRPC", "unfiltered gRPC"),
        ("gRPC hybrid", "gRPC", "vector ranking gRPC"),
    ]:
        (p50, p99, qps, counts), (b50, b99, bqps, _) = stats[name], stats[base]
        rows += [
            Row(f"{name}: p50 ms", p50, b50, base_name),
            Row(f"{name}: p99 ms", p99, b99, base_name),
            Row(f"{name}: QPS", qps, bqps, base_name),
        ]
        rows.append(Row(f"{name}: p50 / {base_name} p50", p50 / b50))
        if name in FILTERS and FILTERS[name] is not None:
            full = sum(c == LIMIT for c in counts) / len(counts)
            rows += [
                Row(f"{name}: results/query min", min(counts), LIMIT, "limit"),
                Row(f"{name}: share returning limit", full, 1.0, "all"),
                Row(f"{name}: recall@{LIMIT} vs exact", recall[name], recall["gRPC"], "unfiltered"),
            ]
    report(
        f"search: {args.items:,} x {DIM}-d, {args.queries} queries after {args.warmup} warm-up,"
        f" {args.concurrency} concurrent clients (one grpc.aio channel each), limit {LIMIT}",
        rows,
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "search benchmark")
    parser.add_argument("--items", type=int, help="vectors to load (default 100000; quick 5000)")
    parser.add_argument("--queries", type=int, help="timed queries per case (2000; quick 200)")
    parser.add_argument("--warmup", type=int, help="untimed queries per case (200; quick 30)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--batch", type=int, default=1000, help="items per UpsertItems request")
    parser.add_argument("--inflight", type=int, default=4, help="UpsertItems calls at once")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--recall-queries", type=int, default=100, help="queries checked against exact search"
    )
    args = parser.parse_args()
    for name, full, quick in [
        ("items", 100_000, 5000),
        ("queries", 2000, 200),
        ("warmup", 200, 30),
    ]:
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
