"""Shared helpers for integration tests: fresh collections, item loading, fresh databases."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np

from es_core.domain import Aggregation, Collection, Metric, Model
from es_core.storage import catalog
from es_core.storage.item_rows import AVERAGE_PART_ID, average_vector, replace_items
from es_core.tasks.model import Task

DIMS = 8


def unique_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class RecordingSender:
    """A ``TaskSender`` that keeps the ids of the tasks it was asked to send, in order."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, task: Task) -> None:
        self.sent.append(task.task_id)


def make_model(
    metric: Metric = "cosine",
    aggregation: Aggregation = "min",
    dims: int = DIMS,
) -> Model:
    """A model row no encoder can load ("test:none"): its collections take vectors only."""
    return Model(
        model_id=unique_id(f"m-{metric}-{aggregation}"),
        name="test-model",
        version="1",
        dimensions=dims,
        metric=metric,
        aggregation=aggregation,
        source="test:none",
    )


async def new_collection(
    pool: asyncpg.Pool,
    metric: Metric = "cosine",
    aggregation: Aggregation = "min",
    dims: int = DIMS,
    *,
    model: Model | None = None,
    text_search_config: str = "english",
) -> Collection:
    """A green collection with a unique id (and, unless given, its own fresh model row)."""
    async with pool.acquire() as conn, conn.transaction():
        if model is None:
            model = make_model(metric, aggregation, dims)
            await catalog.insert_model(conn, model)
        return await catalog.create_collection(
            conn,
            unique_id("c"),
            model,
            state="green",
            hnsw_m=16,
            hnsw_ef_construction=64,
            text_search_config=text_search_config,
        )


async def word_count_collection(pool: asyncpg.Pool) -> Collection:
    """A green collection of its own word-count model (tests.integration.tiny_plugin's
    vocabulary: one dimension per word, dot product, average aggregation)."""
    from tests.integration.tiny_plugin import TINY_SOURCE, VOCABULARY

    model = Model(
        model_id=unique_id("wc"),
        name="word-counts",
        version="1",
        dimensions=len(VOCABULARY),
        metric="dot",
        aggregation="avg",
        source=TINY_SOURCE,
    )
    async with pool.acquire() as conn:
        await catalog.insert_model(conn, model)
    return await new_collection(pool, "dot", "avg", len(VOCABULARY), model=model)


async def load_items(
    pool: asyncpg.Pool,
    collection: Collection,
    items: Sequence[tuple[str, np.ndarray, dict[str, Any]]],
    texts: dict[str, list[str]] | None = None,
) -> None:
    """Write items given as (object_id, parts matrix [n_parts, dims], payload) directly;
    ``texts``: the parts' texts by object id (None: parts without text)."""
    rows: list[tuple[Any, ...]] = []
    for object_id, parts, payload in items:
        part_texts = (texts or {}).get(object_id)
        for j, vector in enumerate(parts):
            text = None if part_texts is None else part_texts[j]
            rows.append(
                (object_id, f"p{j}", False, None, text, np.asarray(vector, np.float32), payload)
            )
        average = average_vector(np.asarray(parts, np.float32), collection.model.metric)
        rows.append((object_id, AVERAGE_PART_ID, True, None, None, average, payload))
    async with pool.acquire() as conn:
        await replace_items(conn, collection, rows, [i[0] for i in items])
        await conn.execute(f"ANALYZE {catalog.items_table(collection)}")


def as_array(vector: Any) -> np.ndarray:
    """A vector read from the database (pgvector ``Vector``, list or array) as float64 numpy."""
    if hasattr(vector, "to_numpy"):
        vector = vector.to_numpy()
    return np.asarray(vector, dtype=np.float64)


def dsn_with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + database))


@asynccontextmanager
async def fresh_database(server_dsn: str) -> AsyncIterator[str]:
    """A new, empty database on the same server; yields its DSN and drops it afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    admin = await asyncpg.connect(server_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield dsn_with_database(server_dsn, name)
    finally:
        admin = await asyncpg.connect(server_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@asynccontextmanager
async def prepared_database(server_dsn: str) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    """A fresh database prepared as a server or worker prepares one at start (migrated, the
    base model's blue collection made); yields its DSN and a pool on it."""
    from es_core.config import Settings
    from es_core.plugins.registry import load_plugin
    from es_core.storage.bootstrap import prepare_database
    from es_core.storage.db import create_pool

    async with fresh_database(server_dsn) as dsn:
        settings = Settings()
        pool = await create_pool(settings, dsn)
        try:
            await prepare_database(pool, settings, load_plugin(settings))
            yield dsn, pool
        finally:
            await pool.close()
