"""An import: every item of one or more sources, page by page, from its checkpoint.

Each page is prepared (decoded, cleaned, split), encoded and written in one transaction with
the import's state (which source, the checkpoint after the page, the counts and the first
failed items) in its task row. A worker killed mid-import leaves the row at the last committed
page; whoever takes the task over starts right after it, so every item is written once and
counted once. Items that fail are counted and listed with their stage; the import goes on
unless more than ``max_failed_items`` have failed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import EsError, FailedPrecondition
from es_core.ingest.bulk_import import begin_bulk_import
from es_core.ingest.prepare import Preparer
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.model import ItemFailure, SourceSpec
from es_core.storage.bulk_index import build_vector_index, mark_index_failed
from es_core.tasks.model import Task
from es_core.tasks.results import MAX_FAILED_ITEMS_LISTED
from es_core.tasks.store import report_progress
from es_core.upsertion import Encoded, WriteReport, encode_batch, store_batch


@dataclass(frozen=True)
class ImportState:
    """What the task row keeps while the import runs (ImportResult's figures among them)."""

    checkpoint: str | None = None  # resume after this (None = the first source's start)
    imported_count: int = 0
    failed_count: int = 0
    failed_items: list[dict[str, str]] = field(default_factory=list)
    superseded_count: int = 0
    sources_done: int = 0
    read_count: int = 0  # items read so far, written or failed
    expected_count: int | None = None  # about how many the sources hold; None = unknown
    started: bool = False  # the expected count was asked for
    bulk: bool = False  # rows first, the vector index at the end (es_core.ingest.bulk_import)

    @classmethod
    def of(cls, task: Task) -> ImportState:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in task.result.items() if k in known})

    def after(
        self, report: WriteReport, failures: Sequence[ItemFailure], checkpoint: str
    ) -> ImportState:
        failed = [*failures, *report.failures]
        listed = self.failed_items + [
            f.to_json() for f in failed[: max(0, MAX_FAILED_ITEMS_LISTED - len(self.failed_items))]
        ]
        return replace(
            self,
            checkpoint=checkpoint,
            imported_count=self.imported_count + len(report.applied),
            failed_count=self.failed_count + len(failed),
            failed_items=listed,
            superseded_count=self.superseded_count + len(report.superseded),
            read_count=self.read_count + len(report.applied) + len(report.superseded) + len(failed),
        )

    def as_result(self) -> dict[str, Any]:
        return asdict(self)

    def fraction(self, sources: int) -> float:
        if self.expected_count:
            return min(0.99, self.read_count / self.expected_count)
        return self.sources_done / sources

    def message(self) -> str:
        about = f" of about {self.expected_count}" if self.expected_count else ""
        failed = f", {self.failed_count} failed" if self.failed_count else ""
        return f"read {self.read_count}{about} items: {self.imported_count} imported{failed}"


class _Stop(Exception):
    """Canceled, or another worker took the task over: stop, touching nothing more."""


@dataclass(frozen=True)
class ImportJob:
    pool: asyncpg.Pool
    collection: Collection
    registry: EncoderRegistry
    settings: Settings
    preparer: Preparer
    loader: AggregatedLoader  # each source read by its own loader
    owner: str  # the task's lease owner, whose progress writes count
    version: int

    async def run(
        self, task: Task, sources: list[SourceSpec], page_size: int, max_failed: int
    ) -> dict[str, Any]:
        """Pages are read and encoded while the page before is written: the database's work
        and the model's overlap, and pages are still written, and checkpointed, in order.

        A bulk import (``es_core.ingest.bulk_import``) builds the collection's vector index
        when it ends, however it ends; should the build fail, the collection is 'failed'."""
        state = ImportState.of(task)
        if not state.started:
            state = replace(state, started=True, expected_count=await self._estimate(sources))
        bulk = await begin_bulk_import(
            self.pool, self.settings, self.collection, state.expected_count
        )
        state = replace(state, bulk=state.bulk or bulk)
        try:
            return await self._pages(task, state, sources, page_size, max_failed)
        finally:
            if bulk:
                await self._build_index()

    async def _build_index(self) -> None:
        collection_id = self.collection.collection_id
        try:
            await build_vector_index(self.pool, self.settings, collection_id)
        except BaseException:
            async with self.pool.acquire() as conn:
                await mark_index_failed(conn, collection_id)
            raise

    async def _pages(
        self,
        task: Task,
        state: ImportState,
        sources: list[SourceSpec],
        page_size: int,
        max_failed: int,
    ) -> dict[str, Any]:
        writing: asyncio.Task[ImportState] | None = None
        try:
            async for page in self.loader.pages(sources, state.checkpoint, page_size):
                prepared = self.preparer.records(page.items, sources[page.source].fields)
                encoded = await encode_batch(
                    self.pool, self.collection, prepared.items, self.registry, self.settings
                )
                if writing is not None:
                    state = await writing
                    self._check_failures(state, max_failed)
                state = replace(state, sources_done=page.source)
                writing = asyncio.create_task(
                    self._write(task, state, encoded, prepared.failures, page.checkpoint, sources)
                )
            if writing is not None:
                state = await writing
                writing = None
                self._check_failures(state, max_failed)
            state = replace(state, sources_done=len(sources))
            await self._save(task, state, len(sources))
        except _Stop:
            return {"stopped": True}
        finally:
            if writing is not None:  # the run failed while a page was being written
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
        return state.as_result()

    @staticmethod
    def _check_failures(state: ImportState, max_failed: int) -> None:
        if max_failed and state.failed_count > max_failed:
            raise FailedPrecondition(
                f"{state.failed_count} items failed, more than max_failed_items"
                f" ({max_failed}); the first: {_first(state)}"
            )

    async def _estimate(self, sources: list[SourceSpec]) -> int | None:
        """About how many items the sources hold, for progress; None when unknown or when a
        source cannot say now (the import itself then tells whether it can be read)."""
        try:
            return await self.loader.estimate(sources)
        except EsError:
            return None

    async def _write(
        self,
        task: Task,
        state: ImportState,
        encoded: Encoded,
        failures: list[ItemFailure],
        checkpoint: str,
        sources: list[SourceSpec],
    ) -> ImportState:
        """Write a page and, in its transaction, the import's state after it."""
        saved: list[ImportState] = []

        async def then(conn: asyncpg.Connection, report: WriteReport) -> None:
            new = state.after(report, failures, checkpoint)
            await self._progress(conn, task, new, len(sources))
            saved.append(new)

        await store_batch(self.pool, encoded, self.registry, self.settings, self.version, then)
        return saved[0]

    async def _save(self, task: Task, state: ImportState, sources: int) -> None:
        async with self.pool.acquire() as conn:
            await self._progress(conn, task, state, sources)

    async def _progress(
        self, conn: asyncpg.Connection, task: Task, state: ImportState, sources: int
    ) -> None:
        if not await report_progress(
            conn,
            task.task_id,
            self.owner,
            state.fraction(sources),
            state.message(),
            self.settings.task_lease_seconds,
            state.as_result(),
        ):
            raise _Stop


def _first(state: ImportState) -> str:
    if not state.failed_items:
        return "none listed"
    first = state.failed_items[0]
    return f"{first['object_id'] or '(no id)'} at {first['stage']}: {first['reason']}"
