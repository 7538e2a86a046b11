"""What authentication and TLS cost a search: p50 and p99 of Search by vector on a stack with
API keys and TLS (``ES_AUTH=required``, ``es up --tls``) against the same stack without them.

    .venv/bin/python -m bench.auth [--quick] [--items N] [--searches N] [--json out]

Both stacks run at once, each encoding in-process (no Triton), each loaded with the same
random vectors. The searches alternate between them in rounds, so whatever else the machine
does falls on both alike. Searches are by vector: no model runs, so what is left is what the
two stacks differ in (the TLS record layer, the key check and its cache) beside the search
itself. The secured stack's first admin key is made with ``es keys create``, as an operator
would; the writer and the searcher get keys of their own roles through KeyService.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bench.common import Row, base_parser, percentile_ms, report
from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, keys_pb2, search_pb2
from es_harness.keys import first_admin_token
from es_harness.throwaway import StackInfo, ThrowawayStack

DIMS = 384
UPSERT_BATCH = 500
ROUND = 25
Vectors = npt.NDArray[np.float32]
NO_TRITON = {"ES_SERVE_WITH_TRITON": "false"}
SECURED = {**NO_TRITON, "ES_AUTH": "required", "ES_LOCAL_TLS": "true"}


def unit_vectors(n: int, seed: int) -> Vectors:
    v = np.random.default_rng(seed).normal(size=(n, DIMS)).astype(np.float32)
    unit: Vectors = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit


@contextmanager
def clients(stack: StackInfo, secured: bool) -> Iterator[tuple[Client, Client]]:
    """(a writer, a searcher): plain clients, or clients holding a write and a search key and
    trusting the stack's local CA."""
    if not secured:
        with Client(stack.grpc_address) as plain:
            yield plain, plain
        return
    assert stack.tls_ca_file, "es up made no local CA"
    root = Path(stack.tls_ca_file).read_bytes()
    with Client(stack.grpc_address, api_key=first_admin_token(stack), root_certificates=root) as a:
        tokens = [
            a.keys.CreateApiKey(keys_pb2.CreateApiKeyRequest(role=role), timeout=30).token
            for role in (keys_pb2.API_KEY_ROLE_WRITE, keys_pb2.API_KEY_ROLE_SEARCH)
        ]
    with (
        Client(stack.grpc_address, api_key=tokens[0], root_certificates=root) as writer,
        Client(stack.grpc_address, api_key=tokens[1], root_certificates=root) as searcher,
    ):
        yield writer, searcher


def load(writer: Client, vectors: Vectors) -> None:
    """Every vector as an item of one part, in batches; returns once all are searchable."""
    for start in range(0, len(vectors), UPSERT_BATCH):
        batch = vectors[start : start + UPSERT_BATCH]
        items = [
            {"object_id": f"item-{start + i:06d}", "parts": [{"part_id": "0", "vector": v}]}
            for i, v in enumerate(batch.tolist())
        ]
        task = writer.upsert_items(items, timeout=120)
        done = writer.wait_for_task(task.task_id, timeout_seconds=1800)
        if done.status != common_pb2.TASK_STATUS_DONE:
            raise RuntimeError(f"upsert {task.task_id} ended {done.status}: {done.error}")


def search_once(searcher: Client, vector: Vectors) -> float:
    request = search_pb2.SearchRequest(
        query_vector=common_pb2.Vector(values=vector.tolist()), limit=10
    )
    started = time.perf_counter()
    reply = searcher.search.Search(request, timeout=30)
    elapsed = time.perf_counter() - started
    if len(reply.results) != 10:
        raise RuntimeError(f"a search returned {len(reply.results)} results, not 10")
    return elapsed


def main_with(args: argparse.Namespace) -> None:
    items = 2_000 if args.quick else args.items
    searches = 200 if args.quick else args.searches
    vectors = unit_vectors(items, seed=1)
    queries = unit_vectors(searches, seed=2)
    with tempfile.TemporaryDirectory(prefix="es-bench-auth-") as tmp:
        started = time.perf_counter()
        with (
            ThrowawayStack(Path(tmp) / "open", extra_env=NO_TRITON) as open_stack,
            ThrowawayStack(Path(tmp) / "secured", extra_env=SECURED) as secured_stack,
            clients(open_stack, secured=False) as (open_writer, open_searcher),
            clients(secured_stack, secured=True) as (secured_writer, secured_searcher),
        ):
            print(f"two stacks up in {time.perf_counter() - started:.1f} s")
            for writer in (open_writer, secured_writer):
                load(writer, vectors)
            # Warm both (connections, TLS sessions, the key cache, the HNSW pages).
            for searcher in (open_searcher, secured_searcher):
                for q in queries[:ROUND]:
                    search_once(searcher, q)
            timings: dict[str, list[float]] = {"open": [], "secured": []}
            for start in range(0, searches, ROUND):
                for name, searcher in (("open", open_searcher), ("secured", secured_searcher)):
                    timings[name] += [
                        search_once(searcher, q) for q in queries[start : start + ROUND]
                    ]
    rows = [
        Row(
            f"Search p{q} by vector, keys + TLS (ms)",
            percentile_ms(timings["secured"], q),
            percentile_ms(timings["open"], q),
            "same stack, no keys, plaintext",
        )
        for q in (50, 99)
    ]
    report(
        "authentication and TLS",
        rows,
        args.json,
        {"items": items, "searches_each": searches, "round": ROUND},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20_000, help="items in each stack")
    parser.add_argument("--searches", type=int, default=1_000, help="timed searches per stack")
    main_with(parser.parse_args())


if __name__ == "__main__":
    main()
