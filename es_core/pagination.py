"""Opaque page tokens: a keyset cursor bound to the query that produced it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from es_core.config import Settings
from es_core.errors import InvalidArgument

MAX_TOKEN_CHARS = 4096


def _scope_digest(scope: Any) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_page_token(cursor: dict[str, Any], scope: Any) -> str:
    """A token for the page after ``cursor``; only valid with a query of the same ``scope``."""
    body = json.dumps({"s": _scope_digest(scope), "c": cursor}, separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode_page_token(token: str, scope: Any, field: str = "page_token") -> dict[str, Any]:
    """The cursor inside ``token``; INVALID_ARGUMENT if it is malformed or from another query."""
    if len(token) > MAX_TOKEN_CHARS:
        raise InvalidArgument.field_error(field, "is not a page token this service issued")
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        digest, cursor = body["s"], body["c"]
    except (ValueError, KeyError, TypeError, RecursionError):
        raise InvalidArgument.field_error(
            field, "is not a page token this service issued"
        ) from None
    if digest != _scope_digest(scope) or not isinstance(cursor, dict):
        raise InvalidArgument.field_error(
            field, "belongs to a different query; send the same query with it"
        )
    return cursor


def token_collection(token: str) -> str | None:
    """The collection a search page token was issued on ("col" in its cursor), unchecked: the
    scope check that follows refuses a token altered to name another. None when it names none.

    A search that names no collection reads the blue one; its later pages read the collection
    its first page came from, so a blue switch between pages never mixes two collections."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        body = json.loads(base64.urlsafe_b64decode((token + "=" * (-len(token) % 4)).encode()))
        collection = body["c"]["col"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    return collection if isinstance(collection, str) else None


def check_page_size(
    page_size: int, *, default: int, maximum: int, field_path: str = "page_size"
) -> int:
    """0 means the default; above the maximum is clamped to it (AIP-158); negative is an error."""
    if page_size < 0:
        raise InvalidArgument.field_error(field_path, "must not be negative")
    return min(page_size, maximum) or default


T = TypeVar("T")


@dataclass(frozen=True)
class PageRequest:
    """What a list request pages by: its page_size (0 = the default) and page_token."""

    page_size: int = 0
    page_token: str = ""

    def size(self, settings: Settings, maximum: int | None = None) -> int:
        """The checked page size: ES_DEFAULT_PAGE_SIZE for 0, at most ``maximum`` (default
        ES_MAX_PAGE_SIZE)."""
        return check_page_size(
            self.page_size,
            default=settings.default_page_size,
            maximum=maximum or settings.max_page_size,
        )


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, and the token of the next ("" after the last)."""

    items: list[T]
    next_page_token: str


def time_cursor(page_token: str, scope: Any) -> tuple[datetime | None, str | None]:
    """For newest-first lists: (time, id) of the previous page's last row; (None, None) at first."""
    if not page_token:
        return None, None
    cursor = decode_page_token(page_token, scope)
    try:
        return datetime.fromisoformat(cursor["time"]), str(cursor["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument.field_error(
            "page_token", "is not a page token this service issued"
        ) from None


def time_page(
    rows: list[T], page_size: int, key: Callable[[T], tuple[datetime | None, str]], scope: Any
) -> tuple[list[T], str]:
    """The page out of ``page_size + 1`` fetched rows, and the token for the next (or "")."""
    page = rows[:page_size]
    if len(rows) <= page_size:
        return page, ""
    moment, ident = key(page[-1])
    assert moment is not None
    return page, encode_page_token({"time": moment.isoformat(), "id": ident}, scope)
