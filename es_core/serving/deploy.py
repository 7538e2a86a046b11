"""DeployModel and UndeployModel: the request checks, and the task that makes them so.

``models.deployed`` is the truth about what should serve. A request creates a ``deployment``
task (in the caller's transaction, checked under one advisory lock so two requests never both
pass the cap); the worker flips the flag and waits until Triton, which follows the flag
(``es_triton.server``), reports the model's two encoders ready or gone. Without Triton
(in-process encoding) the flag is all there is, and the task ends at once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import asyncpg

from es_core.collections.write_targets import kept_in_step
from es_core.config import Settings
from es_core.context import Context
from es_core.domain import Model, Progress
from es_core.encoders.triton import models_ready, triton_model_names
from es_core.errors import EsError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from es_core.plugins.protocol import FineTuningMethod
from es_core.storage import catalog
from es_core.tasks import lookups, store
from es_core.tasks.model import Task

Action = Literal["deploy", "undeploy"]
MAX_MODEL_ID_CHARS = 128
# Held for the checks and the flag change of every deploy and undeploy, request or worker.
_LOCK = "es.deployment"
POLL_SECONDS = 0.5


def check_model_id(model_id: str, field_path: str = "model_id") -> None:
    if not model_id:
        raise InvalidArgument.field_error(field_path, "must name a model version")
    if len(model_id) > MAX_MODEL_ID_CHARS or "\x00" in model_id:
        raise InvalidArgument.field_error(
            field_path, f"must be at most {MAX_MODEL_ID_CHARS} characters, without NUL"
        )


async def _lock(conn: asyncpg.Connection) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", _LOCK)


async def _model(conn: asyncpg.Connection, model_id: str) -> Model:
    try:
        return await catalog.get_model(conn, model_id)
    except NotFound as exc:
        raise NotFound.field_error("model_id", exc.message) from None


async def in_flight(conn: asyncpg.Connection, model_id: str) -> Task | None:
    """The pending or running deployment task of this model, if any (at most one exists)."""
    task_id = await lookups.active_with_param(conn, "deployment", "model_id", model_id)
    return None if task_id is None else await store.get_task(conn, task_id)


async def _deployed_or_deploying(conn: asyncpg.Connection, other_than: str) -> int:
    deployed = {
        str(r["model_id"]) for r in await conn.fetch("SELECT model_id FROM models WHERE deployed")
    }
    return len((deployed | await lookups.models_being_deployed(conn)) - {other_than})


def _cap_error(busy: int, settings: Settings) -> FailedPrecondition:
    return FailedPrecondition.field_error(
        "model_id",
        f"cannot be deployed: {busy} model versions are deployed or being deployed, and"
        f" max_deployed_models (ES_MAX_DEPLOYED_MODELS) is {settings.max_deployed_models};"
        " undeploy one first",
    )


async def start_deploy(
    conn: asyncpg.Connection, settings: Settings, model_id: str
) -> tuple[Task, bool]:
    """Create the deploy task in the caller's transaction; returns (task, created).

    A model already being deployed returns that task (created=False); one already deployed,
    or being undeployed, is FAILED_PRECONDITION, as is a deploy past the cap."""
    check_model_id(model_id)
    async with conn.transaction():
        await _lock(conn)
        model = await _model(conn, model_id)
        running = await in_flight(conn, model_id)
        if running is not None:
            if running.params.get("action") == "deploy":
                return running, False
            raise FailedPrecondition.field_error(
                "model_id",
                f"is being undeployed by task {running.task_id}; deploy it when that is done",
            )
        if model.deployed:
            raise FailedPrecondition.field_error("model_id", "is already deployed")
        busy = await _deployed_or_deploying(conn, model_id)
        if busy >= settings.max_deployed_models:
            raise _cap_error(busy, settings)
        return await store.create_task(
            conn, "deployment", {"action": "deploy", "model_id": model_id}
        )


async def _check_undeployable(conn: asyncpg.Connection, model_id: str) -> None:
    blue = await conn.fetchval(
        "SELECT m.model_id FROM blue_collection b JOIN collections c USING (collection_id)"
        " JOIN models m ON m.model_id = c.model_id FOR SHARE OF b"
    )
    if blue == model_id:
        raise FailedPrecondition.field_error(
            "model_id", "serves the blue collection; switch blue to another collection first"
        )
    reindex = await lookups.active_with_param(conn, "reindex", "destination_model_id", model_id)
    if reindex is not None:
        raise FailedPrecondition.field_error(
            "model_id", f"encodes for reindex task {reindex}; wait for it or cancel it first"
        )
    # Every write reaches the collections kept in step, each encoded with its own model.
    for collection in await kept_in_step(conn):
        if collection.model.model_id == model_id:
            raise FailedPrecondition.field_error(
                "model_id",
                f"encodes the writes to collection {collection.collection_id!r}, which is kept in"
                " step with blue (the rollback target, or a reindexed green); delete that"
                " collection first",
            )


async def start_undeploy(
    conn: asyncpg.Connection, settings: Settings, model_id: str, *, required: bool = False
) -> tuple[Task | None, bool]:
    """Create the undeploy task in the caller's transaction; returns (task, created).

    A model already being undeployed returns that task (created=False). The model of the blue
    collection, one a reindex encodes with, or one of a collection kept in step with blue (which
    every write reaches) is FAILED_PRECONDITION. A model that is not
    deployed, or is being deployed, is FAILED_PRECONDITION when ``required`` (the RPC), and
    (None, False) otherwise (a cleanup that undeploys whatever is left)."""
    check_model_id(model_id)
    async with conn.transaction():
        await _lock(conn)
        model = await _model(conn, model_id)
        running = await in_flight(conn, model_id)
        if running is not None and running.params.get("action") == "undeploy":
            return running, False
        if running is not None or not model.deployed:
            if not required:
                return None, False
            if running is not None:
                raise FailedPrecondition.field_error(
                    "model_id",
                    f"is being deployed by task {running.task_id}; undeploy it when that is done",
                )
            raise FailedPrecondition.field_error("model_id", "is not deployed")
        await _check_undeployable(conn, model_id)
        return await store.create_task(
            conn, "deployment", {"action": "undeploy", "model_id": model_id}
        )


async def deploy_model(ctx: Context, model_id: str) -> Task:
    """The DeployModel use case: the deploy task, sent once its row commits (a model already
    being deployed returns that task and sends nothing). The model serves once it is done."""
    async with ctx.pool.acquire() as conn:
        task, created = await start_deploy(conn, ctx.settings, model_id)
    return await ctx.send_if_created(task, created)


async def undeploy_model(ctx: Context, model_id: str) -> Task:
    """The UndeployModel use case: as ``deploy_model``; a model that is not deployed, or is
    being deployed, is FAILED_PRECONDITION."""
    async with ctx.pool.acquire() as conn:
        task, created = await start_undeploy(conn, ctx.settings, model_id, required=True)
    assert task is not None  # required=True raises instead
    return await ctx.send_if_created(task, created)


async def _set_deployed(
    pool: asyncpg.Pool, settings: Settings, model_id: str, deployed: bool
) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _lock(conn)
        await _model(conn, model_id)
        if deployed:
            busy = int(
                await conn.fetchval(
                    "SELECT count(*) FROM models WHERE deployed AND model_id <> $1", model_id
                )
            )
            if busy >= settings.max_deployed_models:
                raise _cap_error(busy, settings)
        else:
            await _check_undeployable(conn, model_id)
        await conn.execute(
            "UPDATE models SET deployed = $2 WHERE model_id = $1", model_id, deployed
        )


async def _revert_deploy(pool: asyncpg.Pool, model_id: str) -> None:
    async with pool.acquire() as conn:
        # Never the blue collection's model: it must stay served whatever happened here.
        await conn.execute(
            "UPDATE models SET deployed = false WHERE model_id = $1 AND model_id IS DISTINCT FROM"
            " (SELECT c.model_id FROM blue_collection b JOIN collections c USING (collection_id))",
            model_id,
        )


async def _wait_for_triton(
    settings: Settings, names: list[str], ready: bool, progress: Progress
) -> bool:
    """Poll Triton until the models are all ready (or all gone); False when the task was
    canceled meanwhile. Unavailable after ``deployment_timeout_seconds``."""
    url = settings.triton_url
    what = "ready" if ready else "unloaded"
    timeout = settings.deployment_timeout_seconds
    deadline = time.monotonic() + timeout
    error = ""
    while True:
        try:
            states = await asyncio.to_thread(models_ready, url, names)
            error = ""
            if all(state == ready for state in states.values()):
                return True
        except Unavailable as exc:
            error = exc.message
        waited = timeout - (deadline - time.monotonic())
        if time.monotonic() >= deadline:
            break
        message = f"waiting for Triton to report {', '.join(names)} {what}"
        if not await progress(0.2 + 0.7 * min(1.0, waited / timeout), message):
            return False
        await asyncio.sleep(POLL_SECONDS)
    raise Unavailable(
        error
        or f"Triton at {url} did not report {', '.join(names)} {what} within {timeout:.0f}s"
        " (ES_DEPLOYMENT_TIMEOUT_SECONDS); see the Triton process's log"
    )


async def run_deployment(
    pool: asyncpg.Pool,
    settings: Settings,
    plugin: FineTuningMethod,
    task: Task,
    progress: Progress,
) -> dict[str, Any]:
    """Deploy or undeploy the task's model and wait until Triton has done it.

    A deploy that Triton does not finish in time (or that is canceled) is rolled back: the
    flag goes back to false, so a model that cannot load does not hold a slot under the cap."""
    action: Action = task.params["action"]
    model_id = str(task.params["model_id"])
    names = list(triton_model_names(model_id))
    result: dict[str, Any] = {
        "action": action,
        "model_id": model_id,
        "triton_models": names,
        "triton_url": settings.triton_url,
    }
    if action == "deploy":
        async with pool.acquire() as conn:
            model = await catalog.get_model(conn, model_id)
        if not await progress(0.05, f"fetching the files of {model_id}"):
            return {"stopped": True}
        # A source nothing can load fails here, at once, not after the timeout in Triton.
        try:
            await asyncio.to_thread(plugin.get_inference_client_factory().model_path, model)
        except EsError:
            raise
        except Exception as exc:
            raise FailedPrecondition(
                f"model {model_id!r} cannot be loaded from {model.source!r}: {exc}"
            ) from exc
        await _set_deployed(pool, settings, model_id, True)
    elif action == "undeploy":
        await _set_deployed(pool, settings, model_id, False)
    else:
        raise InvalidArgument(f"unknown deployment action {action!r}")
    if not settings.triton_url:
        return {**result, "deployed": action == "deploy"}
    try:
        finished = await _wait_for_triton(settings, names, action == "deploy", progress)
    except BaseException:
        if action == "deploy":
            await _revert_deploy(pool, model_id)
        raise
    if not finished:
        if action == "deploy":
            await _revert_deploy(pool, model_id)
        return {"stopped": True}
    await progress(1.0, f"{model_id} {'deployed' if action == 'deploy' else 'undeployed'}")
    return {**result, "deployed": action == "deploy"}
