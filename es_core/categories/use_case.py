"""The use cases behind CategoryService: writes become the items' own ``upsertion`` and
``deletion`` tasks, addressed to the model's categories collection (a worker encodes them
with the model's item encoder); listing answers at once.

Every request names an item collection (empty = the blue one): the categories written or
read are those of its model's blue categories collection. The first upsert for a model
creates that collection, blue at once, in the transaction that creates the task (and those
of the models its items are kept in step with: writes reach them all, see
``es_core.collections.write_targets``)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.categories.model import Category, as_item, from_head_payload
from es_core.categories.store import (
    blue_categories,
    count_categories,
    ensure_in_step,
    list_heads,
)
from es_core.collections.write_targets import lock_for_write
from es_core.context import Context
from es_core.errors import FailedPrecondition, InvalidArgument
from es_core.item_input import check_json, check_object_ids
from es_core.item_versions import stamp_write_version
from es_core.pagination import PageRequest
from es_core.plugins.protocol import CategoriesFineTuningMethod
from es_core.storage.catalog import resolve_collection
from es_core.tasks.model import Task, TaskKind
from es_core.tasks.store import create_task

MAX_PER_REQUEST = 1000
MAX_ID_CHARS = 256
MAX_NAME_CHARS = 256
MAX_PAYLOAD_BYTES = 64 * 1024


@dataclass(frozen=True)
class UpsertCategoriesInput:
    categories: list[Category]
    collection_id: str = ""  # the item collection whose model's categories; "" = blue
    idempotency_key: str = ""


@dataclass(frozen=True)
class DeleteCategoriesInput:
    category_ids: list[str]
    collection_id: str = ""
    idempotency_key: str = ""


@dataclass(frozen=True)
class CategoriesPage:
    categories: list[Category]
    next_page_token: str
    categories_collection_id: str  # "" when the model has no categories collection


def _text_field(value: str, field_path: str, max_chars: int, *, required: bool) -> None:
    if required and not value.strip():
        raise InvalidArgument.field_error(field_path, "must not be blank")
    if len(value) > max_chars:
        raise InvalidArgument.field_error(field_path, f"must be at most {max_chars} characters")
    if "\x00" in value:
        raise InvalidArgument.field_error(field_path, "must not contain NUL characters")


def check_categories(categories: list[Category], max_text_chars: int) -> None:
    """1..1000 categories with distinct ids; each field within its limits, named when not."""
    if not categories:
        raise InvalidArgument.field_error("categories", "must hold at least one category")
    if len(categories) > MAX_PER_REQUEST:
        raise InvalidArgument.field_error(
            "categories", f"must hold at most {MAX_PER_REQUEST} categories"
        )
    seen: dict[str, int] = {}
    for i, category in enumerate(categories):
        where = f"categories[{i}]"
        _text_field(category.category_id, f"{where}.category_id", MAX_ID_CHARS, required=True)
        if category.category_id in seen:
            raise InvalidArgument.field_error(
                f"{where}.category_id", f"repeats categories[{seen[category.category_id]}]"
            )
        seen[category.category_id] = i
        _text_field(category.name, f"{where}.name", MAX_NAME_CHARS, required=True)
        _text_field(category.text, f"{where}.text", max_text_chars, required=False)
        check_json(category.payload, f"{where}.payload", MAX_PAYLOAD_BYTES)


async def upsert_categories(
    ctx: Context, plugin: CategoriesFineTuningMethod, request: UpsertCategoriesInput
) -> Task:
    """An upsertion task into the model's blue categories collection (created when missing);
    FAILED_PRECONDITION when the collection would hold more than
    ES_CATEGORIES_MAX_PER_COLLECTION categories."""
    check_categories(request.categories, ctx.settings.max_text_chars)
    items = [as_item(c, plugin.get_category_text(c.name, c.text)) for c in request.categories]
    async with ctx.pool.acquire() as conn, conn.transaction():
        await lock_for_write(conn)  # which models' categories are kept in step stays put
        items_collection = await resolve_collection(conn, request.collection_id)
        collection = await ensure_in_step(conn, items_collection.model, ctx.index)
        held, adding = await count_categories(conn, collection, [i.object_id for i in items])
        cap = ctx.settings.categories_max_per_collection
        if held + adding > cap:
            raise FailedPrecondition.field_error(
                "categories",
                f"would make {held + adding} categories in {collection.collection_id!r};"
                f" a categories collection holds at most {cap} (ES_CATEGORIES_MAX_PER_COLLECTION)",
            )
        task, created = await _create_task(
            conn,
            "upsertion",
            collection.collection_id,
            {"items": [item.to_json() for item in items]},
            request.idempotency_key,
        )
    return await ctx.send_if_created(task, created)


async def delete_categories(ctx: Context, request: DeleteCategoriesInput) -> Task:
    """A deletion task on the model's blue categories collection; unknown ids are ignored.
    FAILED_PRECONDITION when the model has no categories collection."""
    ids = check_object_ids(request.category_ids, "category_ids", ctx.settings)
    for i, category_id in enumerate(ids):
        _text_field(category_id, f"category_ids[{i}]", MAX_ID_CHARS, required=True)
    async with ctx.pool.acquire() as conn, conn.transaction():
        items_collection = await resolve_collection(conn, request.collection_id)
        collection = await blue_categories(conn, items_collection.model)
        if collection is None:
            raise FailedPrecondition(_none_yet(items_collection.model.model_id))
        task, created = await _create_task(
            conn, "deletion", collection.collection_id, {"object_ids": ids}, request.idempotency_key
        )
    return await ctx.send_if_created(task, created)


async def list_categories(ctx: Context, collection_id: str, page: PageRequest) -> CategoriesPage:
    """The categories in id order, one page; an empty page when the model has none."""
    page_size = page.size(ctx.settings)
    async with ctx.pool.acquire() as conn:
        items_collection = await resolve_collection(conn, collection_id)
        collection = await blue_categories(conn, items_collection.model)
        if collection is None:
            if page.page_token:
                raise InvalidArgument.field_error(
                    "page_token", "its categories collection no longer exists"
                )
            return CategoriesPage([], "", "")
        scope = {"list": "categories", "collection": collection.collection_id}
        after = None
        if page.page_token:
            after = ctx.tokens.decode(page.page_token, scope).get("id")
            if not isinstance(after, str):
                raise InvalidArgument.field_error(
                    "page_token", "is not a page token this service issued"
                )
        rows = await list_heads(conn, collection, after, page_size + 1)
    categories = [from_head_payload(i, payload) for i, payload in rows[:page_size]]
    next_token = ""
    if len(rows) > page_size:
        next_token = ctx.tokens.encode({"id": categories[-1].category_id}, scope)
    return CategoriesPage(categories, next_token, collection.collection_id)


def _none_yet(model_id: str) -> str:
    return (
        f"model {model_id!r} has no categories collection yet;"
        " CategoryService.UpsertCategories creates it"
    )


async def _create_task(
    conn: asyncpg.Connection,
    kind: TaskKind,
    collection_id: str,
    params: dict[str, object],
    idempotency_key: str,
) -> tuple[Task, bool]:
    """The task (the same kinds as the items' writes) with its write version, in the caller's
    transaction; the caller sends it once that commits."""
    task, created = await create_task(
        conn, kind, {"collection_id": collection_id, **params}, idempotency_key=idempotency_key
    )
    if created:
        task = await stamp_write_version(conn, task)
    return task, created
