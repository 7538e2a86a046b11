"""What every servicer shares: settings, the pool, the encoders, the fine-tuning method and the
task sender of this server process."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.config import Settings
from es_core.encoders.registry import EncoderRegistry
from es_core.plugins.protocol import FineTuningMethod
from es_core.storage.catalog import Collection, resolve_collection
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

    async def collection(self, collection_id: str) -> Collection:
        async with self.pool.acquire() as conn:
            return await resolve_collection(conn, collection_id)

    async def encode_query(self, collection: Collection, text: str) -> npt.NDArray[np.float32]:
        """Encoding is CPU-bound: run it off the event loop."""
        encoder = self.encoders.get(collection.model)
        vectors = await asyncio.to_thread(encoder.encode_queries, [text])
        return np.asarray(vectors[0], dtype=np.float32)
