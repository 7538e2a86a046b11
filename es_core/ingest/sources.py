"""Checking a request's sources before anything is read: the field mapping, the content type
and the loader's own rules (InvalidArgument naming the field); for an import, also that the
whole source can be read at all (the loader's probe: FailedPrecondition or Unavailable)."""

from __future__ import annotations

from es_core.errors import InvalidArgument
from es_core.ingest.decode import check_template
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.content_types import is_record_file, media_type
from es_core.loaders.model import Fields, SourceSpec

#: The most sources one import reads.
MAX_IMPORT_SOURCES = 16
MAX_FIELD_NAME_CHARS = 256
_ITEM_TYPES = frozenset({"application/json", "text/json", "application/xhtml+xml"})


def _bad(field: str, description: str) -> InvalidArgument:
    return InvalidArgument.field_error(field, description)


def check_fields(fields: Fields, field: str) -> None:
    for name, value in (("id", fields.id), ("text", fields.text)):
        _check_name(value, f"{field}.{name}")
    seen: set[str] = set()
    for i, name in enumerate(fields.payload):
        _check_name(name, f"{field}.payload[{i}]")
        if name in seen:
            raise _bad(f"{field}.payload[{i}]", f"repeats {name!r}")
        seen.add(name)
    if fields.template:
        check_template(fields.template, f"{field}.template")


def _check_name(name: str, field: str) -> None:
    if not name or len(name) > MAX_FIELD_NAME_CHARS or "\x00" in name:
        raise _bad(field, f"must be 1 to {MAX_FIELD_NAME_CHARS} characters without NUL")


def check_content_type(content_type: str, field: str, *, whole: bool) -> None:
    if not content_type:
        return
    kind = media_type(content_type)
    if kind.startswith("text/") and kind != "text/csv" or kind in _ITEM_TYPES:
        return
    if is_record_file(kind):
        if whole:
            return
        raise _bad(field, f"{kind} is a file of many items: import it with ImportItems")
    raise _bad(field, f"cannot read {kind!r}: use a text/*, JSON, JSONL, CSV or Parquet type")


def check_source(loader: AggregatedLoader, spec: SourceSpec, field: str, *, whole: bool) -> None:
    """Everything about ``spec`` that can be known without reading it."""
    check_content_type(spec.content_type, f"{field}.content_type", whole=whole)
    check_fields(spec.fields, f"{field}.fields")
    loader.check(spec, field, whole=whole)
