"""Paging lists and searches: page sizes, pages, and the cursors their signed tokens carry
(es_core/page_tokens.py signs and verifies the tokens)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.page_tokens import PageTokens

# Ranks shown to a caller, and stored with a session, are int32 in the API (ShownResult.rank).
MAX_RANK = 2**31 - 1


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


def page_offset(cursor: dict[str, Any], limit: int, field: str = "page_token") -> int:
    """How many results came before the page a cursor starts ("n"): a whole number that leaves
    the page's ranks within ``MAX_RANK``, else INVALID_ARGUMENT naming ``field``."""
    start = cursor.get("n")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise InvalidArgument.field_error(field, "is not a page token this service issued")
    if start + max(limit, 1) - 1 > MAX_RANK:
        raise InvalidArgument.field_error(
            field, f"goes past the last rank a page may show ({MAX_RANK})"
        )
    return start


def time_cursor(
    tokens: PageTokens, page_token: str, scope: Any
) -> tuple[datetime | None, str | None]:
    """For newest-first lists: (time, id) of the previous page's last row; (None, None) at first."""
    if not page_token:
        return None, None
    cursor = tokens.decode(page_token, scope)
    try:
        return datetime.fromisoformat(cursor["time"]), str(cursor["id"])
    except (KeyError, TypeError, ValueError):
        raise InvalidArgument.field_error(
            "page_token", "is not a page token this service issued"
        ) from None


def time_page(
    rows: list[T],
    page_size: int,
    key: Callable[[T], tuple[datetime | None, str]],
    scope: Any,
    tokens: PageTokens,
) -> tuple[list[T], str]:
    """The page out of ``page_size + 1`` fetched rows, and the token for the next (or "")."""
    page = rows[:page_size]
    if len(rows) <= page_size:
        return page, ""
    moment, ident = key(page[-1])
    assert moment is not None
    return page, tokens.encode({"time": moment.isoformat(), "id": ident}, scope)
