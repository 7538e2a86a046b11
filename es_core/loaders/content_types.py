"""Content types as loaders and the ingest pipeline read them (no heavy imports: the server
checks requests with these)."""

from __future__ import annotations

JSONL = "application/x-ndjson"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"

# The files of many records, and what a record is called in a reason ("line 17 of docs.jsonl").
UNITS = {JSONL: "line", CSV: "row", PARQUET: "row"}


def media_type(content_type: str) -> str:
    """``text/csv; charset=utf-8`` -> ``text/csv``."""
    return content_type.split(";", 1)[0].strip().lower()


def is_record_file(content_type: str) -> bool:
    return media_type(content_type) in UNITS
