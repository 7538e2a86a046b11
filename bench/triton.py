"""Encoding throughput through Triton (gRPC) against sentence-transformers in this process.

    .venv/bin/python -m bench.triton [--quick] [--items N] [--queries N] [--clients C] [--json out]

Starts the `es up` stack (its own Triton on free ports, serving the base model) and encodes
SciFact texts two ways, on the same 2 cores, one after the other:

- abstracts (``title + ". " + text``, up to 256 tokens) in batches of ``ES_TRITON_BATCH_SIZE``,
  as the upsertion worker does: through Triton with one client and with ``--clients``
  concurrent clients, and in-process (the baseline);
- claims, one query per request, as searches arrive: through Triton from ``--clients``
  concurrent callers (Triton's dynamic batcher merges them) and in-process one at a time (the
  in-process encoder serialises callers behind a lock; the baseline).

Every Triton result is checked against the in-process vectors (cosine per row).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from bench.common import Row, base_parser, report, running_stack
from es_core.config import Settings
from es_core.encoders.local import BASE_MODEL_ID, SentenceTransformerEncoder, base_model_path
from es_core.encoders.triton import TritonEncoder, triton_model_names
from es_harness.beir import load_dataset, scifact_dir

Vectors = npt.NDArray[np.float32]


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def run(
    encode: Callable[[list[str]], Vectors], work: list[list[str]], clients: int
) -> tuple[float, Vectors]:
    """Encode every batch of ``work`` from ``clients`` threads; (seconds, vectors in order)."""
    started = time.perf_counter()
    if clients == 1:
        parts = [encode(b) for b in work]
    else:
        with ThreadPoolExecutor(clients) as pool:
            parts = list(pool.map(encode, work))
    return time.perf_counter() - started, np.concatenate(parts)


def min_cosine(a: Vectors, b: Vectors) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def main_with(args: argparse.Namespace) -> None:
    data = load_dataset(scifact_dir())
    abstracts = [d.full_text for d in list(data.corpus.values())[: args.items]]
    claims = list(data.queries.values())[: args.queries]
    settings = Settings()
    batch = settings.triton_batch_size
    print(
        f"{len(abstracts)} SciFact abstracts in batches of {batch}; {len(claims)} claims one per"
        f" request; {args.clients} concurrent Triton clients"
    )
    local = SentenceTransformerEncoder(base_model_path(), batch_size=batch)
    with running_stack() as stack:
        query_model, item_model = triton_model_names(BASE_MODEL_ID)
        triton = TritonEncoder(
            stack.triton_url, query_model, item_model, local.dimensions, batch_size=batch
        )
        for warm in (triton.encode_items, triton.encode_queries, local.encode_items):
            warm(abstracts[:batch])  # untimed: first calls pay for lazy set-up

        item_work, claim_work = batches(abstracts, batch), [[c] for c in claims]
        local_items_s, local_items = run(local.encode_items, item_work, 1)
        print(f"in-process abstracts: {len(abstracts) / local_items_s:.1f}/s")
        t1_items_s, t1_items = run(triton.encode_items, item_work, 1)
        print(f"Triton abstracts, 1 client: {len(abstracts) / t1_items_s:.1f}/s")
        tc_items_s, tc_items = run(triton.encode_items, item_work, args.clients)
        print(f"Triton abstracts, {args.clients} clients: {len(abstracts) / tc_items_s:.1f}/s")
        local_claims_s, local_claims = run(local.encode_queries, claim_work, 1)
        print(f"in-process claims, one per call: {len(claims) / local_claims_s:.1f}/s")
        tc_claims_s, tc_claims = run(triton.encode_queries, claim_work, args.clients)
        print(f"Triton claims, {args.clients} clients: {len(claims) / tc_claims_s:.1f}/s")
        triton.close()

    agreement = min(
        min_cosine(t1_items, local_items),
        min_cosine(tc_items, local_items),
        min_cosine(tc_claims, local_claims),
    )
    n, q, c = len(abstracts), len(claims), args.clients
    base_items, base_claims = n / local_items_s, q / local_claims_s
    rows = [
        Row("Triton, 1 client: abstracts/s", n / t1_items_s, base_items, "in-process, batches"),
        Row(f"Triton, {c} clients: abstracts/s", n / tc_items_s, base_items, "in-process, batches"),
        Row(
            f"Triton, {c} clients: claims/s (1 per request)",
            q / tc_claims_s,
            base_claims,
            "in-process, 1 per call",
        ),
        Row("in-process: abstracts/s", base_items),
        Row("in-process: claims/s (1 per call)", base_claims),
        Row("min cosine Triton vs in-process", agreement),
    ]
    report(
        f"triton: {n} SciFact abstracts, {q} claims, batch {batch}",
        rows,
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "Triton benchmark")
    parser.add_argument("--items", type=int, help="abstracts (default 1024; quick 128)")
    parser.add_argument("--queries", type=int, help="claims (default 1000; quick 200)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent Triton clients")
    args = parser.parse_args()
    if args.items is None:
        args.items = 128 if args.quick else 1024
    if args.queries is None:
        args.queries = 200 if args.quick else 1000
    main_with(args)


if __name__ == "__main__":
    main()
