"""Observability's cost on the search path: vector-search p50 with Prometheus metrics and JSON
logs on, against the same searches on a stack with both off, in one run (throwaway stacks one
after the other, ``--rounds`` per mode in the order off, on, on, off, ...; the same items and
queries). The issue's target: a ratio of at most 1.05.

Both stacks encode in-process (no Triton): vector searches encode nothing."""

from __future__ import annotations

import argparse
import asyncio
import urllib.request

import numpy as np

from bench.common import Row, base_parser, percentile_ms, report, running_stack
from bench.search import LIMIT, Query, Vectors, load, run, texts, unit_vectors
from embedding_studio.client import AsyncClient
from embedding_studio.v1 import common_pb2, search_pb2
from es_cli.embedded import free_ports

BOTH_OFF = {"ES_SERVE_WITH_TRITON": "false"}


def observed_env() -> dict[str, str]:
    server, worker = free_ports(2)
    return {
        **BOTH_OFF,
        "ES_METRICS_PORT": str(server),
        "ES_WORKER_METRICS_PORT": str(worker),
        "ES_LOG_FORMAT": "json",
    }


async def latencies_of(
    env: dict[str, str],
    args: argparse.Namespace,
    items: Vectors,
    queries: Vectors,
    words: list[str],
) -> list[float]:
    requests = [
        search_pb2.SearchRequest(query_vector=common_pb2.Vector(values=q.tolist()), limit=LIMIT)
        for q in queries
    ]
    with running_stack(env) as stack:
        clients = [AsyncClient(stack.grpc_address) for _ in range(args.concurrency)]
        try:
            await load(clients[0], items, words, args.batch, inflight=2)

            def bind(client: AsyncClient) -> Query:
                async def query(i: int) -> int:
                    return len((await client.search.Search(requests[i], timeout=60)).results)

                return query

            queries_by_client = [bind(c) for c in clients]
            await run(queries_by_client, range(args.warmup))
            latencies, _, counts = await run(
                queries_by_client, range(args.warmup, args.warmup + args.queries)
            )
            assert min(counts) == LIMIT
            if "ES_METRICS_PORT" in env:
                url = f"http://127.0.0.1:{env['ES_METRICS_PORT']}/metrics"
                with urllib.request.urlopen(url, timeout=10) as reply:
                    counted = [
                        line
                        for line in reply.read().decode().splitlines()
                        if line.startswith("es_grpc_server_handled_total")
                        and 'grpc_method="Search"' in line
                    ]
                print("server /metrics:", *counted)
        finally:
            for c in clients:
                await c.close()
    return list(latencies)


async def main_async(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    items = unit_vectors(rng, args.items)
    queries = unit_vectors(rng, args.warmup + args.queries)
    words = texts(rng, args.items)
    # Stacks started later in a run answer faster (caches warm): each mode runs --rounds
    # times in the order off, on, on, off, ... so neither mode gets the better places.
    measured: dict[str, list[float]] = {"off": [], "on": []}
    for i in range(args.rounds):
        for mode in ("off", "on") if i % 2 == 0 else ("on", "off"):
            env = BOTH_OFF if mode == "off" else observed_env()
            measured[mode] += await latencies_of(env, args, items, queries, words)
    off, on = (
        (percentile_ms(measured[m], 50), percentile_ms(measured[m], 99)) for m in ("off", "on")
    )
    base = "metrics and JSON logs off"
    report(
        f"observability overhead: {args.items:,} items, {args.queries} vector searches after"
        f" {args.warmup} warm-up, {args.concurrency} client(s), limit {LIMIT},"
        f" {args.rounds} stack(s) per mode",
        [
            Row("search p50 ms, metrics + JSON logs on", on[0], off[0], base),
            Row("search p99 ms, metrics + JSON logs on", on[1], off[1], base),
        ],
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "observability overhead")
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--batch", type=int, default=500, help="items per UpsertItems request")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=2, help="stacks per mode, order alternated")
    args = parser.parse_args()
    if args.quick:
        args.items, args.queries, args.warmup = 500, 100, 20
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
