"""Sessions and events: proto <-> es_core.clickstream types.

Reading a stored session never fails: one odd row (a rank stored before ranks were bounded, a
filter written by an older contract) must not turn GetSession, and every ListSessions page
that holds it, into INTERNAL for every caller."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from embedding_studio.v1 import clickstream_pb2
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.pagination import MAX_RANK
from es_server.convert import (
    dict_to_struct,
    optional_filter,
    optional_json,
    optional_sort,
    optional_time,
    struct_to_dict,
    timestamp,
)

log = logging.getLogger(__name__)


def session_from_proto(message: clickstream_pb2.Session, where: str = "session") -> Session:
    """The session; its filter and sort are checked for shape and kept as the caller's JSON."""
    optional_filter(message, "filter", f"{where}.filter")
    optional_sort(message, "sort", f"{where}.sort")
    return Session(
        session_id=message.session_id,
        results=[ShownResult(r.object_id, r.rank) for r in message.results],
        user_id=message.user_id,
        query_text=message.query_text,
        filter=optional_json(message, "filter"),
        sort=optional_json(message, "sort"),
        meta=struct_to_dict(message.meta, f"{where}.meta"),
        create_time=optional_time(message, "create_time"),
        collection_id=message.collection_id,
    )


def session_to_proto(session: Session) -> clickstream_pb2.Session:
    message = clickstream_pb2.Session(
        session_id=session.session_id,
        user_id=session.user_id,
        query_text=session.query_text,
        results=[
            clickstream_pb2.ShownResult(object_id=r.object_id, rank=min(max(r.rank, 0), MAX_RANK))
            for r in session.results
        ],
        meta=dict_to_struct(session.meta),
        create_time=timestamp(session.create_time),
        irrelevant=session.irrelevant,
        batch_id=session.batch_id,
        collection_id=session.collection_id,
        events=[event_to_proto(e) for e in session.events],
    )
    _stored_json(session.filter, message, "filter", session.session_id)
    _stored_json(session.sort, message, "sort", session.session_id)
    return message


def _stored_json(
    stored: dict[str, Any] | None, message: Message, name: str, session_id: str
) -> None:
    """A session's stored filter or sort into its field of ``message``; left unset (and logged)
    when the contract can no longer read it."""
    if stored is None:
        return
    try:
        json_format.ParseDict(stored, getattr(message, name))
    except (json_format.ParseError, ValueError, TypeError):
        message.ClearField(name)
        log.warning("session %r: its stored %s no longer parses; shown unset", session_id, name)


def events_from_proto(
    messages: Sequence[clickstream_pb2.SessionEvent], where: str = "events"
) -> list[Event]:
    return [
        Event(
            event_id=m.event_id,
            session_id=m.session_id,
            object_id=m.object_id,
            event_type=m.event_type,
            event_time=optional_time(m, "event_time"),
            # Most events carry no meta: skip the (pure Python) Struct to dict conversion.
            meta=struct_to_dict(m.meta, f"{where}[{i}].meta") if m.meta.fields else {},
        )
        for i, m in enumerate(messages)
    ]


def event_to_proto(event: Event) -> clickstream_pb2.SessionEvent:
    return clickstream_pb2.SessionEvent(
        event_id=event.event_id,
        session_id=event.session_id,
        object_id=event.object_id,
        event_type=event.event_type,
        event_time=timestamp(event.event_time),
        meta=dict_to_struct(event.meta),
        object_not_shown=event.object_not_shown,
    )
