"""Reading again, for a reindex, the items whose text was never stored.

An item written by reference while ``ES_KEEP_REFERENCED_TEXT`` was off keeps only its parts'
vectors and where its content lives. The new model cannot encode vectors: the item is read
again from its source, cleaned and split as the plugin does now, and encoded from that text.
An item that cannot be read again fails the reindex with its reason (as a vector-only part
does), so nothing is copied with the old model's vectors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import numpy as np

from es_core.errors import FailedPrecondition
from es_core.ingest.prepare import Preparer
from es_core.item_input import ItemInput
from es_core.loaders.model import SourceSpec
from es_core.loaders.protocol import Fetcher
from es_core.reindex.pages import SourceItem, SourcePart

Refetch = Callable[[list[SourceItem]], Awaitable[list[SourceItem]]]


def needs_refetch(item: SourceItem) -> bool:
    return item.source is not None and any(part.text is None for part in item.parts)


def refetcher(loader: Fetcher, preparer: Preparer) -> Refetch:
    async def refetch(items: list[SourceItem]) -> list[SourceItem]:
        stale = [item for item in items if needs_refetch(item)]
        if not stale:
            return items
        asked = [
            ItemInput(item.object_id, source=SourceSpec.from_json(item.source or {}))
            for item in stale
        ]
        prepared = await preparer.items(asked, loader)
        if prepared.failures:
            first = prepared.failures[0]
            raise FailedPrecondition(
                f"item {first.object_id!r} keeps no text and could not be read again from its"
                f" source ({first.stage}: {first.reason}); restore its source or delete the"
                f" item, then restart the reindex"
            )
        read = {item.object_id: item for item in prepared.items}
        empty = np.zeros(0, dtype=np.float32)
        return [
            item
            if item.object_id not in read
            else SourceItem(
                item.object_id,
                item.update_time,
                item.version,
                item.payload,
                [SourcePart(p.part_id, p.text, empty) for p in read[item.object_id].parts],
                item.source,
                keep_text=read[item.object_id].store_text,
            )
            for item in items
        ]

    return refetch
