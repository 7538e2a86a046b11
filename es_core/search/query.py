"""What a search asks for and what it gets back, free of any wire format."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.filters.model import Filter


@dataclass(frozen=True)
class SortSpec:
    """Order by a payload field (dotted path) instead of by distance."""

    field: str
    descending: bool = False


@dataclass(frozen=True)
class VectorQuery:
    vector: npt.NDArray[np.float32]
    filter: Filter | None = None
    sort: SortSpec | None = None
    limit: int = 10
    max_distance: float | None = None
    page_token: str = ""
    user_id: str = ""
    exclude_object_id: str = ""

    def scope(self, collection_id: str) -> dict[str, Any]:
        """What a page token is bound to: the same query must come back with it."""
        return {
            "kind": "vector",
            "collection": collection_id,
            "vector": hashlib.sha256(np.ascontiguousarray(self.vector).tobytes()).hexdigest(),
            "filter": repr(self.filter),
            "sort": repr(self.sort),
            "max_distance": self.max_distance,
            "user": self.user_id,
            "exclude": self.exclude_object_id,
        }


@dataclass(frozen=True)
class PayloadQuery:
    filter: Filter | None = None
    sort: SortSpec | None = None
    limit: int = 10
    page_token: str = ""

    def scope(self, collection_id: str) -> dict[str, Any]:
        return {
            "kind": "payload",
            "collection": collection_id,
            "filter": repr(self.filter),
            "sort": repr(self.sort),
        }


@dataclass(frozen=True)
class SearchHit:
    object_id: str
    distance: float
    payload: dict[str, Any] = field(default_factory=dict)
    matched_part_id: str = ""
    user_id: str = ""
    # The ranking score, higher first (vector ranking: -distance); BM25 for the query's words.
    score: float | None = None
    lexical_score: float = 0.0


def check_limit(limit: int, settings: Settings, field_path: str = "limit") -> int:
    """0 means the default; the answer is never larger than the configured maximum."""
    if limit < 0:
        raise InvalidArgument.field_error(field_path, "must not be negative")
    if limit > settings.max_search_limit:
        raise InvalidArgument.field_error(
            field_path, f"must be at most {settings.max_search_limit}"
        )
    return limit or settings.default_search_limit


def check_user_id(user_id: str, settings: Settings, field_path: str = "user_id") -> None:
    if len(user_id) > settings.max_user_id_chars:
        raise InvalidArgument.field_error(
            field_path, f"must be at most {settings.max_user_id_chars} characters"
        )
    if "\x00" in user_id:
        raise InvalidArgument.field_error(field_path, "must not contain NUL characters")


def check_max_distance(max_distance: float | None, field_path: str = "max_distance") -> None:
    if max_distance is not None and not np.isfinite(max_distance):
        raise InvalidArgument.field_error(field_path, "must be a finite number")


def check_query_text(text: str | None, max_chars: int, field_path: str = "query_text") -> str:
    """The text a search encodes when it has no query vector: set, not blank, at most
    ``max_chars`` characters, without NUL."""
    if text is None:
        raise InvalidArgument.field_error(field_path, "set query_text or query_vector")
    if not text.strip():
        raise InvalidArgument.field_error(field_path, "must not be blank")
    if len(text) > max_chars or "\x00" in text:
        raise InvalidArgument.field_error(
            field_path, f"must be at most {max_chars} characters, without NUL"
        )
    return text
