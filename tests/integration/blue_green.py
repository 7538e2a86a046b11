"""Helpers for collection and reindex tests: a fresh database per test with a blue collection,
and fast deterministic "models" (a hash of the text, salted per model) instead of a network."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import numpy as np

from es_core.config import Settings
from es_core.domain import Aggregation, Collection, Metric, Model
from es_core.encoders.base import Vectors
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import EsError
from es_core.item_input import ItemInput
from es_core.plugins.protocol import SearchIndexInfo
from es_core.reindex.copy_range import copy_range
from es_core.reindex.parent import index_subtask, plan_subtasks, settle_parent
from es_core.reindex.refetch import Refetch
from es_core.storage import catalog
from es_core.storage.bulk_index import build_vector_index
from es_core.storage.db import create_pool
from es_core.storage.migrations import migrate
from es_core.tasks import store
from es_core.tasks.model import Task
from tests.integration.helpers import fresh_database, unique_id

DIMS = 8
HASH_SOURCE = "test:hash"
# How collections of hash models are indexed: what a plugin's search index info would say.
HASH_INDEX = SearchIndexInfo(
    dimensions=DIMS, metric="cosine", aggregation="min", hnsw_m=16, hnsw_ef_construction=64
)


class HashEncoder:
    """Unit vectors from a hash of (salt, text): each model id gives other vectors."""

    def __init__(self, salt: str, dimensions: int = DIMS) -> None:
        self.salt = salt
        self._dimensions = dimensions
        self.calls = 0

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def vector(self, text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha256(f"{self.salt}|{text}".encode()).digest()[:8], "big")
        v = np.random.default_rng(seed).normal(size=self._dimensions).astype(np.float32)
        return np.asarray(v / np.linalg.norm(v), dtype=np.float32)

    def encode_items(self, texts: list[str]) -> Vectors:
        self.calls += 1
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts])

    def encode_queries(self, texts: list[str]) -> Vectors:
        return self.encode_items(texts)


def hash_registry() -> EncoderRegistry:
    return EncoderRegistry(lambda model: HashEncoder(model.model_id, model.dimensions))


def hash_model(
    metric: Metric = "cosine", aggregation: Aggregation = "min", dims: int = DIMS
) -> Model:
    return Model(
        model_id=unique_id("model"),
        name="hash",
        version="1",
        dimensions=dims,
        metric=metric,
        aggregation=aggregation,
        source=HASH_SOURCE,
        deployed=True,
    )


@dataclass
class World:
    """A fresh database whose blue collection holds the items of one hash model."""

    pool: asyncpg.Pool
    settings: Settings
    registry: EncoderRegistry
    blue: Collection
    index: SearchIndexInfo = HASH_INDEX

    async def add_model(self, model: Model | None = None) -> Model:
        model = model or hash_model()
        async with self.pool.acquire() as conn:
            await catalog.insert_model(conn, model)
        return model

    async def collection(self, collection_id: str) -> Collection:
        async with self.pool.acquire() as conn:
            return await catalog.get_collection(conn, collection_id)

    async def alias(self) -> tuple[str, str | None]:
        row = await self.pool.fetchrow(
            "SELECT collection_id, previous_collection_id FROM blue_collection"
        )
        assert row is not None
        return row["collection_id"], row["previous_collection_id"]

    async def originals(self, collection: Collection) -> dict[str, dict[str, Any]]:
        """object_id -> {payload, update_time, parts: {part_id: (text, vector)}, head: vector}."""
        rows = await self.pool.fetch(
            f"SELECT object_id, part_id, is_average, text, vector, payload, update_time"
            f" FROM {catalog.items_table(collection)}"
            " WHERE user_id IS NULL ORDER BY object_id, part_id"
        )
        items: dict[str, dict[str, Any]] = {}
        for r in rows:
            item = items.setdefault(r["object_id"], {"parts": {}, "heads": 0})
            if r["is_average"]:
                item["heads"] += 1
                item["payload"] = r["payload"]
                item["update_time"] = r["update_time"]
                item["head"] = np.asarray(r["vector"].to_numpy())
            else:
                item["parts"][r["part_id"]] = (r["text"], np.asarray(r["vector"].to_numpy()))
        return items


@asynccontextmanager
async def fresh_world(server_dsn: str, **settings: Any) -> AsyncIterator[World]:
    """A new database with a blue collection of a hash model (no items yet)."""
    config = Settings(**{"reindex_batch_size": 5, "reindex_parallelism": 3, **settings})
    async with fresh_database(server_dsn) as dsn:
        pool = await create_pool(config, dsn)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                model = hash_model()
                await catalog.insert_model(conn, model)
                await catalog.create_collection(
                    conn,
                    model.model_id,
                    model,
                    state="green",
                    hnsw_m=HASH_INDEX.hnsw_m,
                    hnsw_ef_construction=HASH_INDEX.hnsw_ef_construction,
                )
                await catalog.set_blue_collection(conn, model.model_id)
                blue = await catalog.get_collection(conn, model.model_id)
            yield World(pool, config, hash_registry(), blue)
        finally:
            await pool.close()


def text_items(n: int, prefix: str = "doc", start: int = 0) -> list[ItemInput]:
    return [
        ItemInput(
            object_id=f"{prefix}-{i:04d}",
            payload={"n": i, "title": f"title {i}"},
            text=f"text of {prefix} {i} " + "word " * (i % 7),
        )
        for i in range(start, start + n)
    ]


async def keep_going(fraction: float, message: str) -> bool:
    return True


async def claim(pool: asyncpg.Pool, task_id: str, owner: str, lease: float = 30) -> Task:
    task = await store.claim_task(pool, task_id, owner, lease)
    assert task is not None, f"task {task_id} was not claimable"
    return task


async def plan_reindex(world: World, parent_id: str) -> list[Task]:
    """What the parent's worker does: claim, plan, hand over to the subtasks."""
    parent = await claim(world.pool, parent_id, "parent-worker")
    children, finished = await plan_subtasks(world.pool, world.settings, parent)
    if finished is not None:
        await build_vector_index(
            world.pool, world.settings, parent.params["destination_collection_id"]
        )
        await store.finish_task(world.pool, parent_id, "parent-worker", "done", result=finished)
    else:
        await store.start_waiting(world.pool, parent_id, "parent-worker", {}, "waiting")
    return children


