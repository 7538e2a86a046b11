"""What a loader is asked for and what it hands back.

A ``SourceSpec`` names content somewhere else: the loader that reads it, a typed locator, how
to read the bytes (``content_type``) and, for structured records, which fields hold what. The
same spec shape serves one item's reference (``UpsertItems``: a key, a row id, a file, a URL)
and a whole import (``ImportItems``: a prefix, a table, a directory or record file, a URL of a
record file).

A loader turns specs into ``Record``s (an item's raw content and payload) or ``ItemFailure``s
(that one item could not be read); it never fails a batch for one bad item.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

JsonDict = dict[str, Any]


class Stage(StrEnum):
    """Where on its way in an item failed."""

    FETCH = "fetch"  # the source could not be read (missing key, unreachable URL, no row)
    PARSE = "parse"  # the content could not be decoded (bad encoding, bad JSON, missing field)
    PREPROCESS = "preprocess"  # nothing was left after cleaning (e.g. HTML with no text)
    SPLIT = "split"  # no part to encode (an empty or blank text)
    ENCODE = "encode"  # the model could not encode it
    STORE = "store"  # the database refused its rows


@dataclass(frozen=True)
class Locator:
    """Where content lives; each loader reads the fields of its kind and requires the rest
    empty. A reference names one item (``key``, ``row_id``, a file ``path``, a ``url``); an
    import names many (``prefix``, a whole ``table``, a directory or record file, a record
    file's ``url``)."""

    bucket: str = ""  # s3, gcs
    key: str = ""  # s3, gcs: one object
    prefix: str = ""  # s3, gcs: every object under it (an import)
    database: str = ""  # postgres: the name of a DSN in ES_POSTGRES_SOURCES (never a DSN)
    table: str = ""  # postgres: [schema.]table or view
    row_id: str = ""  # postgres: one row's id (a reference; empty = the item's object_id)
    path: str = ""  # file: a file or directory under one of ES_FILE_ROOTS
    url: str = ""  # http(s): under one of ES_HTTP_ALLOWED_PREFIXES


@dataclass(frozen=True)
class Fields:
    """How a structured record (a row, a JSONL line, a CSV row, a JSON document) becomes an
    item. ``template`` (``"{title}. {abstract}"``, dotted paths allowed) builds the text from
    several fields and wins over ``text``; ``payload`` lists the fields kept as the payload,
    empty = every field but the id and the text ones."""

    id: str = "id"
    text: str = "text"
    payload: tuple[str, ...] = ()
    template: str = ""


@dataclass(frozen=True)
class SourceSpec:
    loader: str  # a registered loader's name: s3, gcs, postgres, file, http, …
    locator: Locator
    content_type: str = ""  # "" = from the name's extension (or the server's header)
    fields: Fields = field(default_factory=Fields)

    def to_json(self) -> JsonDict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: JsonDict) -> SourceSpec:
        fields = dict(data.get("fields") or {})
        fields["payload"] = tuple(fields.get("payload") or ())
        return cls(
            loader=data["loader"],
            locator=Locator(**(data.get("locator") or {})),
            content_type=data.get("content_type", ""),
            fields=Fields(**fields),
        )


@dataclass(frozen=True)
class Record:
    """One item's raw content as read: the bytes of an object, file or URL (``content_type``
    says how to read them), or a structured record's fields (``content`` a dict, read through
    the spec's ``Fields``). ``reference`` is where it can be read again (None for a record
    inside a file, which cannot be fetched on its own)."""

    object_id: str
    content: bytes | JsonDict
    content_type: str = ""
    payload: JsonDict = field(default_factory=dict)
    reference: SourceSpec | None = None


@dataclass(frozen=True)
class ItemFailure:
    """One item that did not make it, and why. ``object_id`` is empty when the item's id was
    unreadable; ``reason`` then says where it was (e.g. "line 17 of docs.jsonl: no 'id'").
    Reasons are one line and never hold a credential or a traceback."""

    object_id: str
    stage: Stage
    reason: str

    def to_json(self) -> JsonDict:
        return {"object_id": self.object_id, "stage": str(self.stage), "reason": self.reason}


@dataclass(frozen=True)
class Page:
    """One page of an import: its items, and the checkpoint that resumes after them;
    ``source`` is the index of the source they came from when several are read in turn."""

    items: list[Record | ItemFailure]
    checkpoint: str
    source: int = 0
