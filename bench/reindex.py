"""Reindex through gRPC (a green collection filled from the blue one) against encoding directly.

    .venv/bin/python -m bench.reindex [--quick] [--items N] [--json out.json]

Upserts SciFact abstracts into the blue collection, registers the base model's weights under a
second model id (no training needed), and times StartReindex until its task is DONE: keyset
pages read from the source, every part re-encoded (the next page while the one before is
written), written with the guards against concurrent writes into the green collection without
its HNSW index, checkpoints in the task rows, then the index built once. The baseline,
measured in the same run while the stack is idle, is the same part texts (split as the worker
split them) encoded in this process with the same model and backend (ES_ENCODER_BACKEND), once
before and once after the reindex (the faster run counts: other work on the machine only ever
slows a run down).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import asyncpg
import grpc

from bench.common import Row, base_parser, report, running_stack, wait_all, worker_parts
from embedding_studio.client import AsyncClient, build_upsert_item
from embedding_studio.v1 import common_pb2, deployment_pb2, upsert_pb2
from es_core.config import Settings
from es_core.encoders.backends import model_encoder
from es_core.encoders.local import BASE_MODEL_SOURCE, base_model_path
from es_harness.beir import load_dataset, scifact_dir


async def register_model(dsn: str, model_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation, source)"
            " VALUES ($1, 'all-MiniLM-L6-v2', 'bench', 384, 'cosine', 'min', $2)",
            model_id,
            BASE_MODEL_SOURCE,
        )
    finally:
        await conn.close()


async def deploy_if_served(client: AsyncClient, model_id: str) -> None:
    """Deploy the model where this version serves models (Triton); else workers load it."""
    try:
        response = await client.deployment.DeployModel(
            deployment_pb2.DeployModelRequest(model_id=model_id), timeout=60
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.UNIMPLEMENTED:
            raise
        return
    await wait_all(client, [response.task.task_id])


async def upsert_all(client: AsyncClient, ids: list[str], texts: list[str], batch: int) -> None:
    replies = await asyncio.gather(
        *(
            client.upsert.UpsertItems(
                upsert_pb2.UpsertItemsRequest(
                    items=[
                        build_upsert_item({"object_id": i, "text": t})
                        for i, t in zip(ids[s : s + batch], texts[s : s + batch], strict=True)
                    ]
                ),
                timeout=300,
            )
            for s in range(0, len(ids), batch)
        )
    )
    await wait_all(client, [r.task.task_id for r in replies])


async def main_async(args: argparse.Namespace) -> None:
    corpus = list(load_dataset(scifact_dir()).corpus.values())[: args.items]
    ids, texts = [d.doc_id for d in corpus], [d.full_text for d in corpus]
    settings = Settings()
    parts = worker_parts(texts, settings)
    n = len(texts)
    print(f"{n} SciFact abstracts -> {len(parts)} parts ({len(parts) / n:.2f} per item)")

    with running_stack() as stack:
        async with AsyncClient(stack.grpc_address) as client:
            started = time.perf_counter()
            await upsert_all(client, ids, texts, 250)
            print(f"upserted {n} items in {time.perf_counter() - started:.1f} s")

            encoder = model_encoder(
                base_model_path(), settings, batch_size=settings.encode_batch_size
            )
            encoder.encode_items(parts[:64])  # warm-up, untimed

            def encode_directly() -> float:
                started = time.perf_counter()
                for s in range(0, len(parts), settings.reindex_batch_size):
                    encoder.encode_items(parts[s : s + settings.reindex_batch_size])
                seconds = time.perf_counter() - started
                print(
                    f"direct encode: {n / seconds:.1f} items/s ({len(parts) / seconds:.1f} parts/s)"
                )
                return seconds

            direct_runs = [encode_directly()]

            model_id = f"bench-reindex-{uuid.uuid4().hex[:8]}"
            await register_model(stack.postgres_dsn, model_id)
            await deploy_if_served(client, model_id)
            started = time.perf_counter()
            response = await client.deployment.StartReindex(
                deployment_pb2.StartReindexRequest(destination_model_id=model_id), timeout=60
            )
            task = await client.wait_for_task(response.task.task_id, timeout_seconds=3600)
            reindex_s = time.perf_counter() - started
            if task.status != common_pb2.TASK_STATUS_DONE:
                raise RuntimeError(f"reindex ended {task.status}: {task.error}")
            copied, ranges = task.reindex.item_count, task.reindex.subtasks
            print(
                f"reindex: {copied} items in {reindex_s:.1f} s = {copied / reindex_s:.1f} items/s"
            )
            if copied != n:
                raise RuntimeError(f"the destination holds {copied} items, not {n}")
            # Once more after the reindex; the faster run is the baseline (the machine is shared).
            direct_runs.append(encode_directly())
            direct_s = min(direct_runs)

    reindex_rate, direct_rate = n / reindex_s, n / direct_s
    rows = [
        Row("StartReindex until DONE: items/s", reindex_rate, direct_rate, "direct encode"),
        Row("direct encode of the same parts: items/s", direct_rate),
        Row("StartReindex until DONE: seconds", reindex_s),
        Row("parts per item", len(parts) / n),
    ]
    report(
        f"reindex: {n} SciFact abstracts, {ranges} ranges (at most"
        f" {settings.reindex_parallelism}, no more than pages), {settings.reindex_batch_size}"
        " items per page; rows first, the HNSW index built at the end",
        rows,
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "reindex benchmark")
    parser.add_argument("--items", type=int, help="abstracts to reindex (default 1000; quick 100)")
    args = parser.parse_args()
    if args.items is None:
        args.items = 100 if args.quick else 1000
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
