"""What an item is on the way in: checked at the API edge so a bad request writes nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from es_core.config import Settings
from es_core.domain import Collection
from es_core.errors import InvalidArgument
from es_core.loaders.model import SourceSpec

JsonDict = dict[str, Any]


@dataclass(frozen=True)
class PartInput:
    """One part of an item: text for the encoder, or a vector computed elsewhere."""

    part_id: str
    text: str | None = None
    vector: Sequence[float] | npt.NDArray[np.float32] | None = None


@dataclass(frozen=True)
class ItemInput:
    """An item to upsert: its id, its payload and one of whole text, pre-split parts or a
    reference to where its content lives (``source``, read by the worker).

    Once prepared for encoding (``es_core.ingest.prepare``) an item has parts only, and
    ``source`` says where it was read from (kept with the item so it can be read again);
    ``store_text`` False keeps only the parts' vectors (the text stays at the source)."""

    object_id: str
    payload: JsonDict = field(default_factory=dict)
    text: str | None = None
    parts: list[PartInput] = field(default_factory=list)
    source: SourceSpec | None = None
    store_text: bool = True

    def to_json(self) -> JsonDict:
        data: JsonDict = {
            "object_id": self.object_id,
            "payload": self.payload,
            "text": self.text,
            "parts": [
                {"part_id": p.part_id, "text": p.text, "vector": _pack(p.vector)}
                for p in self.parts
            ],
        }
        if self.source is not None:
            data["source"] = self.source.to_json()
        return data

    @classmethod
    def from_json(cls, data: JsonDict) -> ItemInput:
        source = data.get("source")
        return cls(
            object_id=data["object_id"],
            payload=data["payload"],
            text=data["text"],
            parts=[PartInput(p["part_id"], p["text"], _unpack(p["vector"])) for p in data["parts"]],
            source=None if source is None else SourceSpec.from_json(source),
        )


def _pack(vector: Sequence[float] | npt.NDArray[np.float32] | None) -> str | None:
    """Vectors travel in task params as base64 float32: a quarter of the JSON, parsed at once."""
    if vector is None:
        return None
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def _unpack(packed: str | None) -> npt.NDArray[np.float32] | None:
    if packed is None:
        return None
    return np.frombuffer(base64.b64decode(packed), dtype="<f4").astype(np.float32)


