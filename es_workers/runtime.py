"""What every worker task needs: one event loop, one pool, one encoder cache per process,
and the claim / heartbeat / finish protocol around a task row."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

import asyncpg

from es_core.config import Settings, get_settings
from es_core.domain import Progress
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import EsError, failure_reason
from es_core.fine_tuning.experiments import MlflowExperiments
from es_core.ingest.prepare import Preparer
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.registry import Loaders
from es_core.observability import task_origin
from es_core.plugins.protocol import FineTuningMethod
from es_core.plugins.registry import load_plugin
from es_core.serving.serving_aliases import AliasFollower
from es_core.storage.bootstrap import prepare_database
from es_core.storage.db import create_pool
from es_core.tasks import store, workflow
from es_core.tasks.model import Task, Waiting
from es_workers import metrics
from es_workers.dispatch import dispatch

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class WorkerContext:
    settings: Settings
    pool: asyncpg.Pool
    encoders: EncoderRegistry
    plugin: FineTuningMethod

    @cached_property
    def aliases(self) -> AliasFollower:
        """Keeps the MLflow aliases blue/rollback on what serves (the sweeper calls it)."""
        return AliasFollower(MlflowExperiments(self.settings))

    @cached_property
    def loaders(self) -> AggregatedLoader:
        """The sources' loaders, reading items by reference and imports (built on first use)."""
        return AggregatedLoader(Loaders(self.settings))

    @property
    def preparer(self) -> Preparer:
        """Cleans and splits items as the plugin does."""
        return Preparer(
            self.plugin.get_items_cleaner(), self.plugin.get_items_splitter().split, self.settings
        )


_runner: asyncio.Runner | None = None
_context: WorkerContext | None = None
_runner_pid: int | None = None


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on this process's long-lived loop (pools and caches outlive one task)."""
    global _runner, _runner_pid, _context
    if _runner is None or _runner_pid != os.getpid():
        _runner, _runner_pid, _context = asyncio.Runner(), os.getpid(), None
    return _runner.run(coro)


async def context() -> WorkerContext:
    global _context
    if _context is None:
        settings = get_settings()
        plugin = load_plugin(settings)
        pool = await create_pool(
            settings, settings.require_postgres_dsn(), role="worker", max_size=4
        )
        await prepare_database(pool, settings, plugin)
        encoders = EncoderRegistry(
            plugin.get_inference_client_factory().create, batch_size=settings.encode_batch_size
        )
        _context = WorkerContext(settings, pool, encoders, plugin)
    return _context


# The lease owner of the task the current coroutine runs (set by ``execute``), for handlers
# that write their task row themselves, e.g. a checkpoint in the same transaction as the work.
task_owner: ContextVar[str] = ContextVar("task_owner")

Handler = Callable[[WorkerContext, Task, Progress], Awaitable[dict[str, Any] | Waiting]]


async def execute(task_id: str, handler: Handler) -> str:
    """Claim, run with a heartbeat, record the outcome, then move the workflows on
    (``es_core.tasks.workflow.after_run``) and send what they started. Returns the final
    status seen ("waiting" when the handler left the task waiting for tasks it started).

    A task another worker holds (or one already finished) is left alone, so a duplicate
    message does nothing. A library error fails the task with its message; an unexpected
    exception fails it with its class and the first line of its message, its traceback only in
    this worker's log, to be restarted by an operator.
    """
    ctx = await context()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    task = await store.claim_task(ctx.pool, task_id, owner, ctx.settings.task_lease_seconds)
    if task is None:
        log.info("task %s is not claimable (done, canceled or held elsewhere)", task_id)
        return "skipped"
    # The tasks the workflows start come from the same request as this one.
    with task_origin.running(task_id, task.kind, task.params):
        status = await _run_counted(ctx, task, owner, handler)
        index = ctx.plugin.get_search_index_info()
        for started in await workflow.after_run(ctx.pool, ctx.settings, index, task_id):
            await dispatch(ctx.pool, started)
    return status


async def _run_counted(ctx: WorkerContext, task: Task, owner: str, handler: Handler) -> str:
    log.info("task %s (%s) started", task.task_id, task.kind)
    started = time.perf_counter()
    outcome: tuple[str, Any] = ("failed", None)
    try:
        outcome = await _run_claimed(ctx, task, owner, handler)
    finally:
        seconds = time.perf_counter() - started
        metrics.task_ran(task.kind, outcome[0], seconds, outcome[1])
        log.info("task %s (%s) %s in %.2f s", task.task_id, task.kind, outcome[0], seconds)
    return outcome[0]


async def _run_claimed(
    ctx: WorkerContext, task: Task, owner: str, handler: Handler
) -> tuple[str, Any]:
    """The claimed task run and recorded: its final status and its handler's result."""
    task_id = task.task_id
    lease = ctx.settings.task_lease_seconds

    async def heartbeat() -> None:
        while await store.renew_lease(ctx.pool, task_id, owner, lease):
            await asyncio.sleep(lease / 3)

    async def progress(fraction: float, message: str) -> bool:
        return await store.report_progress(ctx.pool, task_id, owner, fraction, message, lease)

    beat = asyncio.create_task(heartbeat())
    token = task_owner.set(owner)
    try:
        result = await handler(ctx, task, progress)
    except EsError as exc:
        await store.finish_task(ctx.pool, task_id, owner, "failed", error=failure_reason(exc))
        return "failed", None
    except Exception as exc:
        log.exception("task %s failed", task_id)
        await store.finish_task(ctx.pool, task_id, owner, "failed", error=failure_reason(exc))
        return "failed", None
    finally:
        beat.cancel()
        task_owner.reset(token)
    if isinstance(result, Waiting):
        await store.start_waiting(ctx.pool, task_id, owner, result.result, result.message)
        return "waiting", result.result
    if result.get("stopped"):
        return "canceled", result
    await store.finish_task(ctx.pool, task_id, owner, "done", result=result)
    return "done", result
