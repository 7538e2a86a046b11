"""Moving deploy_as_blue chains on from the workers: after a step's task ends, and every sweep."""

from __future__ import annotations

import logging

from es_core.serving.promotion import advance, waiting_chains
from es_workers.dispatch import dispatch
from es_workers.runtime import context

log = logging.getLogger(__name__)


async def move_chains(task_ids: list[str] | None = None) -> None:
    """Advance the given fine-tuning tasks' chains (default: every waiting one) and send the
    tasks they start. A chain that cannot move now (the database is busy or down) is left to
    the next sweep."""
    ctx = await context()
    for task_id in task_ids if task_ids is not None else await waiting_chains(ctx.pool):
        try:
            started = await advance(ctx.pool, ctx.settings, task_id)
        except Exception:
            log.warning("deploy_as_blue of task %s did not move now", task_id, exc_info=True)
            continue
        for task in started:
            await dispatch(ctx.pool, task)
