"""A PostgreSQL row as a JSON-able dict: what the ingest pipeline reads a row's text and
payload from, and what a payload stores.

Conversions: timestamps, dates and times become ISO 8601 text; ``numeric`` becomes an int when
it is whole and a float otherwise (payload filters compare numbers; digits past a float's
precision are lost); NaN and infinities become their text (JSON has no such numbers);
``interval`` becomes seconds; UUIDs, network addresses and any other type become their text;
``json``/``jsonb`` arrive decoded (the pool's codecs); arrays and composites convert element by
element. ``bytea`` becomes text when it is UTF-8, else the column is left out of the row
(inside an array or composite it becomes null): raw bytes have no JSON form worth embedding.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import asyncpg

_UNREADABLE = object()  # bytes that are not UTF-8: no JSON form


def row_content(columns: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """A row's (column, value) pairs as a JSON-able dict; undecodable bytes left out."""
    content: dict[str, Any] = {}
    for name, value in columns:
        converted = _json_value(value)
        if converted is not _UNREADABLE:
            content[name] = converted
    return content


def content_bytes(content: dict[str, Any]) -> int:
    """About how large a row is as an item's content (its JSON text, UTF-8)."""
    return len(json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode())


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return _UNREADABLE
    if isinstance(value, asyncpg.Record):  # a composite value
        return {str(k): _nested(v) for k, v in value.items()}
    if isinstance(value, dict):
        return {str(k): _nested(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):  # arrays; asyncpg's geometric types are tuples
        return [_nested(v) for v in value]
    return str(value)


def _nested(value: Any) -> Any:
    converted = _json_value(value)
    return None if converted is _UNREADABLE else converted
