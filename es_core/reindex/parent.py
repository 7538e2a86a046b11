"""The parent reindex task: plans the subtasks once, then is settled from them.

The parent splits the source into key ranges and creates one subtask per range, in one
transaction. It then waits for its subtasks (status waiting, no lease) and frees its worker.
Its progress is the sum of theirs, written by each range with every page it copies. It is
settled (``settle_parent``) by ``es_core.tasks.workflow`` when a subtask ends and by every
sweeper pass, so a subtask failed by the sweeper itself still fails its parent: done when
they all are, failed as soon as one failed.

The destination is filled without its HNSW index (``es_core.storage.bulk_index``): once every
range is copied, the parent gets one more subtask, which builds the index, and is done only
after it. A parent that fails leaves its destination 'failed' (never switched to); a restart
makes it 'building' again.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.improvement.recompute import recompute_params
from es_core.reindex.ranges import split_ranges
from es_core.storage.bulk_index import mark_index_building, mark_index_failed
from es_core.storage.catalog import get_collection, items_table
from es_core.storage.item_rows import head_rows
from es_core.tasks import lookups
from es_core.tasks.model import Task
from es_core.tasks.results import ReindexResult, parse_result
from es_core.tasks.store import (
    create_task,
    get_task,
    restart_task,
    update_waiting,
)


async def subtasks(conn: asyncpg.Connection | asyncpg.Pool, parent_task_id: str) -> list[Task]:
    return [
        await get_task(conn, str(r["task_id"]))
        for r in await lookups.children(conn, parent_task_id)
    ]


async def plan_subtasks(
    pool: asyncpg.Pool, settings: Settings, parent: Task
) -> tuple[list[Task], dict[str, Any] | None]:
    """(subtasks to send, None), or ([], the final result) when the source is empty.

    Planned once: on a rerun (a restart after a failure) the existing subtasks are kept, the
    failed or canceled ones restarted from their checkpoints."""
    existing = await subtasks(pool, parent.task_id)
    if existing:
        async with pool.acquire() as conn:
            await mark_index_building(conn, parent.params["destination_collection_id"])
        to_send = []
        for child in existing:
            if child.status in ("failed", "canceled"):
                child = await restart_task(pool, child.task_id)
            if child.status == "pending":
                to_send.append(child)
        return to_send, None
    source_id = parent.params["resolved_source_collection_id"]
    destination_id = parent.params["destination_collection_id"]
    async with pool.acquire() as conn, conn.transaction():
        source = await get_collection(conn, source_id)
        ranges = await split_ranges(
            conn, source, settings.reindex_parallelism, settings.reindex_batch_size
        )
        if not ranges:
            return [], {"copied": 0, "item_count": 0, "source_item_count": 0, "subtasks": 0}
        children = []
        for index, key_range in enumerate(ranges):
            child, _ = await create_task(
                conn,
                "reindex",
                {
                    "range_index": index,
                    "source_collection_id": source_id,
                    "destination_collection_id": destination_id,
                    **key_range.as_params(),
                },
                idempotency_key=f"{parent.task_id}/{index}",
                parent_task_id=parent.task_id,
            )
            children.append(child)
    return children, None


INDEX_PARAM = "build_index"


def is_index_subtask(params: dict[str, Any]) -> bool:
    """Whether a reindex subtask builds the destination's index (not a range copy)."""
    return bool(params.get(INDEX_PARAM))


async def index_subtask(
    conn: asyncpg.Connection | asyncpg.Pool, parent_task_id: str
) -> Task | None:
    """The parent's index-building subtask, once created."""
    for child in await lookups.children(conn, parent_task_id):
        if is_index_subtask(child["params"]):
            return await get_task(conn, str(child["task_id"]))
    return None


