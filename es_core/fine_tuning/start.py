"""StartFineTuning: check the request, fix the batch of sessions and create the task row.

The batch is released in the same transaction that creates the task, so the task trains on
exactly the sessions recorded before the call, and new sessions start a new batch. A retry with
the same idempotency key returns the first task and releases nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from es_core.categories.store import blue_categories
from es_core.clickstream import store as clickstream
from es_core.clickstream.model import check_id
from es_core.config import Settings
from es_core.context import Context
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.fine_tuning.search_space import check_space_size
from es_core.item_input import check_json
from es_core.plugins.protocol import FineTuningMethod
from es_core.storage.catalog import get_blue_collection
from es_core.tasks.model import Task
from es_core.tasks.store import create_task, merge_task_params

MAX_HYPERPARAMETERS_BYTES = 16 * 1024


@dataclass(frozen=True)
class StartFineTuningInput:
    idempotency_key: str = ""
    deploy_as_blue: bool = False
    batch_id: str = ""  # "" = the sessions recorded since the last fine-tuning
    hyperparameters: dict[str, Any] = field(default_factory=dict)  # overrides of the plugin's
    # "items" (search) or "categories" (PredictCategories: es_core.categories.fine_tuning)
    target: str = "items"


TARGETS = ("items", "categories")


async def start_fine_tuning(
    ctx: Context, plugin: FineTuningMethod, request: StartFineTuningInput
) -> Task:
    """The batch is released and the task created in one transaction; the task is sent only
    after it commits (a retry with the same key sends nothing)."""
    async with ctx.pool.acquire() as conn, conn.transaction():
        task, created = await _create(conn, ctx.settings, plugin, request)
    return await ctx.send_if_created(task, created)


async def _create(
    conn: asyncpg.Connection,
    settings: Settings,
    plugin: FineTuningMethod,
    request: StartFineTuningInput,
) -> tuple[Task, bool]:
    """Create the fine-tuning task in the caller's transaction; returns (task, created)."""
    overrides, batch_id = request.hyperparameters, request.batch_id
    if request.target not in TARGETS:
        raise InvalidArgument.field_error("target", f"must be one of {', '.join(TARGETS)}")
    check_json(overrides, "hyperparameters", MAX_HYPERPARAMETERS_BYTES)
    space = plugin.get_fine_tuning_builder().search_space(overrides)  # raises naming a bad entry
    check_space_size(space, settings.max_hyperparameter_combinations)
    if batch_id:
        check_id(batch_id, "batch_id", settings)
    params = {
        "batch_id": batch_id,
        "deploy_as_blue": request.deploy_as_blue,
        "hyperparameters": overrides,
        "plugin": plugin.meta.name,
        "target": request.target,
    }
    task, created = await create_task(
        conn, "fine_tuning", params, idempotency_key=request.idempotency_key
    )
    if not created:
        return task, False
    if request.target == "categories":
        blue = await get_blue_collection(conn)
        if await blue_categories(conn, blue.model) is None:
            raise FailedPrecondition.field_error(
                "target",
                f"model {blue.model.model_id!r} has no categories collection yet;"
                " add categories with CategoryService.UpsertCategories",
            )
    if batch_id:
        if await clickstream.batch_state(conn, batch_id) is None:
            raise NotFound.field_error("batch_id", f"session batch {batch_id!r} does not exist")
        await clickstream.release_named_batch(conn, batch_id)
        resolved = batch_id
    else:
        released = await clickstream.release_batch(conn)
        if released is None:
            raise FailedPrecondition.field_error(
                "batch_id", "no sessions have been recorded since the last fine-tuning"
            )
        resolved = released
    if not await clickstream.count_batch_sessions(conn, resolved):
        raise FailedPrecondition.field_error("batch_id", f"session batch {resolved!r} is empty")
    task = await merge_task_params(conn, task.task_id, {"resolved_batch_id": resolved})
    return task, True
