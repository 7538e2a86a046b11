"""The ranking settings use cases behind RankingService: read, set, declare, list, roll back,
and start a fit. Each validates first and changes nothing on bad input."""

from __future__ import annotations

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection
from es_core.errors import InvalidArgument
from es_core.pagination import decode_page_token, encode_page_token
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


async def get_ranking_settings(pool: asyncpg.Pool, collection_id: str) -> store.RankingSettings:
    async with pool.acquire() as conn:
        collection = await _collection(conn, collection_id)
        return await store.get_settings(conn, collection.collection_id)


async def set_ranking_spec(
    pool: asyncpg.Pool, settings: Settings, collection_id: str, spec: RankingSpec
) -> store.RankingSettings:
    async with pool.acquire() as conn, conn.transaction():
        collection = await _collection(conn, collection_id)
        check_ranking_spec(spec, collection, settings, "spec")
        await store.add_version(conn, collection.collection_id, spec, "manual", go_live=True)
        return await store.get_settings(conn, collection.collection_id)


async def declare_signal_fields(
    pool: asyncpg.Pool, collection_id: str, fields: list[SignalField]
) -> store.RankingSettings:
    check_signal_fields(fields, "fields")
    async with pool.acquire() as conn, conn.transaction():
        collection = await _collection(conn, collection_id)
        await store.declare_signals(conn, collection, fields)
        return await store.get_settings(conn, collection.collection_id)


async def rollback_ranking_spec(pool: asyncpg.Pool, collection_id: str) -> store.RankingSettings:
    async with pool.acquire() as conn, conn.transaction():
        collection = await _collection(conn, collection_id)
        await store.rollback(conn, collection.collection_id)
        return await store.get_settings(conn, collection.collection_id)


async def list_ranking_specs(
    pool: asyncpg.Pool, collection_id: str, page_size: int, page_token: str
) -> tuple[list[store.SpecVersion], str]:
    async with pool.acquire() as conn:
        collection = await _collection(conn, collection_id)
    scope = {"kind": "ranking_specs", "collection": collection.collection_id}
    before = None
    if page_token:
        before = decode_page_token(page_token, scope).get("before")
        if not isinstance(before, int):
            raise InvalidArgument.field_error(
                "page_token", "is not a page token this service issued"
            )
    versions = await store.list_versions(pool, collection.collection_id, before, page_size + 1)
    if len(versions) <= page_size:
        return versions, ""
    page = versions[:page_size]
    return page, encode_page_token({"before": page[-1].version}, scope)


async def start_ranking_fit(
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
