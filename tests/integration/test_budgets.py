"""Budgets, through the real gRPC server (es_server.app.build_server) on the real PostgreSQL:
expensive filters do not starve GetTask, a statement past its timeout is RESOURCE_EXHAUSTED, a
request that finds no free connection is UNAVAILABLE, a filter over its budget is refused naming
``filter``, a call past its deadline is DEADLINE_EXCEEDED, and both streams stop at their caps.

The items carry 60 KB of text each, so a match clause costs a few milliseconds per row: ten
of them (the most the default filter budget allows) over a few dozen rows keep a search
connection busy for seconds."""

from __future__ import annotations

import asyncio
import random
import string
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from embedding_studio.client import AsyncClient
from embedding_studio.v1 import (
    clickstream_pb2 as cs,
)
from embedding_studio.v1 import (
    clickstream_pb2_grpc,
    common_pb2,
    search_pb2,
    search_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)
from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.encoders.registry import EncoderRegistry
from es_core.plugins.text_categories import TextCategoriesPlugin
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.storage.db import create_pool
from es_core.tasks import store
from es_server.app import build_server
from es_server.state import ServerState
from tests.integration.helpers import RecordingSender, load_items, new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

ITEMS = 30


@pytest.fixture(scope="module")
async def text_collection(pg_pool: asyncpg.Pool) -> str:
    """A collection of items with 60 KB of random words in ``text``."""
    collection = await new_collection(pg_pool)
    rnd = random.Random(0)
    vocabulary = ["".join(rnd.choices(string.ascii_lowercase, k=6)) for _ in range(3000)]
    items = [
        (
            f"item-{i}",
            np.asarray([rnd.random() for _ in range(8)], np.float32).reshape(1, 8),
            {"text": " ".join(rnd.choices(vocabulary, k=8600))},
        )
        for i in range(ITEMS)
    ]
    await load_items(pg_pool, collection, items)
    return collection.collection_id


def expensive_filter(match_clauses: int = 10) -> common_pb2.Filter:
    """Match clauses no item satisfies, under must_not: every one is evaluated on every row."""
    return common_pb2.Filter(
        bool=common_pb2.BoolFilter(
            must_not=[
                common_pb2.Filter(match=common_pb2.MatchFilter(field="text", query=f"absent{i}"))
                for i in range(match_clauses)
            ]
        )
    )


@asynccontextmanager
async def serving(
    pg_server: EmbeddedPostgres, settings: Settings, **budgets: Any
) -> AsyncIterator[tuple[grpc.aio.Channel, ServerState]]:
    """The server as ``es_server.app.serve`` builds it, with ``budgets`` in its settings."""
    settings = settings.model_copy(update=budgets)
    pool = await create_pool(settings, pg_server.dsn, role="api")
    search_pool = await create_pool(
        settings, pg_server.dsn, role="search", max_size=settings.db_search_pool_max_size
    )
    plugin = TextMiniLMPlugin(settings)
    encoders = EncoderRegistry(plugin.get_inference_client_factory().create, batch_size=8)
    state = ServerState(
        settings,
        pool,
        encoders,
        plugin,
        RecordingSender(),
        TOKENS,
        search_pool,
        TextCategoriesPlugin(settings),
    )
    server, _ = build_server(state)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel, state
    finally:
        await channel.close()
        await server.stop(grace=None)
        await search_pool.close()
        await pool.close()


def count_request(
    collection_id: str, filter: common_pb2.Filter | None = None
) -> search_pb2.CountItemsRequest:
    """CountItems with ``filter`` (None: with no filter at all)."""
    return search_pb2.CountItemsRequest(collection_id=collection_id, filter=filter)


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


async def test_get_task_answers_within_a_second_while_expensive_filters_hold_the_searches(
    pg_server: EmbeddedPostgres, settings: Settings, pg_pool: asyncpg.Pool, text_collection: str
) -> None:
    async with pg_pool.acquire() as conn:
        task, _ = await store.create_task(conn, "improvement", {"n": unique_id("budget")})
    async with serving(
        pg_server,
        settings,
        db_search_pool_max_size=2,
        db_pool_max_size=2,
        db_acquire_timeout_seconds=30.0,
    ) as (channel, _):
        search = search_pb2_grpc.SearchServiceStub(channel)
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        counts = [
            asyncio.ensure_future(
                search.CountItems(count_request(text_collection, expensive_filter()), timeout=60)
            )
            for _ in range(10)
        ]
        await asyncio.sleep(0.5)
        started = time.perf_counter()
        got = await tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.task_id), timeout=10)
        waited = time.perf_counter() - started
        # The searches were still queued behind the two search connections when GetTask came.
        still_running = sum(not c.done() for c in counts)
        results = await asyncio.gather(*counts, return_exceptions=True)
    assert got.task.task_id == task.task_id
    assert waited < 1.0, f"GetTask waited {waited:.2f} s behind the searches"
    assert still_running >= 8
    for result in results:
        if isinstance(result, BaseException):
            assert isinstance(result, grpc.aio.AioRpcError)
            assert result.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, result.details()
        else:
            assert result.count == ITEMS


