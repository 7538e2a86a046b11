"""What the use cases behind the API (all but the searches) need from the process that runs
them: its settings, its database pool, the ``TaskSender`` that wakes a worker for a task, the
plugin's search index info, the signer of page tokens, and the loaders of sources."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import asyncpg

from es_core.config import Settings
from es_core.fine_tuning.experiments import MlflowExperiments
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.registry import Loaders
from es_core.page_tokens import PageTokens
from es_core.plugins.protocol import SearchIndexInfo
from es_core.serving.serving_aliases import AliasFollower
from es_core.tasks import sender
from es_core.tasks.model import Task
from es_core.tasks.sender import TaskSender
from es_core.tasks.updates import TaskUpdates


@dataclass(frozen=True)
class Context:
    settings: Settings
    pool: asyncpg.Pool
    sender: TaskSender
    # The plugin's search index info: how the collections a use case creates are laid out.
    index: SearchIndexInfo
    tokens: PageTokens
    # Wakes task watches when a task changes; None: watches poll every
    # ES_TASK_WATCH_POLL_SECONDS.
    task_updates: TaskUpdates | None = None

    @cached_property
    def aliases(self) -> AliasFollower:
        """Moves the MLflow aliases blue/rollback after a switch or a rollback."""
        return AliasFollower(MlflowExperiments(self.settings))

    @cached_property
    def loaders(self) -> AggregatedLoader:
        """The installed loaders, for checking the sources requests name (built on first use)."""
        return AggregatedLoader(Loaders(self.settings))

    async def send(self, task: Task) -> bool:
        """Send the wake-up of ``task``, whose row is committed; the sweeper re-sends on failure."""
        return await sender.dispatch(self.pool, self.sender, task)

    async def send_if_created(self, task: Task, created: bool) -> Task:
        """``task``, sent when this request created it (a retry with the same key sends nothing:
        the first request did, or the sweeper will)."""
        if created:
            await self.send(task)
        return task
