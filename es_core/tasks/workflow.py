"""What moves workflows on: a reindex parent waiting for its range subtasks (and the user-copies
follow-up its end creates), and a deploy_as_blue chain waiting for its deployment, its reindex,
an interleaving verdict or (a categories fine-tuning) its categories switch.

Two entry points, and nothing else pokes them: ``after_run``, which the worker runtime calls
after every task it ran, and ``sweep``, which every sweeper pass calls. Both return the tasks
they started, for the caller to send once they are committed (they are)."""

from __future__ import annotations

import logging

import asyncpg

from es_core.config import Settings
from es_core.plugins.protocol import SearchIndexInfo
from es_core.reindex.parent import index_subtask, settle_parent, waiting_parents
from es_core.serving.deploy_as_blue import advance, waiting_chains
from es_core.tasks.model import Task
from es_core.tasks.results import ReindexResult, parse_result
from es_core.tasks.store import get_task

log = logging.getLogger(__name__)

#: Kinds whose run a deploy_as_blue chain may be waiting for (the fine-tuning task itself
#: starts its chain when it hands over); a reindex moves chains only once it ends as a whole.
CHAIN_STEPS = frozenset({"fine_tuning", "deployment", "categories_switch"})


async def after_run(
    pool: asyncpg.Pool, settings: Settings, index: SearchIndexInfo, task_id: str
) -> list[Task]:
    """After a worker ran ``task_id`` (it ended, or now waits for what it started): settle the
    reindex parent it belongs to, or that it is, and move the chains on (``index``: the
    plugin's search index info, for the collections chains create)."""
    task = await get_task(pool, task_id)
    started: list[Task] = []
    chains_may_move = task.kind in CHAIN_STEPS
    if task.kind == "reindex":
        parent_id = task.parent_task_id
        # A parent is settled here only once it waits; a subtask's end settles its parent.
        if parent_id or task.status == "waiting":
            ended, follow_ups = await _settle(pool, str(parent_id or task_id))
            started += follow_ups
            chains_may_move = ended
    if chains_may_move:
        started += await move_chains(pool, settings, index)
    return started


async def sweep(pool: asyncpg.Pool, settings: Settings, index: SearchIndexInfo) -> list[Task]:
    """Settle every waiting reindex parent (its subtasks may have ended with no worker left
    to say so) and move every chain on."""
    started: list[Task] = []
    for parent_id in await waiting_parents(pool):
        started += (await _settle(pool, parent_id))[1]
    return started + await move_chains(pool, settings, index)


async def move_chains(pool: asyncpg.Pool, settings: Settings, index: SearchIndexInfo) -> list[Task]:
    """Every waiting chain as far as it goes now. A chain that cannot move now (the database is
    busy or down) is left to the next pass."""
    started: list[Task] = []
    for task_id in await waiting_chains(pool):
        try:
            started += await advance(pool, settings, index, task_id)
        except Exception:
            log.warning("deploy_as_blue of task %s did not move now", task_id, exc_info=True)
    return started


async def _settle(pool: asyncpg.Pool, parent_id: str) -> tuple[bool, list[Task]]:
    """The parent brought up to date: whether that ended it, and what it started (its
    index-building subtask, or its user-copies follow-up)."""
    status = await settle_parent(pool, parent_id)
    if status == "indexing":
        index_task = await index_subtask(pool, parent_id)
        return False, [] if index_task is None else [index_task]
    if status not in ("done", "failed"):
        return False, []
    parent = await get_task(pool, parent_id)
    follow_up = parse_result(ReindexResult, parent.result).user_copies_task_id
    return True, [await get_task(pool, str(follow_up))] if follow_up else []
