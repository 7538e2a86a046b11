"""Sessions and events: proto <-> es_core.clickstream types."""

from __future__ import annotations

from collections.abc import Sequence

from google.protobuf import json_format

from embedding_studio.v1 import clickstream_pb2
from es_core.clickstream.model import Event, Session, ShownResult
from es_server.convert import (
    dict_to_struct,
    optional_filter,
    optional_json,
    optional_sort,
    optional_time,
    struct_to_dict,
    timestamp,
)


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
            clickstream_pb2.ShownResult(object_id=r.object_id, rank=r.rank) for r in session.results
        ],
        meta=dict_to_struct(session.meta),
        create_time=timestamp(session.create_time),
        irrelevant=session.irrelevant,
        batch_id=session.batch_id,
        collection_id=session.collection_id,
        events=[event_to_proto(e) for e in session.events],
    )
    if session.filter is not None:
        json_format.ParseDict(session.filter, message.filter)
    if session.sort is not None:
        json_format.ParseDict(session.sort, message.sort)
    return message


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
            meta=struct_to_dict(m.meta, f"{where}[{i}].meta"),
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
