"""The task record as the library sees it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

TaskKind = Literal[
    "upsertion",
    "deletion",
    "improvement",
    "fine_tuning",
    "deployment",
    "reindex",
    "ranking_fit",
    "categories_switch",
    "import",
    "filterable_fields",
]
TaskStatus = Literal["pending", "processing", "waiting", "done", "failed", "canceled"]

TASK_KINDS: tuple[TaskKind, ...] = (
    "upsertion",
    "deletion",
    "improvement",
    "fine_tuning",
    "deployment",
    "reindex",
    "ranking_fit",
    "categories_switch",
    "import",
    "filterable_fields",
)
TERMINAL_STATUSES: frozenset[str] = frozenset({"done", "failed", "canceled"})

# The Celery queue each kind runs on; deletions are light and share the upsertion workers.
QUEUE_FOR_KIND: dict[str, str] = {
    "upsertion": "upsertion",
    "deletion": "upsertion",
    "improvement": "improvement",
    "fine_tuning": "fine_tuning",
    "deployment": "deployment",
    "reindex": "reindex",
    # Fitting fusion weights reads sessions and scores candidates: light, like improvement.
    "ranking_fit": "improvement",
    # Re-encoding a model's categories: encoding work, like a reindex.
    "categories_switch": "reindex",
    # Reading a whole source and encoding it: bulk work, like a reindex, and off the queue of
    # the upserts, which must not wait behind it.
    "import": "reindex",
    # Building a collection's declared-field indexes: about a scan of its table per field,
    # bulk work like a reindex.
    "filterable_fields": "reindex",
}


@dataclass(frozen=True)
class Task:
    task_id: str
    kind: TaskKind
    status: TaskStatus
    # The task that waits for this one (a reindex range's parent); None for most tasks.
    parent_task_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    progress: float = 0.0
    progress_message: str = ""
    error: str = ""
    attempts: int = 0
    idempotency_key: str | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    start_time: datetime | None = None
    finish_time: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


@dataclass(frozen=True)
class Waiting:
    """What a task's handler returns when the task now waits for tasks it started (its
    subtasks, or its chain's steps): the task is left ``waiting`` with ``result`` so far, and
    ``es_core.tasks.workflow`` ends it."""

    result: dict[str, Any] = field(default_factory=dict)
    message: str = "waiting for the tasks it started"
