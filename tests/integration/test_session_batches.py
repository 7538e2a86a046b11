"""Sessions fall into the collecting batch; releasing it starts a new one."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from es_core.clickstream import store
from es_core.clickstream.model import Session, ShownResult
from tests.integration.helpers import new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration


async def _register(pool: asyncpg.Pool, collection_id: str, session_id: str) -> Session:
    from datetime import UTC, datetime

    session = Session(session_id, [ShownResult("o1", 0)], collection_id=collection_id)
    async with pool.acquire() as conn:
        stored, created = await store.register_session(conn, session, datetime.now(UTC), None)
    assert created
    return stored


async def test_release_closes_the_batch_and_new_sessions_start_another(
    pg_pool: asyncpg.Pool,
) -> None:
    collection = await new_collection(pg_pool, "cosine", "min")
    prefix = unique_id("batch")
    first = await _register(pg_pool, collection.collection_id, f"{prefix}-1")
    second = await _register(pg_pool, collection.collection_id, f"{prefix}-2")
    assert first.batch_id == second.batch_id
    async with pg_pool.acquire() as conn:
        released = await store.release_batch(conn)
    assert released == first.batch_id
    third = await _register(pg_pool, collection.collection_id, f"{prefix}-3")
    assert third.batch_id != first.batch_id
    states = dict(await pg_pool.fetch("SELECT batch_id, state FROM session_batches"))
    assert states[first.batch_id] == "released" and states[third.batch_id] == "collecting"
    listed, _ = await store.list_sessions(
        pg_pool, TOKENS, page_size=1000, page_token="", batch_id=released
    )
    mine = {s.session_id for s in listed if s.session_id.startswith(prefix)}
    assert mine == {f"{prefix}-1", f"{prefix}-2"}  # other tests' sessions may share the batch


async def test_concurrent_first_sessions_share_one_collecting_batch(
    pg_pool: asyncpg.Pool,
) -> None:
    collection = await new_collection(pg_pool, "cosine", "min")
    async with pg_pool.acquire() as conn:
        await store.release_batch(conn)  # no batch collects now: the sessions race to open one
    prefix = unique_id("race")
    stored = await asyncio.gather(
        *(_register(pg_pool, collection.collection_id, f"{prefix}-{i}") for i in range(6))
    )
    assert len({s.batch_id for s in stored}) == 1
    assert (
        await pg_pool.fetchval("SELECT count(*) FROM session_batches WHERE state = 'collecting'")
        == 1
    )
