"""A reindex subtask: copy one key range of the source, page by page, from its checkpoint.

The next page is read and encoded while the one before is written (the model's work and the
database's overlap); pages are still written, and checkpointed, in key order.

After each page the subtask writes its checkpoint (the last object id done) and its counts
into its task row, in the same transaction as the page itself. A worker killed mid-range
leaves the row at the last committed page; whoever takes the task over after its lease runs
out starts from there, and nothing is copied twice or skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg

from es_core.encoders.registry import EncoderRegistry
from es_core.errors import EsError
from es_core.reindex.pages import (
    PageOutcome,
    SourceItem,
    build_destination_rows,
    next_page_ids,
    read_items,
    write_page,
)
from es_core.reindex.parent import report_parent_progress
from es_core.reindex.refetch import Refetch
from es_core.storage.catalog import get_collection
from es_core.tasks.lookups import task_status
from es_core.tasks.model import Task
from es_core.tasks.store import cancel_task, report_progress


@dataclass
class RangeState:
    """What the task row keeps: the checkpoint and the counts so far."""

    checkpoint: str | None
    copied: int = 0
    already_present: int = 0
    gone: int = 0
    pages: int = 0

    @classmethod
    def of(cls, task: Task) -> RangeState:
        saved = task.result
        if "checkpoint" not in saved:
            return cls(checkpoint=task.params["after"])
        return cls(
            checkpoint=saved["checkpoint"],
            copied=int(saved.get("copied", 0)),
            already_present=int(saved.get("already_present", 0)),
            gone=int(saved.get("gone", 0)),
            pages=int(saved.get("pages", 0)),
        )

    def add(self, outcome: PageOutcome) -> None:
        self.copied += outcome.copied
        self.already_present += outcome.already_present
        self.gone += outcome.gone

    @property
    def done(self) -> int:
        return self.copied + self.already_present + self.gone

    def as_result(self) -> dict[str, Any]:
        return asdict(self)


Rows = dict[str, list[tuple[Any, ...]]]


class _ParentEnded(Exception):
    """The parent was canceled or failed: this subtask cancels itself and stops."""


class _LeaseLost(Exception):
    """Another worker took this subtask over (or it was canceled): stop, touching nothing."""


# A parent is processing while it plans its ranges (they may start before it ends its run),
# then waiting for them; any other status ends the range.
ACTIVE_PARENT = ("processing", "waiting")


async def copy_range(
    pool: asyncpg.Pool,
    registry: EncoderRegistry,
    task: Task,
    *,
    owner: str,
    lease_seconds: float,
    batch_size: int,
    refetch: Refetch | None = None,
) -> dict[str, Any]:
    """Copy the range from the checkpoint to its end; ``{"stopped": True}`` when told to stop."""
    params = task.params
    assert task.parent_task_id is not None, "a range subtask names its parent"
    parent_task_id = task.parent_task_id
    state = RangeState.of(task)
    expected = max(1, int(params["expected_count"]))
    async with pool.acquire() as conn:
        source = await get_collection(conn, params["source_collection_id"])
        destination = await get_collection(conn, params["destination_collection_id"])

    async def prepare(object_ids: list[str]) -> tuple[list[SourceItem], Rows]:
        items = await read_items(pool, source, object_ids)
        if refetch is not None:
            items = await refetch(items)
        # Encoding is CPU-bound: keep the loop free for the lease heartbeat meanwhile.
        return items, await asyncio.to_thread(build_destination_rows, items, destination, registry)

    until = params["until"]
    ahead: asyncio.Task[tuple[list[SourceItem], Rows]] | None = None
    try:
        ids = await next_page_ids(pool, source, state.checkpoint, until, batch_size)
        if ids:
            ahead = asyncio.create_task(prepare(ids))
        while ahead is not None:
            items, rows = await ahead
            # The next page is read and encoded while this one is written.
            next_ids = await next_page_ids(pool, source, ids[-1], until, batch_size)
            ahead = asyncio.create_task(prepare(next_ids)) if next_ids else None
            pending = ids
            while True:
                async with pool.acquire() as conn, conn.transaction():
                    if await task_status(conn, parent_task_id) not in ACTIVE_PARENT:
                        raise _ParentEnded
                    outcome = await write_page(conn, source, destination, pending, items, rows)
                    state.add(outcome)
                    pending = outcome.changed
                    if not pending:
                        state.checkpoint = ids[-1]
                        state.pages += 1
                    message = f"{state.done} of about {expected} items"
                    if not await report_progress(
                        conn,
                        task.task_id,
                        owner,
                        state.done / expected,
                        message,
                        lease_seconds,
                        state.as_result(),
                    ):
                        raise _LeaseLost
                # After the commit, as a statement of its own: the page's transaction never
                # waits for the parent's row (a cancel may hold it and wait for this one's).
                async with pool.acquire() as conn:
                    await report_parent_progress(conn, parent_task_id)
                if not pending:
                    break
                items, rows = await prepare(pending)  # changed meanwhile: read them again
            ids = next_ids
        return state.as_result()
    except _ParentEnded:
        # A restart of the parent restarts this subtask from its last checkpoint.
        with contextlib.suppress(EsError):
            await cancel_task(pool, task.task_id)
        return {"stopped": True}
    except _LeaseLost:
        return {"stopped": True}
    finally:
        if ahead is not None and not ahead.done():
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead
