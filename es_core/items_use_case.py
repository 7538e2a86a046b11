"""The item use cases behind UpsertService: writes become tasks (``upsertion``, ``deletion``,
``import``) that a worker runs; reads answer at once."""

from __future__ import annotations

from dataclasses import dataclass

from es_core.collections.write_targets import write_targets
from es_core.context import Context
from es_core.errors import InvalidArgument
from es_core.ingest.sources import MAX_IMPORT_SOURCES, check_source
from es_core.item_input import ItemInput, check_items, check_object_ids, check_vectors_fit
from es_core.item_versions import stamp_write_version
from es_core.loaders.model import SourceSpec
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
class ImportItemsInput:
    collection_id: str  # "" = the blue collection
    sources: list[SourceSpec]
    idempotency_key: str = ""
    page_size: int = 0  # 0 = ES_IMPORT_PAGE_SIZE
    max_failed_items: int = 0  # 0 = failed items never fail the import


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
    for i, item in enumerate(request.items):
        if item.source is not None:
            check_source(ctx.loaders, item.source, f"items[{i}].source", whole=False)
    return await _start(
        ctx,
        "upsertion",
        collection.collection_id,
        {"items": [item.to_json() for item in request.items]},
        request.idempotency_key,
    )


async def import_items(ctx: Context, request: ImportItemsInput) -> Task:
    """The sources, checked and found readable, become one import task."""
    if not request.sources:
        raise InvalidArgument.field_error("sources", "must name at least one source")
    if len(request.sources) > MAX_IMPORT_SOURCES:
        raise InvalidArgument.field_error(
            "sources", f"must name at most {MAX_IMPORT_SOURCES} sources"
        )
    if not 0 <= request.page_size <= 10_000:
        raise InvalidArgument.field_error("page_size", "must be 0 (the default) to 10000")
    if request.max_failed_items < 0:
        raise InvalidArgument.field_error("max_failed_items", "must not be negative")
    for i, spec in enumerate(request.sources):
        check_source(ctx.loaders, spec, f"sources[{i}]", whole=True)
    async with ctx.pool.acquire() as conn:
        await resolve_collection(conn, request.collection_id)
    for i, spec in enumerate(request.sources):
        await ctx.loaders.probe(spec, f"sources[{i}]")
    return await _start(
        ctx,
        "import",
        request.collection_id,
        {
            "sources": [spec.to_json() for spec in request.sources],
            "page_size": request.page_size or ctx.settings.import_page_size,
            "max_failed_items": request.max_failed_items,
        },
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
