"""WatchTask wakes on PostgreSQL notifications: with the fallback re-read an hour away, a
watch still sees each committed change; the listener comes back after its connection is
killed; a rolled-back change or a lease renewal wakes no one; a watch that ends lets go of its
queue. The hang guards (asyncio.timeout) only keep a broken build from hanging the run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.context import Context
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.tasks import store
from es_core.tasks.model import Task
from es_core.tasks.updates import TaskUpdates
from es_core.tasks.use_case import watch_task
from tests.integration.helpers import RecordingSender
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

INDEX = TextMiniLMPlugin(Settings()).get_search_index_info()
GUARD = 60  # seconds: far below the fallback re-read (an hour), far above any real wake-up


@asynccontextmanager
async def listening(pg_server: EmbeddedPostgres) -> AsyncIterator[TaskUpdates]:
    updates = TaskUpdates(pg_server.dsn, retry_seconds=0.05)
    updates.start()
    try:
        async with asyncio.timeout(GUARD):
            while updates.backend_pid is None:
                await asyncio.sleep(0.01)
        yield updates
    finally:
        await updates.close()


def _context(pool: asyncpg.Pool, settings: Settings, updates: TaskUpdates) -> Context:
    slow = settings.model_copy(
        update={"task_watch_fallback_seconds": 3600.0, "task_watch_poll_seconds": 3600.0}
    )
    return Context(slow, pool, RecordingSender(), INDEX, TOKENS, updates)


async def _new_task(pool: asyncpg.Pool) -> Task:
    async with pool.acquire() as conn:
        task, _ = await store.create_task(conn, "improvement", {})
    return task


async def _next(watch: AsyncIterator[Task]) -> Task:
    async with asyncio.timeout(GUARD):
        return await anext(watch)


async def test_a_watch_sees_each_committed_change_with_the_fallback_an_hour_away(
    pg_pool: asyncpg.Pool, settings: Settings, pg_server: EmbeddedPostgres
) -> None:
    async with listening(pg_server) as updates:
        ctx = _context(pg_pool, settings, updates)
        task = await _new_task(pg_pool)
        watch = watch_task(ctx, task.task_id.upper())  # any spelling of the id is the task
        assert (await _next(watch)).status == "pending"
        await store.claim_task(pg_pool, task.task_id, "w", 60)
        assert (await _next(watch)).status == "processing"
        await store.report_progress(pg_pool, task.task_id, "w", 0.5, "half", 60)
        seen = await _next(watch)
        assert (seen.progress, seen.progress_message) == (0.5, "half")
        await store.finish_task(pg_pool, task.task_id, "w", "done")
        assert (await _next(watch)).status == "done"
        with pytest.raises(StopAsyncIteration):
            await _next(watch)
        assert updates.watching() == 0


async def test_the_listener_reconnects_after_its_backend_is_terminated(
    pg_pool: asyncpg.Pool, settings: Settings, pg_server: EmbeddedPostgres
) -> None:
    async with listening(pg_server) as updates:
        ctx = _context(pg_pool, settings, updates)
        task = await _new_task(pg_pool)
        watch = watch_task(ctx, task.task_id)
        assert (await _next(watch)).status == "pending"
        killed = updates.backend_pid
        assert await pg_pool.fetchval("SELECT pg_terminate_backend($1)", killed)
        async with asyncio.timeout(GUARD):
            while updates.backend_pid in (None, killed):
                await asyncio.sleep(0.01)
        assert updates.connects == 2
        # The reconnect woke the watch (it re-read an unchanged task and yielded nothing);
        # the change made now arrives by the new connection's notification.
        await store.claim_task(pg_pool, task.task_id, "w", 60)
        assert (await _next(watch)).status == "processing"
        await watch.aclose()


async def test_a_rolled_back_change_and_a_lease_renewal_wake_no_one(
    pg_pool: asyncpg.Pool, pg_server: EmbeddedPostgres
) -> None:
    """Notifications arrive in commit order on the one connection: once the later committed
    change of ``other`` has woken its queue, ``task``'s queue would hold a wake-up if any of
    the changes before had sent one."""
    async with listening(pg_server) as updates:
        task, other = await _new_task(pg_pool), await _new_task(pg_pool)
        await store.claim_task(pg_pool, task.task_id, "w", 60)
        with updates.subscribe(task.task_id) as woken, updates.subscribe(other.task_id) as marker:
            async with pg_pool.acquire() as conn:
                tx = conn.transaction()
                await tx.start()
                await store.report_progress(conn, task.task_id, "w", 0.3, "never", 60)
                await tx.rollback()
            assert await store.renew_lease(pg_pool, task.task_id, "w", 60)
            await store.claim_task(pg_pool, other.task_id, "w", 60)
            async with asyncio.timeout(GUARD):
                await marker.get()
            assert woken.empty()
            await store.report_progress(pg_pool, task.task_id, "w", 0.6, "seen", 60)
            async with asyncio.timeout(GUARD):
                await woken.get()


async def test_a_canceled_watch_releases_its_queue(
    pg_pool: asyncpg.Pool, settings: Settings, pg_server: EmbeddedPostgres
) -> None:
    async with listening(pg_server) as updates:
        ctx = _context(pg_pool, settings, updates)
        task = await _new_task(pg_pool)
        first = asyncio.Event()

        async def follow() -> None:
            async for _ in watch_task(ctx, task.task_id):
                first.set()

        watcher = asyncio.create_task(follow())
        async with asyncio.timeout(GUARD):
            await first.wait()
        assert updates.watching(task.task_id) == 1
        watcher.cancel()
        with pytest.raises(asyncio.CancelledError):
            await watcher
        assert updates.watching(task.task_id) == 0
        assert updates.watching() == 0


async def test_without_a_listener_a_watch_polls(pg_pool: asyncpg.Pool, settings: Settings) -> None:
    fast = settings.model_copy(update={"task_watch_poll_seconds": 0.01})
    ctx = Context(fast, pg_pool, RecordingSender(), INDEX, TOKENS)
    task = await _new_task(pg_pool)
    watch = watch_task(ctx, task.task_id)
    assert (await _next(watch)).status == "pending"
    await store.claim_task(pg_pool, task.task_id, "w", 60)
    assert (await _next(watch)).status == "processing"
    await watch.aclose()
