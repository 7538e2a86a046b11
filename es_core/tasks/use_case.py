"""The task use cases behind TaskService (and FineTuneService's reads): list, read one kind,
watch until done, restart. Reading one task and canceling one are single calls already
(``store.get_task``, ``es_core.serving.deploy_as_blue.cancel_with_chain``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from es_core.context import Context
from es_core.errors import DeadlineExceeded, NotFound
from es_core.pagination import Page, PageRequest
from es_core.tasks import store
from es_core.tasks.model import Task, TaskKind, TaskStatus


@dataclass(frozen=True)
class ListTasksInput:
    page: PageRequest
    kind: TaskKind | None = None  # None = every kind
    statuses: list[TaskStatus] = field(default_factory=list)  # empty = every status


async def list_tasks(ctx: Context, request: ListTasksInput) -> Page[Task]:
    """Tasks newest first."""
    page_size = request.page.size(ctx.settings)
    tasks, next_token = await store.list_tasks(
        ctx.pool,
        ctx.tokens,
        page_size=page_size,
        page_token=request.page.page_token,
        kind=request.kind,
        statuses=request.statuses,
    )
    return Page(tasks, next_token)


async def get_task_of_kind(ctx: Context, task_id: str, kind: TaskKind) -> Task:
    """The task, or NOT_FOUND naming task_id when it is unknown or of another kind (the same
    answer for both, so a service of one kind never reveals tasks of others)."""
    try:
        task = await store.get_task(ctx.pool, task_id)
    except NotFound:
        task = None
    if task is None or task.kind != kind:
        what = kind.replace("_", "-")
        raise NotFound.field_error("task_id", f"{what} task {task_id} does not exist")
    return task


async def watch_task(ctx: Context, task_id: str) -> AsyncGenerator[Task, None]:
    """The task now, then every change (status, progress, attempts), until a terminal status
    has been yielded. The task is read again when a notification says it changed (and every
    ES_TASK_WATCH_FALLBACK_SECONDS, in case one was lost); without notifications it is polled
    every ES_TASK_WATCH_POLL_SECONDS. A watch lasts at most ES_WATCH_TASK_MAX_SECONDS (a stream
    holds a server slot while it is open): then DeadlineExceeded, the task's latest state sent;
    the caller watches again to go on."""
    settings = ctx.settings
    cap = settings.watch_task_max_seconds
    ends = time.monotonic() + cap
    updates = ctx.task_updates if settings.task_watch_notify else None
    key = str(store.parse_task_id(task_id))  # as notifications spell it
    # Subscribed before the first read, so a change committed after it always wakes the watch.
    with contextlib.ExitStack() as stack:
        woken = None if updates is None else stack.enter_context(updates.subscribe(key))
        every = (
            settings.task_watch_poll_seconds
            if woken is None
            else settings.task_watch_fallback_seconds
        )
        last = None
        while True:
            task = await store.get_task(ctx.pool, task_id)
            seen = (task.status, task.progress, task.progress_message, task.attempts)
            if seen != last:
                yield task
                last = seen
            if task.is_terminal:
                return
            left = ends - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(
                    f"the watch of task {task_id!r} lasted its most, {cap:g} s "
                    "(ES_WATCH_TASK_MAX_SECONDS), and the task is still running: watch it again"
                )
            await _wait(woken, min(every, left))


async def _wait(woken: asyncio.Queue[None] | None, seconds: float) -> None:
    """Until the task changes (``woken`` gets an item) or ``seconds`` pass."""
    if woken is None:
        await asyncio.sleep(seconds)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(woken.get(), seconds)


async def restart_task(ctx: Context, task_id: str) -> Task:
    """A failed or canceled task back in the queue, sent again."""
    task = await store.restart_task(ctx.pool, task_id)
    await ctx.send(task)
    return task
