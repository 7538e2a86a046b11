"""A real reindex worker process (``python -m es_workers.reindex``, all-MiniLM-L6-v2 in
process) is SIGKILLed in the middle of a range. Its task's lease runs out, the sweeper's query
offers it again, a new worker resumes from the checkpoint, and the destination ends with
exactly the source's items: none lost, none doubled."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.encoders.local import BASE_MODEL_SOURCE
from es_core.plugins.registry import load_plugin
from es_core.reindex.parent import subtasks
from es_core.reindex.start import create_reindex
from es_core.storage import catalog
from es_core.storage.item_rows import AVERAGE_PART_ID, replace_items
from es_core.tasks import store
from tests.integration.helpers import prepared_database

pytestmark = pytest.mark.integration

N_ITEMS = 240
BATCH = 6
LEASE_SECONDS = 2.0
WORDS = "cell protein gene tumor immune signal brain heart drug dose risk trial blood".split()


@pytest_asyncio.fixture
async def database(pg_server: EmbeddedPostgres) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with prepared_database(pg_server.dsn) as prepared:
        yield prepared


async def _fill_blue(pool: asyncpg.Pool) -> Collection:
    """N_ITEMS text items of two parts each, written straight into the blue collection (their
    vectors do not matter: the reindex encodes the texts again)."""
    rng = np.random.default_rng(0)
    async with pool.acquire() as conn:
        blue = await catalog.get_blue_collection(conn)
        rows = []
        for i in range(N_ITEMS):
            object_id = f"item-{i:04d}"
            payload = {"i": i}
            for part in ("0", "1"):
                text = " ".join(rng.choice(WORDS, size=24))
                vector = rng.normal(size=384).astype(np.float32)
                rows.append((object_id, part, False, None, text, vector, payload))
            rows.append((object_id, AVERAGE_PART_ID, True, None, None, vector, payload))
        await replace_items(conn, blue, rows, [f"item-{i:04d}" for i in range(N_ITEMS)])
    return blue


def _worker(dsn: str, data_dir: Path, *task_ids: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ES_POSTGRES_DSN": dsn,
        "ES_DATA_DIR": str(data_dir),
        "ES_TASK_LEASE_SECONDS": str(LEASE_SECONDS),
        "ES_REINDEX_BATCH_SIZE": str(BATCH),
        "ES_REINDEX_PARALLELISM": "2",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with open(data_dir / f"worker-{len(list(data_dir.glob('worker-*')))}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "es_workers.reindex", *task_ids],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_a_killed_reindex_worker_is_resumed_from_its_checkpoint_exactly(
    database: tuple[str, asyncpg.Pool], tmp_path: Path
) -> None:
    dsn, pool = database
    blue = await _fill_blue(pool)
    async with pool.acquire() as conn:
        model = Model(
            model_id="minilm-copy",
            name="all-MiniLM-L6-v2",
            version="copy",
            dimensions=384,
            metric="cosine",
            aggregation="avg",
            source=BASE_MODEL_SOURCE,
            deployed=True,
        )
        await catalog.insert_model(conn, model)
        settings = Settings()
        started = await create_reindex(
            conn,
            settings,
            load_plugin(settings).get_search_index_info(),
            source_collection_id="",
            destination_model_id=model.model_id,
        )
    parent_id = started.task.task_id

    first = _worker(dsn, tmp_path, parent_id)
    try:
        deadline = time.monotonic() + 240
        victim = None
        while victim is None:
            assert first.poll() is None, (tmp_path / "worker-0.log").read_text()
            assert time.monotonic() < deadline, "the worker never got going"
            for child in await subtasks(pool, parent_id):
                if child.status == "processing" and child.result.get("pages", 0) >= 3:
                    victim = child
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    killed = await store.get_task(pool, victim.task_id)
    assert killed.status == "processing"
    checkpoint, copied = killed.result["checkpoint"], killed.result["copied"]
    assert 0 < copied < victim.params["expected_count"], "killed too late to be mid-range"
    # The lease runs out; the sweeper's query then offers the killed subtask again. A range the
    # worker had not claimed yet is still 'pending': offered again once it has waited unsent
    # for a few seconds (or, once sent, after task_resend_after_seconds); the second worker is
    # given it either way.
    await asyncio.sleep(LEASE_SECONDS + 0.5)
    resent = {t.task_id for t in await store.tasks_to_resend(pool, 600, max_attempts=3)}
    unfinished = [c for c in await subtasks(pool, parent_id) if c.status != "done"]
    processing = {c.task_id for c in unfinished if c.status == "processing"}
    assert victim.task_id in processing
    assert processing <= resent
    assert all(c.status == "pending" for c in unfinished if c.task_id not in processing)

    second = _worker(dsn, tmp_path, *(c.task_id for c in unfinished))
    assert second.wait(timeout=600) == 0, (tmp_path / "worker-1.log").read_text()

    parent = await store.get_task(pool, parent_id)
    assert parent.status == "done", parent.error
    assert parent.result["item_count"] == parent.result["source_item_count"] == N_ITEMS
    resumed = await store.get_task(pool, victim.task_id)
    assert resumed.status == "done" and resumed.attempts == 2
    assert resumed.result["copied"] == victim.params["expected_count"]
    assert resumed.result["already_present"] == 0  # it resumed after its checkpoint
    assert resumed.result["checkpoint"] > checkpoint

    async with pool.acquire() as conn:
        destination_collection = await catalog.get_collection(
            conn, started.destination_collection_id
        )
        per_item = await conn.fetch(
            f"SELECT object_id, count(*) FILTER (WHERE is_average) AS heads,"
            f" count(*) FILTER (WHERE NOT is_average) AS parts"
            f" FROM {catalog.items_table(destination_collection)} GROUP BY object_id"
        )
        source_ids = [
            r["object_id"]
            for r in await conn.fetch(
                f"SELECT object_id FROM {catalog.items_table(blue)}"
                " WHERE is_average ORDER BY object_id"
            )
        ]
    assert sorted(r["object_id"] for r in per_item) == source_ids
    assert all(r["heads"] == 1 and r["parts"] == 2 for r in per_item)
