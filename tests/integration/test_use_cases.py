"""The use cases behind the API, called as the server calls them (real PostgreSQL, a recording
sender): a task is sent only by the request that created it, a restart sends again, and list
pages follow ES_DEFAULT_PAGE_SIZE and ES_MAX_PAGE_SIZE."""

from __future__ import annotations

import asyncpg
import pytest

from es_core.config import Settings
from es_core.context import Context
from es_core.items_use_case import DeleteItemsInput, delete_items
from es_core.pagination import PageRequest
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.tasks import store
from es_core.tasks.use_case import ListTasksInput, list_tasks, restart_task
from tests.integration.helpers import RecordingSender, new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

# Use cases here create no collections; the built-in plugin's layout stands in.
INDEX = TextMiniLMPlugin(Settings()).get_search_index_info()


async def test_a_retried_request_returns_the_first_task_and_sends_it_once(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool)
    sender = RecordingSender()
    ctx = Context(settings, pg_pool, sender, INDEX, TOKENS)
    request = DeleteItemsInput(
        collection.collection_id, ["a", "b", "a"], idempotency_key=unique_id("key")
    )
    first = await delete_items(ctx, request)
    again = await delete_items(ctx, request)
    assert again.task_id == first.task_id
    assert sender.sent == [first.task_id]
    version = first.params["version"]
    assert first.params == {
        "collection_id": collection.collection_id,
        "object_ids": ["a", "b"],
        "version": version,
    }
    assert again.params["version"] == version  # the retry keeps the first request's place


async def test_a_restarted_task_is_sent_again(pg_pool: asyncpg.Pool, settings: Settings) -> None:
    collection = await new_collection(pg_pool)
    sender = RecordingSender()
    ctx = Context(settings, pg_pool, sender, INDEX, TOKENS)
    task = await delete_items(ctx, DeleteItemsInput(collection.collection_id, ["a"]))
    await store.cancel_task(pg_pool, task.task_id)
    restarted = await restart_task(ctx, task.task_id)
    assert restarted.status == "pending"
    assert sender.sent == [task.task_id, task.task_id]


async def test_list_pages_follow_the_configured_default_and_maximum(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    async with pg_pool.acquire() as conn:
        for _ in range(3):
            await store.create_task(conn, "improvement", {"n": unique_id("p")})
    small = settings.model_copy(update={"default_page_size": 2, "max_page_size": 2})
    ctx = Context(small, pg_pool, RecordingSender(), INDEX, TOKENS)
    by_default = await list_tasks(ctx, ListTasksInput(PageRequest(), kind="improvement"))
    assert len(by_default.items) == 2 and by_default.next_page_token
    clamped = await list_tasks(ctx, ListTasksInput(PageRequest(page_size=3), kind="improvement"))
    assert len(clamped.items) == 2
