"""Text upsertion through gRPC (split + encode + write by the worker) against encoding directly.

    .venv/bin/python -m bench.upsert [--quick] [--items N] [--json out.json]

Times UpsertItems of SciFact abstracts (``title + ". " + text``; all requests sent, then every
task waited for) and, as the baseline, the same texts encoded in this process with the same
model and backend (ES_ENCODER_BACKEND, as the stack runs it): split the way the worker splits
them, and also whole. The worker shares this machine, so the direct baseline runs while the
stack is idle (after a one-item warm-up upsert has loaded the model in the worker).

Where the upsert's time goes: the same split texts encoded through the stack's Triton from
this process (the worker's encoder, without the worker), the tasks' own run time against the
wall time (the rest is queueing and dispatch), and the worker's per-batch prepare / encode /
store seconds from its log. Then the same items are upserted again, unchanged: every part's
stored vector is reused (content hashes), so nothing is encoded.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import time
from collections.abc import Callable

import asyncpg

from bench.common import Row, base_parser, report, running_stack, wait_all, worker_parts
from embedding_studio.client import AsyncClient, build_upsert_item
from embedding_studio.v1 import upsert_pb2
from es_core.config import Settings
from es_core.encoders.backends import model_encoder
from es_core.encoders.local import base_model_path
from es_core.encoders.triton import TritonEncoder, triton_model_names
from es_harness.beir import load_dataset, scifact_dir
from es_harness.throwaway import StackInfo


def batches(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def timed(work: Callable[[], object]) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def api_upsert(
    client: AsyncClient, ids: list[str], texts: list[str], batch: int
) -> tuple[float, list[str]]:
    """Send every request, then wait for every task; returns seconds and the task ids."""
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
    task_ids = [r.task.task_id for r in replies]
    await wait_all(client, task_ids)
    return time.perf_counter() - started, task_ids


async def task_seconds(dsn: str, task_ids: list[str]) -> float:
    """The sum of the tasks' run times (start to finish in the worker)."""
    conn = await asyncpg.connect(dsn)
    try:
        return float(
            await conn.fetchval(
                "SELECT sum(extract(epoch FROM finish_time - start_time)) FROM tasks"
                " WHERE task_id = ANY($1::uuid[])",
                task_ids,
            )
        )
    finally:
        await conn.close()


async def blue_model_id(dsn: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(
            await conn.fetchval(
                "SELECT c.model_id FROM blue_collection b JOIN collections c USING (collection_id)"
            )
        )
    finally:
        await conn.close()


BATCH_LINE = re.compile(
    r"upsert batch: (\d+) items, (\d+) texts encoded, (\d+) reused; prepare ([\d.]+) s,"
    r" encode ([\d.]+) s"
)
STORE_LINE = re.compile(r"upsert batch stored: \d+ items in ([\d.]+) s")


def worker_stages(log_text: str) -> list[tuple[float, ...]]:
    """(items, encoded, reused, prepare s, encode s) of each batch the worker logged, and the
    batch's store seconds when logged."""
    batches = [tuple(float(g) for g in m.groups()) for m in BATCH_LINE.finditer(log_text)]
    stores = [float(m.group(1)) for m in STORE_LINE.finditer(log_text)]
    return [(*b, stores[i] if i < len(stores) else 0.0) for i, b in enumerate(batches)]


def stage_sums(stages: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(sum(col) for col in zip(*stages, strict=True)) if stages else (0.0,) * 6


async def timed_upsert(
    client: AsyncClient, stack: StackInfo, ids: list[str], texts: list[str], batch: int
) -> tuple[float, float, tuple[float, ...]]:
    """(wall seconds, the tasks' run seconds, the worker's stage sums) of one upsert round."""
    seen = len(worker_stages(stack.log("worker")))
    seconds, task_ids = await api_upsert(client, ids, texts, batch)
    run_s = await task_seconds(stack.postgres_dsn, task_ids)
    await asyncio.sleep(0.5)  # the log line may trail the task's end
    return seconds, run_s, stage_sums(worker_stages(stack.log("worker"))[seen:])


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

            encoder = model_encoder(
                base_model_path(), settings, batch_size=settings.encode_batch_size
            )
            encoder.encode_items(texts[:64])  # warm-up, untimed
            split_s = timed(
                lambda: [encoder.encode_items(split(b)) for b in batches(texts, args.batch)]
            )
            whole_s = timed(lambda: [encoder.encode_items(b) for b in batches(texts, args.batch)])
            print(
                f"direct encode: split {n / split_s:.1f} items/s, whole {n / whole_s:.1f} items/s"
            )

            triton_s = 0.0
            if stack.triton_url:
                query_model, item_model = triton_model_names(
                    await blue_model_id(stack.postgres_dsn)
                )
                triton = TritonEncoder(
                    stack.triton_url,
                    query_model,
                    item_model,
                    encoder.dimensions,
                    batch_size=settings.triton_batch_size,
                )
                triton.encode_items(texts[:64])  # warm-up, untimed
                triton_s = timed(
                    lambda: [triton.encode_items(split(b)) for b in batches(texts, args.batch)]
                )
                print(f"Triton encode from here, split: {n / triton_s:.1f} items/s")

            api_s, run_s, first = await timed_upsert(client, stack, ids, texts, args.batch)
            print(f"API upsert: {n} items in {api_s:.1f} s = {n / api_s:.1f} items/s")
            again_s, again_run_s, again = await timed_upsert(client, stack, ids, texts, args.batch)
            print(
                f"API upsert again, unchanged: {n / again_s:.1f} items/s"
                f" ({int(again[1])} texts encoded, {int(again[2])} reused)"
            )

    api, direct_split, direct_whole = n / api_s, n / split_s, n / whole_s
    rows = [
        Row("API UpsertItems: items/s", api, direct_split, "direct encode, split like the worker"),
        Row("API UpsertItems: items/s", api, direct_whole, "direct encode, whole texts"),
        Row("direct encode, split: items/s", direct_split),
        Row("direct encode, whole texts: items/s", direct_whole),
    ]
    if triton_s:
        rows += [
            Row(
                "Triton encode from the bench, split: items/s",
                n / triton_s,
                direct_split,
                "direct encode, split like the worker",
            ),
            Row("API UpsertItems: items/s", api, n / triton_s, "Triton encode from the bench"),
        ]
    rows += [
        Row("API UpsertItems: seconds", api_s),
        Row("  tasks' run seconds (the rest: queue, dispatch, polling)", run_s, api_s, "wall"),
        Row("  worker prepare seconds", first[3], run_s, "tasks' run"),
        Row("  worker encode seconds", first[4], run_s, "tasks' run"),
        Row("  worker store seconds", first[5], run_s, "tasks' run"),
        Row("API UpsertItems again, unchanged: items/s", n / again_s, api, "first upsert"),
        Row("  again: texts encoded", again[1], first[1], "first upsert"),
        Row("  again: worker encode seconds (lookup)", again[4], first[4], "first upsert"),
        Row("  again: worker store seconds", again[5], first[5], "first upsert"),
        Row("  again: tasks' run seconds", again_run_s, run_s, "first upsert"),
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
