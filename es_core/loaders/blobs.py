"""One loader for every store of named blobs (S3 and GCS buckets, a file tree, URLs): the
store lists names and reads bytes; this module turns them into items.

A reference names one blob, fetched whole (up to ``loader_max_item_bytes``). An import walks
the blobs under a place in name order: a record file (JSONL, CSV, Parquet) gives its records,
streamed; any other blob is one item whose object id is its name. Checkpoints are JSON:
``{"after": name}`` once a blob is done, ``{"blob": name, "records": n}`` after the n-th
line or row of a record file."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import PurePosixPath
from typing import IO, Protocol
from urllib.parse import urlsplit

from es_core.config import Settings
from es_core.errors import EsError, InvalidArgument, Unavailable
from es_core.loaders.content_types import CSV, JSONL, PARQUET, UNITS, is_record_file, media_type
from es_core.loaders.model import ItemFailure, Locator, Page, Record, SourceSpec, Stage
from es_core.loaders.record_files import Parsed, read_records
from es_core.loaders.records import record_of

# Headers that say nothing about the content: the name's extension decides instead.
_GENERIC = {"application/octet-stream", "binary/octet-stream", ""}

_BY_EXTENSION = {
    ".jsonl": JSONL,
    ".ndjson": JSONL,
    ".csv": CSV,
    ".parquet": PARQUET,
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
}

# References fetched at once by one ``fetch``.
_CONCURRENT_FETCHES = 8
# Records parsed in a worker thread per hop from the event loop.
_RECORDS_PER_HOP = 256


def content_type_of(name: str, given: str, header: str) -> str:
    """How to read a blob: the spec's content type if given, else the store's header (unless
    generic), else by the name's extension, else plain text."""
    if given:
        return given
    if media_type(header) not in _GENERIC:
        return header.strip()
    path = urlsplit(name).path if "://" in name else name
    return _BY_EXTENSION.get(PurePosixPath(path).suffix.lower(), "text/plain")


class BlobFailure(Exception):
    """One blob (or the bucket it would be in) cannot be read; the message is the one-line
    reason its item fails with, and never names a credential or an endpoint's secret."""


class TooLarge(BlobFailure):
    def __init__(self, shown: str, size: int | None, cap: int) -> None:
        what = f"is {size} bytes" if size is not None else f"is over {cap} bytes"
        super().__init__(f"{shown} {what}, more than the {cap} allowed")


@dataclass(frozen=True)
class Place:
    """Where a spec points in a store: a ``container`` (a bucket, a file root, "" for URLs)
    and a ``name`` in it: one blob, or when ``many`` the prefix or directory of an import."""

    container: str
    name: str
    many: bool = False


@dataclass(frozen=True)
class Blob:
    content: bytes
    header: str = ""  # the content type the store reports, "" when none


class BlobStore(Protocol):
    """What a kind of store provides to ``BlobLoader``. Every method raises ``BlobFailure``
    for one blob that cannot be read and ``Unavailable`` when the service cannot be reached."""

    loader: str

    def place(self, locator: Locator, field: str, *, whole: bool) -> Place:
        """The place a locator names; InvalidArgument naming ``field.<locator field>``."""
        ...

    def locator(self, container: str, name: str) -> Locator:
        """The locator that fetches the blob ``name`` again, as a reference."""
        ...

    def show(self, container: str, name: str) -> str:
        """The blob as a reason names it (``s3://bucket/key``), without any secret."""
        ...

    async def probe(self, place: Place, field: str) -> None:
        """FailedPrecondition naming ``field.<locator field>`` when the place is missing."""
        ...

    def names(self, place: Place, after: str) -> AsyncIterator[str]:
        """The blobs under a ``many`` place, in name order, from just after ``after``."""
        ...

    async def read(self, container: str, name: str, cap: int) -> Blob:
        """A blob's bytes; ``TooLarge`` beyond ``cap``."""
        ...

    async def open(self, container: str, name: str) -> tuple[IO[bytes], str]:
        """A blob as a binary stream (read in a worker thread) and its content type header."""
        ...

    async def close(self) -> None: ...


def only_fields(locator: Locator, allowed: Sequence[str], field: str, loader: str) -> None:
    """InvalidArgument for a locator field this loader does not read."""
    for each in fields(locator):
        if each.name not in allowed and getattr(locator, each.name):
            raise InvalidArgument.field_error(
                f"{field}.{each.name}",
                f"the {loader} loader does not read {each.name}; it reads {', '.join(allowed)}",
            )


@dataclass(frozen=True)
class _Position:
    after: str = ""  # every blob up to this name is done
    blob: str = ""  # ... or this record file is read up to record ``records``
    records: int = 0

    @classmethod
    def parse(cls, checkpoint: str | None) -> _Position:
        if not checkpoint:
            return cls()
        try:
            data = json.loads(checkpoint)
            return cls(
                str(data.get("after", "")), str(data.get("blob", "")), int(data.get("records", 0))
            )
        except (ValueError, TypeError, AttributeError):
            raise InvalidArgument.field_error(
                "checkpoint", "not a checkpoint of this loader"
            ) from None


def _after(name: str) -> str:
    return json.dumps({"after": name})


def _inside(name: str, records: int) -> str:
    return json.dumps({"blob": name, "records": records})


def _take(parsed: Iterator[Parsed], count: int) -> list[Parsed]:
    return list(itertools.islice(parsed, count))


