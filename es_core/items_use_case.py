"""The item use cases behind UpsertService: writes become tasks (``upsertion``, ``deletion``)
that a worker runs; reads answer at once."""

from __future__ import annotations

from dataclasses import dataclass

from es_core.collections.write_targets import write_targets
from es_core.context import Context
from es_core.item_input import ItemInput, check_items, check_object_ids, check_vectors_fit
from es_core.item_versions import stamp_write_version
from es_core.storage import item_rows as stored
from es_core.storage.catalog import resolve_collection
from es_core.tasks.model import Task, TaskKind
from es_core.tasks.store import create_task


@dataclass(frozen=True)
class UpsertItemsInput:
    collection_id: str  # "" = the blue collection
    items: list[ItemInput]
    idempotency_key: str = ""


@dataclass(frozen=True)
class DeleteItemsInput:
    collection_id: str  # "" = the blue collection
    object_ids: list[str]
    idempotency_key: str = ""


@dataclass(frozen=True)
class GetItemsInput:
    collection_id: str  # "" = the blue collection
    object_ids: list[str]
    include_vectors: bool = False


@dataclass(frozen=True)
class GetItemsOutput:
    items: list[stored.StoredItem]
    missing_object_ids: list[str]  # asked for, not in the collection


async def upsert_items(ctx: Context, request: UpsertItemsInput) -> Task:
    """The items, checked against the collection and every collection a write reaches (its
    vectors must fit each), become an upsertion task."""
    async with ctx.pool.acquire() as conn:
        collection = await resolve_collection(conn, request.collection_id)
        check_items(request.items, collection, ctx.settings)
        for target in await write_targets(conn, collection):
            check_vectors_fit(request.items, target)
    return await _start(
        ctx,
        "upsertion",
        collection.collection_id,
        {"items": [item.to_json() for item in request.items]},
        request.idempotency_key,
    )


async def delete_items(ctx: Context, request: DeleteItemsInput) -> Task:
    object_ids = check_object_ids(request.object_ids, "object_ids", ctx.settings)
    return await _start(
        ctx, "deletion", request.collection_id, {"object_ids": object_ids}, request.idempotency_key
    )


async def get_items(ctx: Context, request: GetItemsInput) -> GetItemsOutput:
    object_ids = check_object_ids(request.object_ids, "object_ids", ctx.settings)
    async with ctx.pool.acquire() as conn:
        collection = await resolve_collection(conn, request.collection_id)
    items = await stored.get_items(
        ctx.pool, collection, object_ids, include_vectors=request.include_vectors
    )
    found = {item.object_id for item in items}
    return GetItemsOutput(items, [i for i in object_ids if i not in found])


async def _start(
    ctx: Context,
    kind: TaskKind,
    collection_id: str,
    params: dict[str, object],
    idempotency_key: str,
) -> Task:
    """Resolve the collection and create the task row with its write version in one
    transaction, then send it."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        collection = await resolve_collection(conn, collection_id)
        task, created = await create_task(
            conn,
            kind,
            {"collection_id": collection.collection_id, **params},
            idempotency_key=idempotency_key,
        )
        if created:
            task = await stamp_write_version(conn, task)
    return await ctx.send_if_created(task, created)
