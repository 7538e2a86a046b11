"""What a loader must provide. A loader is a class registered under the entry-point group
``embedding_studio.loaders`` (its name is the entry point's), built once per process with
the settings; credentials and endpoints come from those settings or the environment, never
from a request, and never appear in an error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol, runtime_checkable

from es_core.config import Settings
from es_core.loaders.model import ItemFailure, Page, Record, SourceSpec


@runtime_checkable
class SourceLoader(Protocol):
    def check(self, spec: SourceSpec, field: str, *, whole: bool) -> None:
        """Refuse a malformed locator before anything is read: InvalidArgument naming the
        field under ``field`` (e.g. ``items[3].source.bucket.key``). ``whole`` is an import
        (a prefix, table, directory or record file); otherwise one item's reference. A path
        outside the allowed roots or a URL outside the allowed prefixes is refused here."""
        ...

    async def probe(self, spec: SourceSpec, field: str) -> None:
        """Check that a whole source can be read at all (the bucket exists, the table has the
        named columns, the URL answers): FailedPrecondition naming ``field`` when not,
        Unavailable when the service cannot be reached. Run when an import is requested."""
        ...

    async def fetch(self, refs: Sequence[tuple[str, SourceSpec]]) -> list[Record | ItemFailure]:
        """Read each (object id, reference): one Record or ItemFailure (stage FETCH or PARSE)
        per ref, in order, under the object id given. Raises only when the service as a whole
        is unreachable (Unavailable), never for one bad item."""
        ...

    def pages(
        self, spec: SourceSpec, checkpoint: str | None, page_size: int
    ) -> AsyncIterator[Page]:
        """The source's items from just after ``checkpoint`` (None = the start), at most
        ``page_size`` per page, streaming: nothing larger than a page (or one object) is held
        in memory. Each page's checkpoint, given back, resumes right after it."""
        ...

    async def estimate(self, spec: SourceSpec) -> int | None:
        """About how many items the source holds (for progress), or None when unknown."""
        ...

    async def close(self) -> None:
        """Release connections and clients."""
        ...


class Fetcher(Protocol):
    """What reads items by reference: a loader, or the aggregated loader of them all."""

    async def fetch(self, refs: Sequence[tuple[str, SourceSpec]]) -> list[Record | ItemFailure]: ...


class LoaderFactory(Protocol):
    def __call__(self, settings: Settings) -> SourceLoader: ...
