"""A structured record (a table row, a JSONL line, a CSV row) as an item: its id read through
the source's ``Fields``; its text and payload are read later, by the ingest pipeline."""

from __future__ import annotations

from typing import Any

from es_core.loaders.model import ItemFailure, Record, SourceSpec, Stage


def record_of(
    spec: SourceSpec, fields: dict[str, Any], where: str, reference: SourceSpec | None = None
) -> Record | ItemFailure:
    """The record under its id (``spec.fields.id``), or a PARSE failure saying ``where`` the
    record was (e.g. "line 17 of docs.jsonl") when it has no usable id."""
    value = fields.get(spec.fields.id)
    if value is None or isinstance(value, (dict, list)) or str(value).strip() == "":
        return ItemFailure(
            "", Stage.PARSE, f"{where}: no {spec.fields.id!r} field to use as the id"
        )
    return Record(str(value), fields, "", {}, reference)
