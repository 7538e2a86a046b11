"""Reading from a mix of sources: each spec goes to the loader its ``loader`` names.

An import of several sources reads them one after another, each page from one source only.
Its checkpoint is JSON ``{"source": i, "checkpoint": c}``: source ``i`` of the list, resumed
from its own loader's checkpoint ``c`` (null = its start), so a resumed import continues
inside the right source.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

from es_core.errors import EsError, FieldViolation, InvalidArgument
from es_core.loaders.model import ItemFailure, Page, Record, SourceSpec, Stage
from es_core.loaders.registry import Loaders

#: Where each of the locator's fields sits in a request's ContentSource: loaders name them as
#: the locator does (``<field>.key``), a request's caller reads them as the request does.
REQUEST_PATHS = {
    "bucket": "bucket.bucket",
    "key": "bucket.key",
    "prefix": "bucket.prefix",
    "database": "table.database",
    "table": "table.table",
    "row_id": "table.row_id",
}


def in_request_terms(error: EsError, field: str) -> EsError:
    """``error`` with each violation of a locator field under ``field`` renamed as the
    request names it (``sources[0].key`` -> ``sources[0].bucket.key``)."""
    renamed: list[FieldViolation] = []
    message = error.message
    for violation in error.violations:
        name = violation.field
        for locator_field, request_path in REQUEST_PATHS.items():
            old = f"{field}.{locator_field}"
            if name == old or name.startswith(old + "."):
                name = f"{field}.{request_path}{name[len(old) :]}"
                message = message.replace(violation.field, name, 1)
                break
        renamed.append(FieldViolation(name, violation.description))
    return type(error)(message, renamed)


class AggregatedLoader:
    def __init__(self, loaders: Loaders) -> None:
        self._loaders = loaders

    def check(self, spec: SourceSpec, field: str, *, whole: bool) -> None:
        loader = self._loaders.get(spec.loader, f"{field}.loader")
        try:
            loader.check(spec, field, whole=whole)
        except EsError as exc:
            raise in_request_terms(exc, field) from None

    async def probe(self, spec: SourceSpec, field: str) -> None:
        loader = self._loaders.get(spec.loader, f"{field}.loader")
        try:
            await loader.probe(spec, field)
        except EsError as exc:
            raise in_request_terms(exc, field) from None

    async def fetch(self, refs: Sequence[tuple[str, SourceSpec]]) -> list[Record | ItemFailure]:
        """Each ref read by its own loader (each loader called once), in the order given."""
        by_loader: dict[str, list[int]] = defaultdict(list)
        for i, (_, spec) in enumerate(refs):
            by_loader[spec.loader].append(i)
        fetched = await asyncio.gather(
            *(
                self._fetch_with(name, [refs[i] for i in indexes])
                for name, indexes in by_loader.items()
            )
        )
        results: list[Record | ItemFailure | None] = [None] * len(refs)
        for indexes, items in zip(by_loader.values(), fetched, strict=True):
            for i, item in zip(indexes, items, strict=True):
                results[i] = item
        return [item for item in results if item is not None]

    async def pages(
        self, specs: Sequence[SourceSpec], checkpoint: str | None, page_size: int
    ) -> AsyncIterator[Page]:
        start, inner = _parse_checkpoint(checkpoint, len(specs))
        for index in range(start, len(specs)):
            spec = specs[index]
            loader = self._loaders.get(spec.loader, f"sources[{index}].loader")
            async for page in loader.pages(spec, inner, page_size):
                checkpoint = json.dumps({"source": index, "checkpoint": page.checkpoint})
                yield Page(page.items, checkpoint, index)
            inner = None

    async def estimate(self, specs: Sequence[SourceSpec]) -> int | None:
        """The sum of the sources' estimates; None when any source's is unknown."""
        counts = await asyncio.gather(
            *(
                self._loaders.get(spec.loader, f"sources[{i}].loader").estimate(spec)
                for i, spec in enumerate(specs)
            )
        )
        if any(count is None for count in counts):
            return None
        return sum(count for count in counts if count is not None)

    async def close(self) -> None:
        """Close the loaders it built (their clients and connections)."""
        await self._loaders.close()

    async def _fetch_with(
        self, name: str, refs: list[tuple[str, SourceSpec]]
    ) -> list[Record | ItemFailure]:
        try:
            loader = self._loaders.get(name, "loader")
        except EsError as exc:  # checked at the request; not installed where this runs
            return [ItemFailure(object_id, Stage.FETCH, exc.message) for object_id, _ in refs]
        return await loader.fetch(refs)


def _parse_checkpoint(checkpoint: str | None, count: int) -> tuple[int, str | None]:
    """(index of the source to resume, its own checkpoint) of a compound checkpoint."""
    if checkpoint is None:
        return 0, None
    try:
        data = json.loads(checkpoint)
        index, inner = data["source"], data["checkpoint"]
    except (ValueError, TypeError, KeyError):
        index, inner = None, None
    if (
        not isinstance(index, int)
        or isinstance(index, bool)
        or not 0 <= index < count
        or not (inner is None or isinstance(inner, str))
    ):
        raise InvalidArgument(f"not a checkpoint of these {count} sources: {checkpoint[:80]!r}")
    return index, inner
