"""The Celery queues, and the worker queue groups: which queues one worker process serves,
and how. Light to import (no Celery): ``es worker`` reads it before it becomes the worker.

A deployment runs one worker process (or several) per group, so that work of one kind never
waits behind another's: a fine-tuning that trains for an hour does not hold back an upsert.

- ``upsertion``: upserts and deletions (queue ``upsertion``), and the ``sweeper`` queue the beat
  sends its periodic ticks to (light: they look at rows and send tasks to the other queues);
- ``bulk``: reindexes, imports, categories switches and filterable-field index builds (queue
  ``reindex``): long encoding work, and scans of whole tables;
- ``improvement``: improvement and ranking-weight fitting (queues ``improvement``);
- ``fine_tuning``: training (queue ``fine_tuning``): one task at a time per process, in the
  worker's own process (solo pool), since training uses every core it gets;
- ``deployment``: deploys and undeploys (queue ``deployment``): short, mostly waiting on Triton.

The defaults are the production ones (prefork pools of 2 where tasks are short); ``es up``
runs every group with one task at a time, a small machine's choice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from es_core.tasks.model import QUEUE_FOR_KIND

# The beat's periodic ticks run here.
SWEEPER_QUEUE = "sweeper"
QUEUES = sorted(set(QUEUE_FOR_KIND.values())) + [SWEEPER_QUEUE]

Pool = Literal["prefork", "solo", "threads"]
POOLS: tuple[Pool, ...] = ("prefork", "solo", "threads")


@dataclass(frozen=True)
class QueueGroup:
    name: str
    queues: tuple[str, ...]
    pool: Pool
    concurrency: int


GROUPS: dict[str, QueueGroup] = {
    group.name: group
    for group in (
        QueueGroup("upsertion", ("upsertion", SWEEPER_QUEUE), "prefork", 2),
        QueueGroup("bulk", ("reindex",), "solo", 1),
        QueueGroup("improvement", ("improvement",), "prefork", 2),
        QueueGroup("fine_tuning", ("fine_tuning",), "solo", 1),
        QueueGroup("deployment", ("deployment",), "solo", 1),
    )
}


def group_of_queue(queue: str) -> QueueGroup:
    """The group that serves ``queue`` (every queue has exactly one)."""
    for group in GROUPS.values():
        if queue in group.queues:
            return group
    raise KeyError(queue)


def resolve(names: list[str]) -> tuple[list[str], QueueGroup | None]:
    """The queues of ``names`` (group names or queue names, mixed), and the group whose
    defaults apply when ``names`` is exactly one group; ValueError names an unknown one."""
    queues: list[str] = []
    for name in names:
        if name in GROUPS:
            found = list(GROUPS[name].queues)
        elif name in QUEUES:
            found = [name]
        else:
            raise ValueError(
                f"unknown queue or queue group {name!r}; groups: {', '.join(GROUPS)}; "
                f"queues: {', '.join(QUEUES)}"
            )
        queues.extend(q for q in found if q not in queues)
    only = GROUPS[names[0]] if len(names) == 1 and names[0] in GROUPS else None
    return queues, only
