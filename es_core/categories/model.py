"""A category on the way in and out, and how it is laid out as an item of its collection.

A category is a one-part item: its id is the item's object id, its one part (part id "0")
holds the text the plugin chose to encode, and its head row's payload holds what the caller
gave: ``{"name": ..., "text": ..., "payload": {...}}``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from es_core.item_input import ItemInput, PartInput

PART_ID = "0"


@dataclass(frozen=True)
class Category:
    category_id: str
    name: str
    text: str = ""  # empty: the name is what places it (for the built-in plugin)
    payload: dict[str, Any] = field(default_factory=dict)


def as_item(category: Category, encoded_text: str) -> ItemInput:
    """The item an upsertion task writes for ``category``, encoding ``encoded_text``."""
    return ItemInput(
        object_id=category.category_id,
        payload={"name": category.name, "text": category.text, "payload": category.payload},
        parts=[PartInput(PART_ID, encoded_text)],
    )


def from_head_payload(category_id: str, payload: dict[str, Any]) -> Category:
    """The category a head row's payload describes (tolerating missing keys)."""
    inner = payload.get("payload")
    return Category(
        category_id=category_id,
        name=str(payload.get("name", "")),
        text=str(payload.get("text", "")),
        payload=inner if isinstance(inner, dict) else {},
    )