def _bad(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument.field_error(field_path, description)


def check_object_id(object_id: str, field_path: str, settings: Settings) -> None:
    if not object_id:
        raise _bad(field_path, "must not be empty")
    if len(object_id) > settings.max_object_id_chars:
        raise _bad(field_path, f"must be at most {settings.max_object_id_chars} characters")
    if "\x00" in object_id:
        raise _bad(field_path, "must not contain NUL characters")


def check_object_ids(object_ids: list[str], field_path: str, settings: Settings) -> list[str]:
    """1..max distinct ids; duplicates are collapsed rather than refused."""
    if not object_ids:
        raise _bad(field_path, "must name at least one object")
    if len(object_ids) > settings.max_items_per_request:
        raise _bad(field_path, f"must name at most {settings.max_items_per_request} objects")
    for i, object_id in enumerate(object_ids):
        check_object_id(object_id, f"{field_path}[{i}]", settings)
    return list(dict.fromkeys(object_ids))


def check_payload(payload: JsonDict, field_path: str, settings: Settings) -> None:
    check_json(payload, field_path, settings.max_payload_bytes)


def check_json(value: JsonDict, field_path: str, max_bytes: int) -> None:
    """At most ``max_bytes`` as compact JSON, and no NUL anywhere (PostgreSQL cannot store it)."""
    encoded = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if len(encoded.encode()) > max_bytes:
        raise _bad(field_path, f"must be at most {max_bytes} bytes as JSON")
    if _has_nul(value):
        raise _bad(field_path, "must not contain NUL characters (PostgreSQL cannot store them)")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any("\x00" in k or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def _check_text(text: str, field_path: str, settings: Settings, *, blank_ok: bool = False) -> None:
    """A blank whole text is let through when ``blank_ok``: that item alone fails (stage
    split) and the others of its request are written."""
    if not blank_ok and not text.strip():
        raise _bad(field_path, "must not be blank")
    if len(text) > settings.max_text_chars:
        raise _bad(field_path, f"must be at most {settings.max_text_chars} characters")
    if "\x00" in text:
        raise _bad(field_path, "must not contain NUL characters")


def check_vector(
    vector: Sequence[float] | npt.NDArray[np.float32], field_path: str, collection: Collection
) -> None:
    """Right length, finite as float32 (what is stored), and not all zeros under cosine."""
    dims = collection.model.dimensions
    if len(vector) != dims:
        raise _bad(
            field_path, f"must have {dims} values (the collection's dimensions), not {len(vector)}"
        )
    with np.errstate(over="ignore"):
        stored = np.asarray(vector, dtype=np.float32)
    if not np.isfinite(stored).all():
        raise _bad(field_path, "must hold finite numbers only")
    if collection.model.metric == "cosine" and not stored.any():
        raise _bad(field_path, "must not be all zeros under the cosine metric")


def check_items(items: list[ItemInput], collection: Collection, settings: Settings) -> None:
    """Every rule an upsert must meet, naming the first field that breaks one."""
    if not items:
        raise _bad("items", "must hold at least one item")
    if len(items) > settings.max_items_per_request:
        raise _bad("items", f"must hold at most {settings.max_items_per_request} items")
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        where = f"items[{i}]"
        check_object_id(item.object_id, f"{where}.object_id", settings)
        if item.object_id in seen:
            raise _bad(f"{where}.object_id", f"repeats items[{seen[item.object_id]}].object_id")
        seen[item.object_id] = i
        check_payload(item.payload, f"{where}.payload", settings)
        if sum((item.text is not None, bool(item.parts), item.source is not None)) != 1:
            raise _bad(where, "must have exactly one of text, parts or source")
        if item.text is not None:
            _check_text(item.text, f"{where}.text", settings, blank_ok=True)
            continue
        if item.source is not None:
            continue  # checked by its loader (es_core.ingest.sources.check_reference)
        if len(item.parts) > settings.max_parts_per_item:
            raise _bad(f"{where}.parts", f"must hold at most {settings.max_parts_per_item} parts")
        part_ids: set[str] = set()
        for j, part in enumerate(item.parts):
            pwhere = f"{where}.parts[{j}]"
            if not part.part_id or len(part.part_id) > 128 or "\x00" in part.part_id:
                raise _bad(f"{pwhere}.part_id", "must be 1 to 128 characters without NUL")
            if part.part_id in part_ids:
                raise _bad(f"{pwhere}.part_id", "repeats another part of this item")
            part_ids.add(part.part_id)
            if part.text is None and part.vector is None:
                raise _bad(pwhere, "must have a text, a vector or both")
            # With both, the vector is stored as given and the text is kept beside it (so a
            # reindex or fine-tuning can re-encode it).
            if part.text is not None:
                _check_text(part.text, f"{pwhere}.text", settings)
            if part.vector is not None:
                check_vector(part.vector, f"{pwhere}.vector", collection)


def check_vectors_fit(items: list[ItemInput], collection: Collection) -> None:
    """Given vectors must also fit ``collection``, another collection the write reaches (one a
    reindex keeps in step), whose model may have other dimensions."""
    dims = collection.model.dimensions
    for i, item in enumerate(items):
        for j, part in enumerate(item.parts):
            if part.vector is not None and len(part.vector) != dims:
                raise _bad(
                    f"items[{i}].parts[{j}].vector",
                    f"must have {dims} values: the write also reaches collection"
                    f" {collection.collection_id!r}, which is kept in step with this one",
                )
