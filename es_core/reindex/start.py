"""StartReindex: check the request, create the green destination and the parent task.

Both are created in one transaction that holds the blue alias FOR UPDATE: writes in flight
finish first (the reindex will read what they wrote), and every later write reaches the new
collection too. A retry with the same idempotency key returns the first task.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.collections.filterable import inherit_filterable_fields
from es_core.collections.lifecycle import create_green_collection
from es_core.collections.write_targets import lock_for_change
from es_core.config import Settings
from es_core.context import Context
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.plugins.protocol import SearchIndexInfo
from es_core.ranking.store import inherit as inherit_ranking
from es_core.storage.catalog import get_model, items_table, resolve_collection
from es_core.tasks.model import Task
from es_core.tasks.store import create_task, merge_task_params

MAX_IDEMPOTENCY_KEY_CHARS = 128


@dataclass(frozen=True)
class StartReindexInput:
    source_collection_id: str  # "" = the blue collection
    destination_model_id: str
    idempotency_key: str = ""


@dataclass(frozen=True)
class StartedReindex:
    task: Task
    destination_collection_id: str
    created: bool


async def start_reindex(ctx: Context, request: StartReindexInput) -> StartedReindex:
    """The StartReindex use case: the destination and the task are created in one
    transaction; the task is sent only after it commits (a retry with the same key sends
    nothing)."""
    async with ctx.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            ctx.settings,
            ctx.index,
            source_collection_id=request.source_collection_id,
            destination_model_id=request.destination_model_id,
            idempotency_key=request.idempotency_key,
        )
    await ctx.send_if_created(started.task, started.created)
    return started


def _check_request(
    settings: Settings, source_collection_id: str, destination_model_id: str, idempotency_key: str
) -> None:
    max_chars = settings.max_id_chars
    if len(source_collection_id) > max_chars:
        raise InvalidArgument.field_error(
            "source_collection_id", f"must be at most {max_chars} characters"
        )
    if not destination_model_id:
        raise InvalidArgument.field_error("destination_model_id", "must name a model version")
    if len(destination_model_id) > max_chars:
        raise InvalidArgument.field_error(
            "destination_model_id", f"must be at most {max_chars} characters"
        )
    if len(idempotency_key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument.field_error(
            "idempotency_key", f"must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters"
        )


async def create_reindex(
    conn: asyncpg.Connection,
    settings: Settings,
    index: SearchIndexInfo,
    *,
    source_collection_id: str,
    destination_model_id: str,
    idempotency_key: str = "",
) -> StartedReindex:
    """Create the destination collection (indexed as the plugin's ``index`` says) and the
    pending parent reindex task (not sent)."""
    _check_request(settings, source_collection_id, destination_model_id, idempotency_key)
    async with conn.transaction():
        await lock_for_change(conn)
        # The request as sent is what an idempotency key stands for; what it resolved to
        # (the blue collection of the moment) is added to the params afterwards.
        task, created = await create_task(
            conn,
            "reindex",
            {
                "source_collection_id": source_collection_id,
                "destination_model_id": destination_model_id,
            },
            idempotency_key=idempotency_key,
        )
        if not created:
            return StartedReindex(task, str(task.params["destination_collection_id"]), False)
        source = await resolve_collection(conn, source_collection_id, field="source_collection_id")
        try:
            model = await get_model(conn, destination_model_id)
        except NotFound as exc:
            raise NotFound.field_error("destination_model_id", exc.message) from None
        if not model.deployed:
            # Its encoders must serve: the reindex encodes with them, and so does every write
            # to the blue collection from now on (writes reach the green one too).
            raise FailedPrecondition.field_error(
                "destination_model_id", "is not deployed; deploy it with DeployModel first"
            )
        if model.model_id == source.model.model_id:
            raise FailedPrecondition.field_error(
                "destination_model_id",
                f"is the model of the source collection {source.collection_id!r}; reindex into"
                " another model version",
            )
        if model.dimensions != source.model.dimensions and await _has_vector_only_parts(
            conn, items_table(source)
        ):
            raise FailedPrecondition.field_error(
                "destination_model_id",
                f"has {model.dimensions} dimensions, the source {source.model.dimensions}, and"
                " some source items have parts with a vector but no text, which no model can"
                " re-encode",
            )
        # Filled in bulk: rows first, the HNSW index once at the end (es_core.reindex.parent).
        destination = await create_green_collection(
            conn, model, settings, index, reindex_task_id=task.task_id, vector_index=False
        )
        await inherit_ranking(conn, source, destination.collection_id)
        await inherit_filterable_fields(conn, source, destination)
        task = await merge_task_params(
            conn,
            task.task_id,
            {
                "resolved_source_collection_id": source.collection_id,
                "destination_collection_id": destination.collection_id,
                "user_copies": settings.reindex_user_copies,
            },
        )
    return StartedReindex(task, destination.collection_id, True)


async def _has_vector_only_parts(conn: asyncpg.Connection, table: str) -> bool:
    return bool(
        await conn.fetchval(
            f"SELECT EXISTS (SELECT 1 FROM {table}"
            f" WHERE user_id IS NULL AND NOT is_average AND text IS NULL)"
        )
    )