class BlobLoader:
    """A ``SourceLoader`` over a ``BlobStore``."""

    def __init__(self, store: BlobStore, settings: Settings) -> None:
        self.store = store
        self._cap = settings.loader_max_item_bytes
        self._fetching = asyncio.Semaphore(_CONCURRENT_FETCHES)

    def check(self, spec: SourceSpec, field: str, *, whole: bool) -> None:
        self.store.place(spec.locator, field, whole=whole)

    async def probe(self, spec: SourceSpec, field: str) -> None:
        await self.store.probe(self.store.place(spec.locator, field, whole=True), field)

    async def fetch(self, refs: Sequence[tuple[str, SourceSpec]]) -> list[Record | ItemFailure]:
        return list(await asyncio.gather(*(self._fetch_one(oid, spec) for oid, spec in refs)))

    async def _fetch_one(self, object_id: str, spec: SourceSpec) -> Record | ItemFailure:
        try:
            place = self.store.place(spec.locator, "reference", whole=False)
        except InvalidArgument as error:
            return ItemFailure(object_id, Stage.FETCH, error.message)
        shown = self.store.show(place.container, place.name)
        many = f"{shown}: a record file holds many items; import it with ImportItems"
        if is_record_file(content_type_of(place.name, spec.content_type, "")):
            return ItemFailure(object_id, Stage.PARSE, many)
        try:
            async with self._fetching:
                blob = await self.store.read(place.container, place.name, self._cap)
        except BlobFailure as error:
            return ItemFailure(object_id, Stage.FETCH, str(error))
        content_type = content_type_of(place.name, spec.content_type, blob.header)
        if is_record_file(content_type):
            return ItemFailure(object_id, Stage.PARSE, many)
        return Record(object_id, blob.content, content_type, {}, spec)

    async def pages(
        self, spec: SourceSpec, checkpoint: str | None, page_size: int
    ) -> AsyncIterator[Page]:
        place = self.store.place(spec.locator, "source", whole=True)
        items: list[Record | ItemFailure] = []
        mark = ""
        async for item, mark in self._items(spec, place, _Position.parse(checkpoint)):
            items.append(item)
            if len(items) >= page_size:
                yield Page(items, mark)
                items = []
        if items:
            yield Page(items, mark)

    async def _items(
        self, spec: SourceSpec, place: Place, position: _Position
    ) -> AsyncIterator[tuple[Record | ItemFailure, str]]:
        after = position.after
        if position.blob:
            async for each in self._record_file(
                spec, place.container, position.blob, position.records
            ):
                yield each
            after = position.blob
        async for name in self._names(place, after):
            async for each in self._blob_items(spec, place.container, name):
                yield each

    async def _names(self, place: Place, after: str) -> AsyncIterator[str]:
        if not place.many:
            if not after:
                yield place.name
            return
        async for name in self.store.names(place, after):
            yield name

    async def _blob_items(
        self, spec: SourceSpec, container: str, name: str
    ) -> AsyncIterator[tuple[Record | ItemFailure, str]]:
        if is_record_file(content_type_of(name, spec.content_type, "")):
            async for each in self._record_file(spec, container, name, 0):
                yield each
            return
        try:
            blob = await self.store.read(container, name, self._cap)
        except BlobFailure as error:
            yield ItemFailure(name, Stage.FETCH, str(error)), _after(name)
            return
        content_type = content_type_of(name, spec.content_type, blob.header)
        if is_record_file(content_type):  # only its header says so: read it again, streamed
            async for each in self._record_file(spec, container, name, 0):
                yield each
            return
        reference = SourceSpec(self.store.loader, self.store.locator(container, name))
        yield Record(name, blob.content, content_type, {}, reference), _after(name)

    async def _record_file(
        self, spec: SourceSpec, container: str, name: str, skip: int
    ) -> AsyncIterator[tuple[Record | ItemFailure, str]]:
        shown = self.store.show(container, name)
        try:
            stream, header = await self.store.open(container, name)
        except BlobFailure as error:
            yield ItemFailure("", Stage.FETCH, str(error)), _after(name)
            return
        by_name = content_type_of(name, spec.content_type, "")
        kind = by_name if is_record_file(by_name) else content_type_of(name, "", header)
        if not is_record_file(kind):  # a checkpoint inside a blob that is no record file now
            await asyncio.to_thread(stream.close)
            yield ItemFailure("", Stage.PARSE, f"{shown}: not a record file"), _after(name)
            return
        unit = UNITS[media_type(kind)]
        try:
            parsed = read_records(kind, stream, skip, self._cap)
            while batch := await self._next_records(parsed, shown):
                for each in batch:
                    where = f"{unit} {each.number} of {shown}"
                    item = (
                        record_of(spec, each.fields, where)
                        if each.fields is not None
                        else ItemFailure("", Stage.PARSE, f"{where}: {each.error}")
                    )
                    yield item, _inside(name, each.number)
        finally:
            await asyncio.to_thread(stream.close)

    @staticmethod
    async def _next_records(parsed: Iterator[Parsed], shown: str) -> list[Parsed]:
        """The next records, parsed in a worker thread. Bad records come back as ``Parsed``
        failures, so what raises here is the stream itself (a connection that broke off):
        the import may resume from its last checkpoint later."""
        try:
            return await asyncio.to_thread(_take, parsed, _RECORDS_PER_HOP)
        except EsError:
            raise
        except Exception as error:
            reason = f"reading {shown} broke off ({type(error).__name__})"
            raise Unavailable(reason) from error

    async def estimate(self, spec: SourceSpec) -> int | None:
        """The number of blobs under an import's place, listed (names only), when none is a
        record file; None when one is (its records are not counted without reading it)."""
        place = self.store.place(spec.locator, "source", whole=True)
        count = 0
        async for name in self._names(place, ""):
            if is_record_file(content_type_of(name, spec.content_type, "")):
                return None
            count += 1
        return count

    async def close(self) -> None:
        await self.store.close()
