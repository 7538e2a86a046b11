"""Text upsertion through gRPC (split + encode + write by the worker) against encoding directly.

    .venv/bin/python -m bench.upsert [--quick] [--items N] [--json out.json]

Times UpsertItems of SciFact abstracts (``title + ". " + text``; all requests sent, then every
task waited for) and, as the baseline, the same texts encoded in this process with the same
sentence-transformers model: split the way the worker splits them, and also whole. The worker
shares this machine, so the direct baseline runs while the stack is idle (after a one-item
warm-up upsert has loaded the model in the worker).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Callable

from bench.common import Row, base_parser, report, running_stack, wait_all, worker_parts
from embedding_studio.client import AsyncClient, build_upsert_item
from embedding_studio.v1 import upsert_pb2
from es_core.config import Settings
from es_core.encoders.local import SentenceTransformerEncoder, base_model_path
from es_harness.beir import load_dataset, scifact_dir


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def api_upsert(client: AsyncClient, ids: list[str], texts: list[str], batch: int) -> float:
    """Send every request, then wait for every task; returns seconds."""
    requests = [
        upsert_pb2.UpsertItemsRequest(
            items=[
                build_upsert_item({"object_id": i, "text": t})
                for i, t in zip(ids_b, texts_b, strict=True)
            ]
        )
        for ids_b, texts_b in zip(batches(ids, batch), batches(texts, batch), strict=True)
    ]
    started = time.perf_counter()
    replies = await asyncio.gather(*(client.upsert.UpsertItems(r, timeout=300) for r in requests))
    await wait_all(client, [r.task.task_id for r in replies])
    return time.perf_counter() - started


async def main_async(args: argparse.Namespace) -> None:
    corpus = list(load_dataset(scifact_dir()).corpus.values())[: args.items]
    ids, texts = [d.doc_id for d in corpus], [d.full_text for d in corpus]
    n = len(texts)
    settings = Settings()

    def split(batch: list[str]) -> list[str]:
        return worker_parts(batch, settings)

    n_parts = sum(len(split([t])) for t in texts)
    print(
        f"{n} SciFact abstracts -> {n_parts} parts ({n_parts / n:.2f} per item, splitter"
        f" {settings.splitter_max_words}/{settings.splitter_overlap_words} words)"
    )

    with running_stack() as stack:
        async with AsyncClient(stack.grpc_address) as client:
            warm = await client.upsert_items([{"object_id": "warm-up", "text": "warm-up text"}])
            await wait_all(client, [warm.task_id])  # loads the model in the worker

            encoder = SentenceTransformerEncoder(
                base_model_path(), batch_size=settings.encode_batch_size
            )
            encoder.encode_items(texts[:64])  # warm-up, untimed
            split_s = timed(
                lambda: [encoder.encode_items(split(b)) for b in batches(texts, args.batch)]
            )
            whole_s = timed(lambda: [encoder.encode_items(b) for b in batches(texts, args.batch)])
            print(
                f"direct encode: split {n / split_s:.1f} items/s, whole {n / whole_s:.1f} items/s"
            )

            api_s = await api_upsert(client, ids, texts, args.batch)
            print(f"API upsert: {n} items in {api_s:.1f} s = {n / api_s:.1f} items/s")

    api, direct_split, direct_whole = n / api_s, n / split_s, n / whole_s
    rows = [
        Row("API UpsertItems: items/s", api, direct_split, "direct encode, split like the worker"),
        Row("API UpsertItems: items/s", api, direct_whole, "direct encode, whole texts"),
        Row("direct encode, split: items/s", direct_split),
        Row("direct encode, whole texts: items/s", direct_whole),
        Row("API UpsertItems: seconds", api_s),
        Row("parts per item (split)", n_parts / n),
    ]
    report(
        f"upsert: {n} SciFact abstracts, {args.batch} items per request",
        rows,
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "upsert benchmark")
    parser.add_argument("--items", type=int, help="abstracts to upsert (default 1000; quick 100)")
    parser.add_argument("--batch", type=int, default=250, help="items per UpsertItems request")
    args = parser.parse_args()
    if args.items is None:
        args.items = 100 if args.quick else 1000
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
