"""What every servicer shares: settings, the pools, the encoders, the fine-tuning and
categories methods, the task sender and the page token signer of this server process, and the
contexts the use cases take.

Searches run filters callers write, so they draw from a pool of their own (with a shorter
statement timeout): however many expensive filters are in flight, the other calls (GetTask,
the clickstream, upserts) still find a free connection in ``pool``."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import asyncpg

from es_core.config import Settings
from es_core.context import Context
from es_core.encoders.registry import EncoderRegistry
from es_core.page_tokens import PageTokens
from es_core.plugins.protocol import CategoriesFineTuningMethod, FineTuningMethod
from es_core.search.use_case import SearchContext
from es_core.tasks.sender import TaskSender
from es_core.tasks.updates import TaskUpdates


@dataclass
class ServerState:
    settings: Settings
    pool: asyncpg.Pool
    encoders: EncoderRegistry
    plugin: FineTuningMethod
    sender: TaskSender
    tokens: PageTokens
    search_pool: asyncpg.Pool
    categories: CategoriesFineTuningMethod
    task_updates: TaskUpdates | None = None

    @cached_property
    def context(self) -> Context:
        """Built once: its loaders (and their connections) serve every request."""
        return Context(
            self.settings,
            self.pool,
            self.sender,
            self.plugin.get_search_index_info(),
            self.tokens,
            self.task_updates,
        )

    @property
    def search(self) -> SearchContext:
        return SearchContext(self.settings, self.search_pool, self.encoders, self.tokens)
