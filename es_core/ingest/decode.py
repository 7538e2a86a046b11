"""Reading a fetched record: its text and payload, or why it cannot be read (stage PARSE).

Bytes are read by their content type: text (with its charset, UTF-8 by default), HTML (kept as
markup here; the cleaner strips it), or a JSON document, which is a structured record like a
table row. A structured record's text is its ``Fields.text`` field, or ``Fields.template``
filled from its fields; its payload is ``Fields.payload`` (every other field when empty)."""

from __future__ import annotations

import json
import re
import string
from dataclasses import dataclass
from typing import Any

from es_core.errors import InvalidArgument
from es_core.item_input import JsonDict, check_json
from es_core.loaders.content_types import media_type
from es_core.loaders.model import Fields, ItemFailure, Record, Stage

JSON_TYPES = frozenset({"application/json", "text/json"})
_CHARSET = re.compile(r"charset\s*=\s*\"?([\w.:-]+)", re.IGNORECASE)


@dataclass(frozen=True)
class Decoded:
    text: str
    payload: JsonDict
    content_type: str  # what the text is: text/html for markup still to strip, else text/plain


def decode(record: Record, fields: Fields, max_payload_bytes: int) -> Decoded | ItemFailure:
    def failed(reason: str) -> ItemFailure:
        return ItemFailure(record.object_id, Stage.PARSE, reason)

    if isinstance(record.content, dict):
        return _structured(record, record.content, fields, max_payload_bytes)
    kind = media_type(record.content_type)
    textual = (
        kind in JSON_TYPES or kind.startswith("text/") or kind in {"application/xhtml+xml", ""}
    )
    if not textual:
        return failed(f"cannot read content of type {kind!r} as text")
    charset_match = _CHARSET.search(record.content_type)
    charset = charset_match.group(1) if charset_match else "utf-8"
    try:
        text = record.content.decode(
            "utf-8-sig" if charset.lower() in {"utf-8", "utf8"} else charset
        )
    except LookupError:
        return failed(f"unknown charset {charset!r}")
    except UnicodeDecodeError as exc:
        return failed(f"not valid {charset} at byte {exc.start}")
    if kind in JSON_TYPES:
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            return failed(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
        if not isinstance(document, dict):
            return failed(f"a JSON document must be an object, not {type(document).__name__}")
        return _structured(record, document, fields, max_payload_bytes)
    payload = _payload(record, record.payload, max_payload_bytes)
    if isinstance(payload, ItemFailure):
        return payload
    return Decoded(text, payload, kind or "text/plain")


def _structured(
    record: Record, document: JsonDict, fields: Fields, max_payload_bytes: int
) -> Decoded | ItemFailure:
    if fields.template:
        try:
            text = fill_template(fields.template, document)
        except ValueError as exc:
            return ItemFailure(record.object_id, Stage.PARSE, f"template does not parse: {exc}")
    else:
        if fields.text not in document:
            return ItemFailure(record.object_id, Stage.PARSE, f"no {fields.text!r} field")
        value = document[fields.text]
        if value is None:
            value = ""  # a NULL text is an empty document: it fails at split, as "" does
        if isinstance(value, (dict, list)):
            return ItemFailure(
                record.object_id, Stage.PARSE, f"field {fields.text!r} is not a text"
            )
        text = str(value)
    if fields.payload:
        own = {name: document[name] for name in fields.payload if name in document}
    else:
        used = {fields.id, fields.text, *template_fields(fields.template)}
        own = {k: v for k, v in document.items() if k not in used}
    payload = _payload(record, {**own, **record.payload}, max_payload_bytes)
    if isinstance(payload, ItemFailure):
        return payload
    return Decoded(text, payload, "text/plain")


def _payload(record: Record, payload: JsonDict, max_bytes: int) -> JsonDict | ItemFailure:
    try:
        check_json(payload, "payload", max_bytes)
    except InvalidArgument as exc:
        return ItemFailure(record.object_id, Stage.PARSE, exc.message)
    return payload


def check_template(template: str, field: str) -> None:
    """InvalidArgument naming ``field`` unless the template parses and names only fields."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template)]
    except ValueError as exc:
        raise InvalidArgument.field_error(field, f"does not parse: {exc}") from exc
    if any(name == "" for name in names):
        raise InvalidArgument.field_error(field, "each {} must name a field, e.g. {title}")


def template_fields(template: str) -> list[str]:
    """The top-level field each ``{name}`` / ``{name.sub}`` of the template reads."""
    return [name.split(".")[0] for _, name, _, _ in string.Formatter().parse(template) if name]


def _lookup(document: Any, path: str) -> Any:
    for segment in path.split("."):
        if not isinstance(document, dict) or segment not in document:
            return None
        document = document[segment]
    return document


def fill_template(template: str, document: JsonDict) -> str:
    """The template with each ``{path}`` replaced by the document's value there ("" when it
    has none, so a record without a subtitle still reads well); a template that does not parse
    gives "\\0" and the reason."""
    out: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"\0template does not parse: {exc}"
    for literal, name, _, _ in parsed:
        out.append(literal)
        if name:
            value = _lookup(document, name)
            if value is not None:
                out.append(value if isinstance(value, str) else json.dumps(value))
    return "".join(out)