async def run_subtask(
    world: World,
    task_id: str,
    owner: str,
    registry: EncoderRegistry | None = None,
    refetch: Refetch | None = None,
) -> dict[str, Any]:
    """What a subtask's worker does: claim, copy, record the outcome, settle the parent (the
    part of ``es_core.tasks.workflow.after_run`` that concerns it; its chains are moved on by
    each test, step by step)."""
    result = await copy_subtask(world, task_id, owner, registry, refetch)
    await settle(world, str((await store.get_task(world.pool, task_id)).parent_task_id))
    return result


async def settle(world: World, parent_id: str) -> str:
    """``settle_parent`` as the workflow runs it: once the ranges are copied, the subtask it
    then starts builds the destination's vector index (run here, as its worker would), and
    the parent is settled again."""
    status = await settle_parent(world.pool, parent_id)
    if status == "indexing":
        index_task = await index_subtask(world.pool, parent_id)
        assert index_task is not None
        await claim(world.pool, index_task.task_id, "index-worker")
        result = await build_vector_index(
            world.pool, world.settings, index_task.params["destination_collection_id"]
        )
        await store.finish_task(
            world.pool, index_task.task_id, "index-worker", "done", result=result
        )
        status = await settle_parent(world.pool, parent_id)
    return status


async def copy_subtask(
    world: World,
    task_id: str,
    owner: str,
    registry: EncoderRegistry | None = None,
    refetch: Refetch | None = None,
) -> dict[str, Any]:
    """A subtask's run as the worker runtime does it: claim, copy, record the outcome."""
    task = await claim(world.pool, task_id, owner, lease=30)
    try:
        result = await copy_range(
            world.pool,
            registry or world.registry,
            task,
            owner=owner,
            lease_seconds=30,
            batch_size=world.settings.reindex_batch_size,
            refetch=refetch,
        )
    except EsError as exc:
        await store.finish_task(world.pool, task_id, owner, "failed", error=exc.message)
        result = {"failed": exc.message}
    else:
        if not result.get("stopped"):
            await store.finish_task(world.pool, task_id, owner, "done", result=result)
    return result


async def run_reindex(world: World, parent_id: str, refetch: Refetch | None = None) -> Task:
    for child in await plan_reindex(world, parent_id):
        owner = f"worker-{child.params['range_index']}"
        await run_subtask(world, child.task_id, owner, refetch=refetch)
    return await store.get_task(world.pool, parent_id)
