"""From what a request or a source gives to items ready to encode: read each reference,
decode it, clean its text, split it. An item that fails a step is set aside with the stage
and the reason; the others go on.

A prepared item has parts only (a whole text is split here, by the plugin's splitter), its
payload resolved (a structured source's fields under the request's own payload, which wins),
and ``source`` set when it can be read again from where it came."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from es_core.config import Settings
from es_core.ingest.cleaning import ItemsCleaner
from es_core.ingest.decode import Decoded, decode
from es_core.item_input import ItemInput, PartInput
from es_core.loaders.model import Fields, ItemFailure, Record, SourceSpec, Stage
from es_core.loaders.protocol import Fetcher

Split = Callable[[str], list[str]]


@dataclass
class Prepared:
    items: list[ItemInput] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)


@dataclass(frozen=True)
class Preparer:
    """The cleaning and splitting a collection's plugin asks for, and the limits they obey."""

    cleaner: ItemsCleaner
    split: Split
    settings: Settings

    def ready(
        self,
        object_id: str,
        decoded: Decoded,
        source: SourceSpec | None,
    ) -> ItemInput | ItemFailure:
        """A decoded text cleaned and split into parts, or the step it failed at."""
        if not decoded.text.strip():
            return ItemFailure(object_id, Stage.SPLIT, "the text is empty")
        cleaned = self.cleaner.clean(decoded.text, decoded.content_type)
        if not cleaned.strip():
            return ItemFailure(object_id, Stage.PREPROCESS, "no text left once cleaned")
        chunks = self.split(cleaned)
        if not chunks:
            return ItemFailure(object_id, Stage.SPLIT, "the text gave no part to encode")
        limit = self.settings.max_parts_per_item
        if len(chunks) > limit:
            return ItemFailure(
                object_id, Stage.SPLIT, f"the text gave {len(chunks)} parts, more than {limit}"
            )
        store_text = source is None or self.settings.keep_referenced_text
        return ItemInput(
            object_id,
            decoded.payload,
            parts=[PartInput(str(i), chunk) for i, chunk in enumerate(chunks)],
            source=source,
            store_text=store_text,
        )

    def record(self, record: Record, fields: Fields) -> ItemInput | ItemFailure:
        """A record a loader read (an import's, or a reference's) as a prepared item."""
        decoded = decode(record, fields, self.settings.max_payload_bytes)
        if isinstance(decoded, ItemFailure):
            return decoded
        return self.ready(record.object_id, decoded, record.reference)

    async def items(self, items: Sequence[ItemInput], loader: Fetcher | None) -> Prepared:
        """A request's items prepared, their references read in one call to ``loader``."""
        refs = [(item.object_id, item.source) for item in items if item.source is not None]
        fetched: dict[str, Record | ItemFailure] = {}
        if refs:
            assert loader is not None, "items by reference need a loader"
            results = await loader.fetch(refs)
            fetched = {
                object_id: result for (object_id, _), result in zip(refs, results, strict=True)
            }
        out = Prepared()
        for item in items:
            if item.source is not None:
                got = fetched[item.object_id]
                if isinstance(got, Record):
                    merged = Record(
                        item.object_id,
                        got.content,
                        got.content_type,
                        {**got.payload, **item.payload},
                        got.reference or item.source,
                    )
                    result = self.record(merged, item.source.fields)
                else:
                    result = got
            elif item.text is not None:
                result = self.ready(
                    item.object_id, Decoded(item.text, item.payload, "text/plain"), None
                )
            else:
                result = item  # pre-split parts are taken as given
            if isinstance(result, ItemFailure):
                out.failures.append(result)
            else:
                out.items.append(result)
        return out

    def records(self, records: Sequence[Record | ItemFailure], fields: Fields) -> Prepared:
        """An import page's records prepared; a repeated id keeps its last record (as a
        second upsert of it would)."""
        out = Prepared()
        ready: dict[str, ItemInput] = {}
        for record in records:
            result = record if isinstance(record, ItemFailure) else self.record(record, fields)
            if isinstance(result, ItemFailure):
                out.failures.append(result)
            else:
                ready.pop(result.object_id, None)
                ready[result.object_id] = result
        out.items = list(ready.values())
        return out