async def test_a_statement_past_its_timeout_is_resource_exhausted(
    pg_server: EmbeddedPostgres, settings: Settings, text_collection: str
) -> None:
    async with serving(pg_server, settings, db_search_statement_timeout_seconds=0.3) as (
        channel,
        _,
    ):
        search = search_pb2_grpc.SearchServiceStub(channel)
        error = await refusal(
            search.CountItems(count_request(text_collection, expensive_filter()), timeout=60)
        )
        cheap = await search.CountItems(count_request(text_collection), timeout=60)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "CountItems" in error.details() and "time limit" in error.details()
    assert "statement timeout" in error.details()
    assert cheap.count == ITEMS  # the connection it ran on is fine afterwards


async def test_a_request_that_finds_no_free_connection_is_unavailable(
    pg_server: EmbeddedPostgres, settings: Settings, text_collection: str
) -> None:
    async with serving(
        pg_server, settings, db_search_pool_max_size=1, db_acquire_timeout_seconds=0.5
    ) as (channel, state):
        search = search_pb2_grpc.SearchServiceStub(channel)
        request = count_request(text_collection)
        async with state.search_pool.acquire():
            error = await refusal(search.CountItems(request, timeout=60))
        after = await search.CountItems(request, timeout=60)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "busy" in error.details() and "0.5 s" in error.details()
    assert after.count == ITEMS


async def test_a_filter_over_its_budget_is_refused_naming_the_filter(
    pg_server: EmbeddedPostgres, settings: Settings, text_collection: str
) -> None:
    async with serving(pg_server, settings) as (channel, _):
        search = search_pb2_grpc.SearchServiceStub(channel)
        request = count_request(text_collection, expensive_filter(64))
        error = await refusal(search.CountItems(request, timeout=60))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "budget of 1024" in error.details()
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    status.details[0].Unpack(bad_request)
    assert [v.field for v in bad_request.field_violations] == ["filter"]
    assert "costs 6400" in bad_request.field_violations[0].description


async def test_a_call_past_its_deadline_is_stopped_even_when_the_caller_allows_more(
    pg_server: EmbeddedPostgres, settings: Settings, text_collection: str
) -> None:
    async with serving(
        pg_server, settings, rpc_default_deadline_seconds=0.3, rpc_max_deadline_seconds=0.5
    ) as (channel, _):
        search = search_pb2_grpc.SearchServiceStub(channel)
        no_deadline = await refusal(
            search.CountItems(count_request(text_collection, expensive_filter()))
        )
        long_deadline = await refusal(
            search.CountItems(count_request(text_collection, expensive_filter()), timeout=60)
        )
    assert no_deadline.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline of 0.3 s" in no_deadline.details()
    assert long_deadline.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline of 0.5 s" in long_deadline.details()


async def test_watch_task_ends_at_its_cap_with_the_latest_state_sent(
    pg_server: EmbeddedPostgres, settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    async with pg_pool.acquire() as conn:
        task, _ = await store.create_task(conn, "improvement", {"n": unique_id("watch")})
    async with serving(pg_server, settings, watch_task_max_seconds=0.5) as (channel, _):
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        call = tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task.task_id), timeout=30)
        seen = []
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            async for response in call:
                seen.append(response.task.status)
    assert seen == [common_pb2.TASK_STATUS_PENDING]
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "ES_WATCH_TASK_MAX_SECONDS" in (caught.value.details() or "")


async def test_a_stream_of_events_is_cut_at_its_cap_and_what_came_before_is_kept(
    pg_server: EmbeddedPostgres, settings: Settings, pg_pool: asyncpg.Pool, text_collection: str
) -> None:
    session_id = unique_id("s")
    async with serving(pg_server, settings, stream_events_max_messages=2) as (channel, _):
        clickstream = clickstream_pb2_grpc.ClickstreamServiceStub(channel)
        await clickstream.RegisterSession(
            cs.RegisterSessionRequest(
                session=cs.Session(
                    session_id=session_id,
                    query_text="words",
                    collection_id=text_collection,
                    results=[cs.ShownResult(object_id="item-0", rank=0)],
                )
            ),
            timeout=30,
        )

        def batch(i: int) -> cs.StreamEventsRequest:
            return cs.StreamEventsRequest(
                events=[
                    cs.SessionEvent(
                        event_id=f"{session_id}-{i}",
                        session_id=session_id,
                        object_id="item-0",
                        event_type="click",
                    )
                ]
            )

        error = await refusal(
            clickstream.StreamEvents(iter([batch(0), batch(1), batch(2)]), timeout=30)
        )
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at most 2 messages" in error.details() and "2 events accepted" in error.details()
    async with pg_pool.acquire() as conn:
        kept = await conn.fetch(
            "SELECT event_id FROM session_events WHERE session_id = $1 ORDER BY event_id",
            session_id,
        )
    assert [r["event_id"] for r in kept] == [f"{session_id}-0", f"{session_id}-1"]


async def test_the_client_resumes_a_watch_the_server_ended_at_its_cap(
    pg_server: EmbeddedPostgres, settings: Settings, pg_pool: asyncpg.Pool
) -> None:
    async with pg_pool.acquire() as conn:
        task, _ = await store.create_task(conn, "improvement", {"n": unique_id("rewatch")})

    async def cancel_later() -> None:
        await asyncio.sleep(1.0)
        await store.cancel_task(pg_pool, task.task_id)

    async with serving(pg_server, settings, watch_task_max_seconds=0.3) as (channel, _):
        canceling = asyncio.ensure_future(cancel_later())
        final = await AsyncClient(channel).wait_for_task(task.task_id, timeout_seconds=30)
        await canceling
    assert final.status == common_pb2.TASK_STATUS_CANCELED