async def settle_parent(pool: asyncpg.Pool, parent_task_id: str) -> str:
    """Bring the parent up to date with its subtasks; returns the parent's status, or
    "indexing" when it just created the subtask that builds the destination's index (the
    caller sends it)."""
    async with pool.acquire() as conn, conn.transaction():
        parent = await lookups.lock(conn, parent_task_id)
        if parent is None:
            return "missing"
        if parent["status"] != "waiting":
            return str(parent["status"])  # not planned yet, or already ended
        everything = await lookups.children(conn, parent_task_id)
        children = [c for c in everything if not is_index_subtask(c["params"])]
        indexing = [c for c in everything if is_index_subtask(c["params"])]
        ended_badly = [c for c in everything if c["status"] in ("failed", "canceled")]
        destination_id = parent["params"]["destination_collection_id"]
        if ended_badly:
            first = ended_badly[0]
            error = f"subtask {first['task_id']} {first['status']}: {first['error']}".rstrip(": ")
            await _finish(conn, parent_task_id, "failed", error, None)
            await mark_index_failed(conn, destination_id)
            return "failed"
        if all(c["status"] == "done" for c in children):
            destination = await get_collection(conn, destination_id)
            if destination.index_state != "ready" and not indexing:
                await create_task(
                    conn,
                    "reindex",
                    {
                        INDEX_PARAM: True,
                        "source_collection_id": parent["params"]["resolved_source_collection_id"],
                        "destination_collection_id": destination_id,
                        "expected_count": 0,
                    },
                    idempotency_key=f"{parent_task_id}/index",
                    parent_task_id=parent_task_id,
                )
                await lookups.set_waiting_progress(
                    conn, parent_task_id, 0.99, "all ranges copied; building the vector index"
                )
                return "indexing"
            if indexing and indexing[0]["status"] != "done":
                await lookups.set_waiting_progress(
                    conn, parent_task_id, 0.99, "all ranges copied; building the vector index"
                )
                return "waiting"
            source = await get_collection(conn, parent["params"]["resolved_source_collection_id"])
            ranges = [parse_result(ReindexResult, c["result"]) for c in children]
            result: dict[str, Any] = {
                "copied": sum(r.copied for r in ranges),
                "already_present": sum(r.already_present for r in ranges),
                "gone": sum(r.gone for r in ranges),
            }
            # One statement, one snapshot: a write (which reaches both) cannot fall between.
            counts = await conn.fetchrow(
                f"SELECT (SELECT count(*) FROM {items_table(destination)}"
                f" WHERE {head_rows()}) AS d,"
                f" (SELECT count(*) FROM {items_table(source)} WHERE {head_rows()}) AS s"
            )
            result |= {
                # Counted by the parent's own run, before it planned the ranges.
                "categories_copied": int((parent["result"] or {}).get("categories_copied", 0)),
                "item_count": counts["d"],
                "source_item_count": counts["s"],
                "subtasks": len(children),
                "destination_collection_id": destination.collection_id,
            }
            if parent["params"].get("user_copies") == "recompute":
                # Created with the parent's end, in its transaction: it cannot be lost.
                follow_up, _ = await create_task(
                    conn,
                    "improvement",
                    recompute_params(source.collection_id, destination.collection_id),
                    idempotency_key=f"{parent_task_id}/user-copies",
                )
                result["user_copies_task_id"] = follow_up.task_id
            await _finish(conn, parent_task_id, "done", "", result)
            return "done"
        await _write_progress(conn, parent_task_id, children)
        return "waiting"


async def report_parent_progress(conn: asyncpg.Connection, parent_task_id: str) -> None:
    """The waiting parent's progress brought up to its ranges' (a range calls it after each
    page it copies); only ``settle_parent`` ends the parent."""
    await _write_progress(conn, parent_task_id, await lookups.children(conn, parent_task_id))


async def _write_progress(
    conn: asyncpg.Connection, parent_task_id: str, children: list[asyncpg.Record]
) -> None:
    done_items = sum(parse_result(ReindexResult, c["result"]).done for c in children)
    expected = sum(int(c["params"]["expected_count"]) for c in children)
    finished = sum(c["status"] == "done" for c in children)
    await lookups.set_waiting_progress(
        conn,
        parent_task_id,
        min(1.0, done_items / max(1, expected)),
        f"{done_items} of about {expected} items; {finished} of {len(children)} ranges done",
    )


async def _finish(
    conn: asyncpg.Connection,
    task_id: str,
    status: str,
    error: str,
    result: dict[str, Any] | None,
) -> None:
    await update_waiting(
        conn,
        task_id,
        status="done" if status == "done" else "failed",
        message="all ranges copied" if status == "done" else None,
        result=result,
        error=error,
    )


async def waiting_parents(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """Parents waiting for their subtasks, for the sweeper to settle."""
    return await lookups.waiting(conn, "reindex")
