"""What every servicer shares: settings, the pool, the encoders, the fine-tuning method and the
task sender of this server process."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.plugins.protocol import FineTuningMethod
from es_core.search.use_case import SearchContext
from es_core.tasks import sender
from es_core.tasks.model import Task
from es_core.tasks.sender import TaskSender


@dataclass
class ServerState:
    settings: Settings
    pool: asyncpg.Pool
    encoders: EncoderRegistry
    plugin: FineTuningMethod
    sender: TaskSender

    async def dispatch(self, task: Task) -> bool:
        """Send the wake-up of ``task`` (its row committed); the sweeper re-sends on failure."""
        return await sender.dispatch(self.pool, self.sender, task)

    @property
    def search(self) -> SearchContext:
        return SearchContext(self.settings, self.pool, self.encoders)

    async def collection(self, collection_id: str) -> Collection:
        """The named collection, else the blue one."""
        return await self.search.collection(collection_id)
