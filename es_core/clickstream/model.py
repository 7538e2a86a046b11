"""Sessions and events as the library sees them, and the checks a write must pass."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.item_input import check_json, check_object_id
from es_core.pagination import MAX_RANK
from es_core.search.query import check_user_id

MAX_RESULTS = 1000
EVENT_TYPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


@dataclass(frozen=True)
class ShownResult:
    object_id: str
    rank: int


@dataclass(frozen=True)
class Event:
    event_id: str
    session_id: str
    object_id: str
    event_type: str
    event_time: datetime | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    object_not_shown: bool = False


@dataclass(frozen=True)
class Session:
    """What a search showed. ``filter`` and ``sort`` are kept as the caller's JSON."""

    session_id: str
    results: list[ShownResult]
    user_id: str = ""
    query_text: str = ""
    filter: dict[str, Any] | None = None
    sort: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    create_time: datetime | None = None
    collection_id: str = ""
    irrelevant: bool = False
    batch_id: str = ""
    events: list[Event] = field(default_factory=list)
    # The app of the key that registered it ("" = none): keys of other apps never see it.
    app: str = ""

    def content(self) -> dict[str, Any]:
        """What makes two registrations of one session_id the same session."""
        return {
            "user_id": self.user_id,
            "query_text": self.query_text,
            "results": [[r.object_id, r.rank] for r in self.results],
            "filter": self.filter,
            "sort": self.sort,
            "meta": self.meta,
            "collection_id": self.collection_id,
        }


def _bad(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument.field_error(field_path, description)


def check_id(value: str, field_path: str, settings: Settings) -> None:
    if not value:
        raise _bad(field_path, "must not be empty")
    if len(value) > settings.max_id_chars or "\x00" in value:
        raise _bad(field_path, f"must be at most {settings.max_id_chars} characters, without NUL")


def check_time(moment: datetime | None, field_path: str, settings: Settings) -> datetime:
    """A time within the configured window around now; None means now."""
    now = datetime.now(UTC)
    if moment is None:
        return now
    if moment < now - timedelta(seconds=settings.session_max_age_seconds):
        days = settings.session_max_age_seconds / 86400
        raise _bad(field_path, f"must be within the last {days:g} days")
    if moment > now + timedelta(seconds=settings.session_max_future_seconds):
        raise _bad(
            field_path,
            f"must not be more than {settings.session_max_future_seconds:g} s in the future",
        )
    return moment


def check_session(session: Session, settings: Settings, field_path: str = "session") -> None:
    check_id(session.session_id, f"{field_path}.session_id", settings)
    check_user_id(session.user_id, settings, f"{field_path}.user_id")
    max_chars = settings.max_query_chars
    if len(session.query_text) > max_chars or "\x00" in session.query_text:
        raise _bad(f"{field_path}.query_text", f"must be at most {max_chars} characters")
    if not session.results:
        raise _bad(f"{field_path}.results", "must list the results shown")
    if len(session.results) > MAX_RESULTS:
        raise _bad(f"{field_path}.results", f"must hold at most {MAX_RESULTS} results")
    for i, result in enumerate(session.results):
        check_object_id(result.object_id, f"{field_path}.results[{i}].object_id", settings)
    check_ranks(session.results, f"{field_path}.results")
    check_json(session.meta, f"{field_path}.meta", settings.max_meta_bytes)


def check_ranks(results: list[ShownResult], field_path: str = "session.results") -> None:
    """Ranks are distinct and within 0..MAX_RANK (int32 in the API): every session stored passes
    this, so none can hold a rank that could not be shown back."""
    ranks: set[int] = set()
    for i, result in enumerate(results):
        if not 0 <= result.rank <= MAX_RANK:
            raise _bad(f"{field_path}[{i}].rank", f"must be within 0..{MAX_RANK}")
        if result.rank in ranks:
            raise _bad(f"{field_path}[{i}].rank", "repeats the rank of another result")
        ranks.add(result.rank)


def check_events(events: list[Event], settings: Settings, field_path: str = "events") -> None:
    if not events:
        raise _bad(field_path, "must hold at least one event")
    if len(events) > settings.max_items_per_request:
        raise _bad(field_path, f"must hold at most {settings.max_items_per_request} events")
    for i, event in enumerate(events):
        here = f"{field_path}[{i}]"
        check_id(event.event_id, f"{here}.event_id", settings)
        check_id(event.session_id, f"{here}.session_id", settings)
        check_object_id(event.object_id, f"{here}.object_id", settings)
        if not EVENT_TYPE.match(event.event_type):
            raise _bad(f"{here}.event_type", "must be 1..64 letters, digits or _ . : -")
        check_time(event.event_time, f"{here}.event_time", settings)
        if event.meta or settings.max_meta_bytes < 2:  # {} fits any sane limit, holds no NUL
            check_json(event.meta, f"{here}.meta", settings.max_meta_bytes)
