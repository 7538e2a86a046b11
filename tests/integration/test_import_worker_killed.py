"""A real import worker process (``python -m es_workers.importing``, all-MiniLM-L6-v2 in
process) reading a customer's PostgreSQL table is SIGKILLed mid-import. Its lease runs out, a
new worker takes the task over from its checkpoint, and the collection ends with every row of
the table exactly once, counted once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.item_versions import stamp_write_version
from es_core.loaders.model import Fields, Locator, SourceSpec
from es_core.storage import catalog
from es_core.tasks import store
from tests.integration.helpers import fresh_database, prepared_database

pytestmark = pytest.mark.integration

N_ROWS = 500
PAGE = 20
LEASE_SECONDS = 2.0
WORDS = "cell protein gene tumor immune signal brain heart drug dose risk trial blood".split()


@pytest_asyncio.fixture
async def database(pg_server: EmbeddedPostgres) -> AsyncIterator[tuple[str, asyncpg.Pool]]:
    async with prepared_database(pg_server.dsn) as prepared:
        yield prepared


@pytest_asyncio.fixture
async def customer_table(pg_server: EmbeddedPostgres) -> AsyncIterator[str]:
    """A source database holding ``products``: N_ROWS rows, integer ids, a text and a price;
    two rows have no text (they fail at split, and are counted once as failed)."""
    async with fresh_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "CREATE TABLE products (id integer PRIMARY KEY, text text, price numeric)"
            )
            rows = [
                (i, " ".join(WORDS[(i * k) % len(WORDS)] for k in range(1, 9)), i / 4)
                for i in range(N_ROWS)
            ]
            rows[7] = (7, "", 1.75)
            rows[301] = (301, "   ", 75.25)
            await conn.executemany("INSERT INTO products VALUES ($1, $2, $3)", rows)
        finally:
            await conn.close()
        yield dsn


def _worker(dsn: str, source_dsn: str, data_dir: Path, task_id: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "ES_POSTGRES_DSN": dsn,
        "ES_DATA_DIR": str(data_dir),
        "ES_TASK_LEASE_SECONDS": str(LEASE_SECONDS),
        "ES_POSTGRES_SOURCES": json.dumps({"shop": source_dsn}),
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    with open(data_dir / f"worker-{len(list(data_dir.glob('worker-*')))}.log", "wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "es_workers.importing", task_id],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def test_a_killed_import_worker_is_resumed_from_its_checkpoint_exactly(
    database: tuple[str, asyncpg.Pool], customer_table: str, tmp_path: Path
) -> None:
    dsn, pool = database
    spec = SourceSpec("postgres", Locator(database="shop", table="products"), fields=Fields())
    async with pool.acquire() as conn, conn.transaction():
        blue = await catalog.get_blue_collection(conn)
        task, _ = await store.create_task(
            conn,
            "import",
            {
                "collection_id": blue.collection_id,
                "sources": [spec.to_json()],
                "page_size": PAGE,
                "max_failed_items": 0,
            },
        )
        task = await stamp_write_version(conn, task)

    first = _worker(dsn, customer_table, tmp_path, task.task_id)
    try:
        deadline = time.monotonic() + 240
        while True:
            assert first.poll() is None, (tmp_path / "worker-0.log").read_text()
            assert time.monotonic() < deadline, "the worker never got going"
            seen = await store.get_task(pool, task.task_id)
            if seen.result.get("read_count", 0) >= 3 * PAGE:
                break
            await asyncio.sleep(0.02)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()

    killed = await store.get_task(pool, task.task_id)
    assert killed.status == "processing"
    read_at_kill = killed.result["read_count"]
    assert 0 < read_at_kill < N_ROWS, "killed too late to be mid-import"
    assert killed.result["expected_count"] == N_ROWS
    await asyncio.sleep(LEASE_SECONDS + 0.5)
    resent = await store.tasks_to_resend(pool, 600, max_attempts=3)
    assert task.task_id in {t.task_id for t in resent}

    second = _worker(dsn, customer_table, tmp_path, task.task_id)
    assert second.wait(timeout=600) == 0, (tmp_path / "worker-1.log").read_text()

    done = await store.get_task(pool, task.task_id)
    assert done.status == "done", done.error
    assert done.attempts == 2
    result = done.result
    # Every row once: written or failed, none twice (the resumed run started after the last
    # page the killed one committed, so its counts add up exactly).
    assert result["imported_count"] == N_ROWS - 2
    assert result["failed_count"] == 2
    assert sorted(f["object_id"] for f in result["failed_items"]) == ["301", "7"]
    assert result["read_count"] == N_ROWS and result["superseded_count"] == 0
    assert result["sources_done"] == 1 and done.progress == 1.0
    async with pool.acquire() as conn:
        per_item = await conn.fetch(
            f"SELECT object_id, count(*) FILTER (WHERE is_average) AS heads,"
            f" count(*) FILTER (WHERE NOT is_average) AS parts,"
            f" max(payload->>'price') FILTER (WHERE is_average) AS price,"
            f" bool_or(source IS NOT NULL) AS referenced"
            f" FROM {catalog.items_table(blue)} GROUP BY object_id"
        )
    expected = sorted(str(i) for i in range(N_ROWS) if i not in (7, 301))
    assert sorted(r["object_id"] for r in per_item) == expected
    assert all(r["heads"] == 1 and r["parts"] == 1 and r["referenced"] for r in per_item)
    assert {r["object_id"]: float(r["price"]) for r in per_item}["10"] == 2.5
