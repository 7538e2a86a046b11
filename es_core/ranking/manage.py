"""The ranking settings use cases behind RankingService: read, set, declare, list, roll back,
and start a fit. Each validates first and changes nothing on bad input."""

from __future__ import annotations

import asyncpg

from es_core.context import Context
from es_core.domain import Collection
from es_core.errors import InvalidArgument
from es_core.pagination import Page, PageRequest
from es_core.ranking import store
from es_core.ranking.spec import (
    RankingSpec,
    SignalField,
    check_ranking_spec,
    check_signal_fields,
)
from es_core.storage.catalog import resolve_collection
from es_core.tasks.model import Task
from es_core.tasks.store import create_task


async def _collection(conn: asyncpg.Connection, collection_id: str) -> Collection:
    return await resolve_collection(conn, collection_id)


async def get_ranking_settings(ctx: Context, collection_id: str) -> store.RankingSettings:
    async with ctx.pool.acquire() as conn:
        collection = await _collection(conn, collection_id)
        return await store.get_settings(conn, collection.collection_id)


async def set_ranking_spec(
    ctx: Context, collection_id: str, spec: RankingSpec
) -> store.RankingSettings:
    async with ctx.pool.acquire() as conn, conn.transaction():
        collection = await _collection(conn, collection_id)
        check_ranking_spec(spec, collection, ctx.settings, "spec")
        await store.add_version(conn, collection.collection_id, spec, "manual", go_live=True)
        return await store.get_settings(conn, collection.collection_id)


async def declare_signal_fields(
    ctx: Context, collection_id: str, fields: list[SignalField]
) -> store.RankingSettings:
    check_signal_fields(fields, "fields")
    async with ctx.pool.acquire() as conn, conn.transaction():
        collection = await _collection(conn, collection_id)
        await store.declare_signals(conn, collection, fields)
        return await store.get_settings(conn, collection.collection_id)


async def rollback_ranking_spec(ctx: Context, collection_id: str) -> store.RankingSettings:
    async with ctx.pool.acquire() as conn, conn.transaction():
        collection = await _collection(conn, collection_id)
        await store.rollback(conn, collection.collection_id)
        return await store.get_settings(conn, collection.collection_id)


async def list_ranking_specs(
    ctx: Context, collection_id: str, page: PageRequest
) -> Page[store.SpecVersion]:
    """The collection's spec versions, newest first (at most ES_MAX_RANKING_SPECS_PAGE_SIZE)."""
    page_size = page.size(ctx.settings, ctx.settings.max_ranking_specs_page_size)
    async with ctx.pool.acquire() as conn:
        collection = await _collection(conn, collection_id)
    scope = {"kind": "ranking_specs", "collection": collection.collection_id}
    before = None
    if page.page_token:
        before = ctx.tokens.decode(page.page_token, scope).get("before")
        if isinstance(before, bool) or not isinstance(before, int):
            raise InvalidArgument.field_error(
                "page_token", "is not a page token this service issued"
            )
    versions = await store.list_versions(ctx.pool, collection.collection_id, before, page_size + 1)
    if len(versions) <= page_size:
        return Page(versions, "")
    shown = versions[:page_size]
    return Page(shown, ctx.tokens.encode({"before": shown[-1].version}, scope))


async def start_ranking_fit(ctx: Context, collection_id: str, idempotency_key: str) -> Task:
    """A ranking fit of the collection, asked for by a caller: created, then sent."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        task, created = await create_ranking_fit(conn, collection_id, idempotency_key)
    return await ctx.send_if_created(task, created)


async def create_ranking_fit(
    conn: asyncpg.Connection, collection_id: str, idempotency_key: str, trigger: str = "request"
) -> tuple[Task, bool]:
    """The pending ranking fit task for the collection (not sent), in the caller's transaction."""
    if "\x00" in idempotency_key:
        raise InvalidArgument.field_error("idempotency_key", "must not contain NUL characters")
    collection = await _collection(conn, collection_id)
    return await create_task(
        conn,
        "ranking_fit",
        {"collection_id": collection.collection_id, "trigger": trigger},
        idempotency_key=idempotency_key,
    )
