"""ClickstreamService through gRPC: sessions, events, listing, improvement queueing, bad input.

Objects written here use ids starting "cs-", payload {"suite": "clickstream"} and pre-computed
384-d unit vectors; sessions and users carry a random "cs-" id so runs never meet.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import numpy as np
import pytest
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import common_pb2, search_pb2
from es_core.clickstream import store
from es_harness.throwaway import StackInfo
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

DIMS = 384
SUITE = "clickstream"
N_ITEMS = 12
BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
ALREADY = grpc.StatusCode.ALREADY_EXISTS
MINE = json_format.ParseDict({"term": {"field": "suite", "value": SUITE}}, common_pb2.Filter())
NOBODY = json_format.ParseDict(
    {"term": {"field": "suite", "value": "clickstream-nothing"}}, common_pb2.Filter()
)


def unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIMS)
    return [float(x) for x in v / np.linalg.norm(v)]


ITEM_IDS = [f"cs-item-{i}" for i in range(N_ITEMS)]
ITEM_VECTORS = {object_id: unit(9100 + i) for i, object_id in enumerate(ITEM_IDS)}


def rid(name: str) -> str:
    return f"cs-{name}-{uuid.uuid4().hex[:10]}"


def ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def session(
    session_id: str,
    objects: list[str] | None = None,
    *,
    user_id: str = "",
    query_text: str = "",
    create_time: datetime | None = None,
    meta: dict[str, Any] | None = None,
    collection_id: str = "",
) -> cs.Session:
    message = cs.Session(
        session_id=session_id,
        user_id=user_id,
        query_text=query_text,
        results=[
            cs.ShownResult(object_id=o, rank=r) for r, o in enumerate(objects or ITEM_IDS[:4])
        ],
        collection_id=collection_id,
    )
    if create_time is not None:
        message.create_time.CopyFrom(ts(create_time))
    if meta is not None:
        message.meta.update(meta)
    return message


def event(
    event_id: str,
    session_id: str,
    object_id: str = ITEM_IDS[0],
    event_type: str = "click",
    when: datetime | None = None,
    meta: dict[str, Any] | None = None,
) -> cs.SessionEvent:
    message = cs.SessionEvent(
        event_id=event_id, session_id=session_id, object_id=object_id, event_type=event_type
    )
    if when is not None:
        message.event_time.CopyFrom(ts(when))
    if meta is not None:
        message.meta.update(meta)
    return message


def register(client: Client, message: cs.Session) -> cs.Session:
    return client.clickstream.RegisterSession(
        cs.RegisterSessionRequest(session=message), timeout=60
    ).session


def get(client: Client, session_id: str) -> cs.Session:
    return client.clickstream.GetSession(
        cs.GetSessionRequest(session_id=session_id), timeout=60
    ).session


def push(client: Client, *events: cs.SessionEvent) -> tuple[int, int]:
    reply = client.clickstream.PushEvents(cs.PushEventsRequest(events=list(events)), timeout=60)
    return reply.accepted_count, reply.duplicate_count


def stream(client: Client, *messages: list[cs.SessionEvent]) -> cs.StreamEventsResponse:
    requests = (cs.StreamEventsRequest(events=m) for m in messages)
    reply: cs.StreamEventsResponse = client.clickstream.StreamEvents(requests, timeout=60)
    return reply


def search(client: Client, vector: list[float], **kw: Any) -> search_pb2.SearchResponse:
    request = search_pb2.SearchRequest(
        query_vector=common_pb2.Vector(values=vector), filter=kw.pop("filter", MINE), **kw
    )
    return client.search.Search(request, timeout=60)


def list_all(client: Client, **kw: Any) -> tuple[list[cs.Session], int]:
    """Every page of ListSessions; returns the sessions and the number of pages."""
    sessions: list[cs.Session] = []
    token, pages = "", 0
    while True:
        reply = client.clickstream.ListSessions(
            cs.ListSessionsRequest(page_token=token, **kw), timeout=60
        )
        sessions += reply.sessions
        pages += 1
        token = reply.next_page_token
        if not token:
            return sessions, pages
        assert pages < 1000


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a fresh loop in another thread (tests here are synchronous)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def with_db(
    stack: StackInfo, work: Callable[[asyncpg.Connection], Coroutine[Any, Any, Any]]
) -> Any:
    async def go() -> Any:
        conn = await asyncpg.connect(stack.postgres_dsn)
        try:
            return await work(conn)
        finally:
            await conn.close()

    return run_async(go())


def queue_row(stack: StackInfo, session_id: str) -> dict[str, Any] | None:
    async def work(conn: asyncpg.Connection) -> dict[str, Any] | None:
        row = await conn.fetchrow(
            "SELECT state, note, process_count FROM improvement_queue WHERE session_id = $1",
            session_id,
        )
        return None if row is None else dict(row)

    result: dict[str, Any] | None = with_db(stack, work)
    return result


@pytest.fixture(scope="module")
def cs_items(client: Client) -> str:
    """This suite's items in the blue collection; returns the blue collection's id."""
    task = client.upsert_items(
        [
            {
                "object_id": object_id,
                "payload": {"suite": SUITE, "n": i},
                "parts": [{"vector": ITEM_VECTORS[object_id]}],
            }
            for i, object_id in enumerate(ITEM_IDS)
        ]
    )
    final = client.wait_for_task(task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    reply = search(client, ITEM_VECTORS[ITEM_IDS[0]], limit=N_ITEMS)
    assert sorted(r.object_id for r in reply.results) == sorted(ITEM_IDS)
    return reply.collection_id


# --- RegisterSession ------------------------------------------------------------------------------


def test_register_session_stores_and_returns_it(client: Client, cs_items: str) -> None:
    sid = rid("reg")
    before = datetime.now(UTC) - timedelta(seconds=5)
    message = session(sid, ITEM_IDS[:3], user_id="cs-user-reg", query_text="shoes", meta={"a": 1})
    message.sort.field = "n"
    message.sort.order = common_pb2.SORT_ORDER_DESC
    message.filter.CopyFrom(MINE)
    stored = register(client, message)

    assert stored.session_id == sid and stored.user_id == "cs-user-reg"
    assert stored.query_text == "shoes"
    assert [(r.object_id, r.rank) for r in stored.results] == [
        (o, i) for i, o in enumerate(ITEM_IDS[:3])
    ]
    assert stored.collection_id == cs_items
    assert stored.batch_id
    assert stored.HasField("create_time")
    created = stored.create_time.ToDatetime(tzinfo=UTC)
    assert before <= created <= datetime.now(UTC) + timedelta(seconds=5)
    assert json_format.MessageToDict(stored.meta) == {"a": 1}
    assert stored.filter == MINE and stored.sort == message.sort
    assert not stored.irrelevant and not stored.events
    assert get(client, sid) == stored


def test_register_session_keeps_a_given_create_time(client: Client, cs_items: str) -> None:
    sid = rid("reg-time")
    when = now() - timedelta(days=29)
    stored = register(client, session(sid, create_time=when))
    assert stored.create_time.ToDatetime(tzinfo=UTC) == when
    soon = now() + timedelta(minutes=4)
    assert register(client, session(rid("reg-soon"), create_time=soon)).create_time == ts(soon)


def test_registering_again_returns_the_first_registration(client: Client, cs_items: str) -> None:
    sid = rid("reg-again")
    first = register(client, session(sid, user_id="cs-user-again", meta={"k": "v"}))
    again = register(client, session(sid, user_id="cs-user-again", meta={"k": "v"}))
    assert again == first
    # Another create_time is not another session: still the first registration.
    later = register(
        client,
        session(
            sid, user_id="cs-user-again", meta={"k": "v"}, create_time=now() - timedelta(days=1)
        ),
    )
    assert later == first
    # The blue collection named explicitly is the same content as leaving it empty.
    explicit = session(sid, user_id="cs-user-again", meta={"k": "v"}, collection_id=cs_items)
    assert register(client, explicit) == first
    assert get(client, sid) == first


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda s: s.results.pop(), id="fewer-results"),
        pytest.param(lambda s: setattr(s.results[0], "rank", 7), id="other-rank"),
        pytest.param(lambda s: setattr(s, "user_id", "cs-user-other"), id="other-user"),
        pytest.param(lambda s: setattr(s, "query_text", "other"), id="other-query"),
        pytest.param(lambda s: s.meta.update({"k": "w"}), id="other-meta"),
        pytest.param(lambda s: s.filter.CopyFrom(NOBODY), id="other-filter"),
    ],
)
def test_registering_different_content_under_one_id_is_already_exists(
    client: Client, cs_items: str, change: Callable[[cs.Session], object]
) -> None:
    sid = rid("reg-conflict")
    original = session(sid, user_id="cs-user-conflict", meta={"k": "v"})
    first = register(client, original)
    other = cs.Session()
    other.CopyFrom(original)
    change(other)
    request = cs.RegisterSessionRequest(session=other)
    expect_error(
        lambda: client.clickstream.RegisterSession(request, timeout=60),
        ALREADY,
        "session.session_id",
    )
    assert get(client, sid) == first


# --- PushEvents, StreamEvents, GetSession ---------------------------------------------------------


def test_push_events_dedupes_and_get_session_lists_them_oldest_first(
    client: Client, cs_items: str
) -> None:
    sid = rid("push")
    register(client, session(sid, ITEM_IDS[:3], user_id="cs-user-push"))
    t0 = now() - timedelta(minutes=10)
    e_late = event(f"{sid}-late", sid, ITEM_IDS[2], "purchase", t0 + timedelta(minutes=3))
    e_early = event(f"{sid}-early", sid, ITEM_IDS[1], "click", t0, meta={"pos": 1})
    e_unshown = event(f"{sid}-unshown", sid, ITEM_IDS[9], "click", t0 + timedelta(minutes=1))
    assert push(client, e_late, e_early) == (2, 0)
    # Across calls, and within one call: one record per event_id.
    assert push(client, e_early, e_unshown, e_unshown) == (1, 2)
    # A duplicate id with other content is still a duplicate: the first record stays.
    changed = event(f"{sid}-early", sid, ITEM_IDS[0], "view", t0 + timedelta(minutes=5))
    assert push(client, changed) == (0, 1)
    # Unset event_time = now.
    e_now = event(f"{sid}-now", sid, ITEM_IDS[0], "view")
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert push(client, e_now) == (1, 0)

    got = get(client, sid)
    assert [e.event_id for e in got.events] == [
        f"{sid}-early",
        f"{sid}-unshown",
        f"{sid}-late",
        f"{sid}-now",
    ]
    by_id = {e.event_id: e for e in got.events}
    early = by_id[f"{sid}-early"]
    assert (early.session_id, early.object_id, early.event_type) == (sid, ITEM_IDS[1], "click")
    assert early.event_time == ts(t0)
    assert json_format.MessageToDict(early.meta) == {"pos": 1}
    assert [e.object_not_shown for e in got.events] == [False, True, False, False]
    assert (
        before
        <= by_id[f"{sid}-now"].event_time.ToDatetime(tzinfo=UTC)
        <= datetime.now(UTC) + timedelta(seconds=5)
    )


def test_duplicates_and_re_registration_change_nothing(client: Client, cs_items: str) -> None:
    sid = rid("idem")
    original = session(sid, ITEM_IDS[:3], user_id="cs-user-idem", query_text="q")
    register(client, original)
    events = [
        event(f"{sid}-e{i}", sid, ITEM_IDS[i], when=now() - timedelta(minutes=5 - i))
        for i in range(3)
    ]
    assert push(client, *events) == (3, 0)
    before = get(client, sid)

    assert push(client, *events) == (0, 3)
    assert stream(client, events[:2], events[2:]).duplicate_count == 3
    assert register(client, original).create_time == before.create_time

    assert get(client, sid) == before


def test_event_type_and_id_limits_accept_the_edges(client: Client, cs_items: str) -> None:
    sid = rid("edges")
    register(client, session(sid))
    long_id = f"{sid}-" + "e" * (128 - len(sid) - 1)
    assert len(long_id) == 128
    accepted = push(
        client,
        event(long_id, sid, event_type="x" * 64),
        event(f"{sid}-b", sid, event_type="add_to_cart"),
        event(f"{sid}-c", sid, event_type="a.b:c-D_9"),
        event(f"{sid}-d", sid, when=now() - timedelta(days=29)),
    )
    assert accepted == (4, 0)
    assert {e.event_type for e in get(client, sid).events} == {
        "x" * 64,
        "add_to_cart",
        "a.b:c-D_9",
        "click",
    }


def test_stream_events_counts_over_the_whole_stream(client: Client, cs_items: str) -> None:
    sid = rid("stream")
    register(client, session(sid, ITEM_IDS[:4], user_id="cs-user-stream"))
    t0 = now() - timedelta(minutes=30)
    messages = [
        [
            event(f"{sid}-{i}", sid, ITEM_IDS[i % 4], when=t0 + timedelta(seconds=i))
            for i in range(3)
        ],
        [
            event(f"{sid}-{i}", sid, ITEM_IDS[i % 4], when=t0 + timedelta(seconds=i))
            for i in range(2, 6)
        ],
        [event(f"{sid}-6", sid, ITEM_IDS[1], when=t0 + timedelta(seconds=6))] * 2,
    ]
    reply = stream(client, *messages)
    assert (reply.accepted_count, reply.duplicate_count) == (7, 2)
    assert [e.event_id for e in get(client, sid).events] == [f"{sid}-{i}" for i in range(7)]
    # A whole stream again: all duplicates.
    again = stream(client, *messages)
    assert (again.accepted_count, again.duplicate_count) == (0, 9)


@pytest.mark.parametrize(
    ("bad", "code", "field"),
    [
        pytest.param(
            lambda sid: event(f"{sid}-bad", sid, event_type="two words"),
            BAD,
            "events[0].event_type",
            id="bad-event-type",
        ),
        pytest.param(
            lambda sid: event(f"{sid}-bad", "cs-never-registered"),
            NOT_FOUND,
            "events[0].session_id",
            id="unknown-session",
        ),
        pytest.param(lambda sid: None, BAD, "events", id="empty-message"),
    ],
)
def test_a_bad_message_mid_stream_fails_and_keeps_what_came_before(
    client: Client,
    cs_items: str,
    bad: Callable[[str], cs.SessionEvent | None],
    code: grpc.StatusCode,
    field: str,
) -> None:
    sid = rid("stream-bad")
    register(client, session(sid))
    t0 = now() - timedelta(minutes=5)
    first = [
        event(f"{sid}-a", sid, when=t0),
        event(f"{sid}-b", sid, when=t0 + timedelta(seconds=1)),
    ]
    bad_event = bad(sid)
    middle = [] if bad_event is None else [bad_event]
    last = [event(f"{sid}-c", sid, when=t0 + timedelta(seconds=2))]
    expect_error(lambda: stream(client, first, middle, last), code, field)
    assert [e.event_id for e in get(client, sid).events] == [f"{sid}-a", f"{sid}-b"]
    # Resending the whole stream once fixed is safe: what was recorded counts as duplicates.
    reply = stream(client, first, last)
    assert (reply.accepted_count, reply.duplicate_count) == (1, 2)


# --- MarkSessionIrrelevant and improvement --------------------------------------------------------


def _clicked_session(client: Client, user_id: str, query: list[float]) -> tuple[str, str]:
    """A search session of ``user_id`` with a click on its third result."""
    reply = search(client, query, limit=5, user_id=user_id, create_session=True)
    assert reply.session_id and len(reply.results) == 5
    clicked = reply.results[2].object_id
    sid = reply.session_id
    assert push(client, event(f"{sid}-click", sid, clicked)) == (1, 0)
    return sid, clicked


def _personal(client: Client, user_id: str, query: list[float]) -> list[str]:
    """Object ids of the results served from ``user_id``'s own copies."""
    reply = search(client, query, limit=N_ITEMS, user_id=user_id)
    return [r.object_id for r in reply.results if r.user_id]


def test_mark_session_irrelevant(client: Client, cs_items: str) -> None:
    sid = rid("irr")
    stored = register(client, session(sid, user_id="cs-user-irr"))
    push(client, event(f"{sid}-e", sid))
    reply = client.clickstream.MarkSessionIrrelevant(
        cs.MarkSessionIrrelevantRequest(session_id=sid), timeout=60
    ).session
    assert reply.irrelevant
    got = get(client, sid)
    assert got.irrelevant and len(got.events) == 1
    expected = cs.Session()
    expected.CopyFrom(stored)
    expected.irrelevant = True
    got.ClearField("events")
    assert got == expected
    # Marking twice is fine.
    assert client.clickstream.MarkSessionIrrelevant(
        cs.MarkSessionIrrelevantRequest(session_id=sid), timeout=60
    ).session.irrelevant


def test_an_irrelevant_session_is_never_queued(
    client: Client, cs_items: str, stack: StackInfo
) -> None:
    user = rid("user-irr-q")
    query = unit(9200)
    sid, _ = _clicked_session(client, user, query)
    client.clickstream.MarkSessionIrrelevant(cs.MarkSessionIrrelevantRequest(session_id=sid))
    reply = client.clickstream.UseSessionsForImprovement(
        cs.UseSessionsForImprovementRequest(session_ids=[sid, "cs-unknown-session"]), timeout=60
    )
    assert reply.queued_count == 0
    assert reply.task.kind == common_pb2.TASK_KIND_IMPROVEMENT
    done = client.wait_for_task(reply.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert queue_row(stack, sid) is None
    assert _personal(client, user, query) == []


def test_a_session_queued_then_marked_irrelevant_is_skipped(
    client: Client, cs_items: str, stack: StackInfo
) -> None:
    query = unit(9300)
    skipped_user, control_user = rid("user-irr-late"), rid("user-control")
    sid, _ = _clicked_session(client, skipped_user, query)
    control, control_clicked = _clicked_session(client, control_user, query)
    # Queued straight in the database, so no improvement task is under way when it is marked.
    assert with_db(stack, lambda conn: store.queue_for_improvement(conn, [sid])) == 1
    client.clickstream.MarkSessionIrrelevant(cs.MarkSessionIrrelevantRequest(session_id=sid))
    row = queue_row(stack, sid)
    assert row is not None and row["state"] == "skipped" and "irrelevant" in row["note"]

    # An improvement run (queued for another user's session) passes it by.
    reply = client.clickstream.UseSessionsForImprovement(
        cs.UseSessionsForImprovementRequest(session_ids=[control, sid]), timeout=60
    )
    assert reply.queued_count == 1
    done = client.wait_for_task(reply.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error

    assert _personal(client, skipped_user, query) == []
    assert control_clicked in _personal(client, control_user, query)
    row = queue_row(stack, sid)
    assert row is not None and (row["state"], row["process_count"]) == ("skipped", 0)
    assert queue_row(stack, control) == {"state": "done", "note": "", "process_count": 1}


# --- ListSessions ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listed(client: Client, cs_items: str) -> tuple[str, list[cs.Session], list[datetime]]:
    """Eight sessions of one user, an hour apart ten days ago (two share a create_time)."""
    user = rid("user-list")
    base = now() - timedelta(days=10)
    times = [base + timedelta(hours=i) for i in range(7)]
    stored = [
        register(client, session(f"{user}-s{i}", user_id=user, create_time=t))
        for i, t in enumerate(times)
    ]
    stored.append(register(client, session(f"{user}-s3b", user_id=user, create_time=times[3])))
    push(client, event(f"{user}-s0-e", f"{user}-s0"))
    return user, stored, times


def _order(sessions: list[cs.Session]) -> list[str]:
    ranked = sorted(
        sessions, key=lambda s: (s.create_time.ToDatetime(), s.session_id), reverse=True
    )
    return [s.session_id for s in ranked]


def test_list_sessions_newest_first_paged_without_dups_or_gaps(
    client: Client, listed: tuple[str, list[cs.Session], list[datetime]]
) -> None:
    user, stored, _ = listed
    for page_size in (1, 3, 8, 0):
        sessions, pages = list_all(client, user_id=user, page_size=page_size)
        assert [s.session_id for s in sessions] == _order(stored)
        assert pages == {1: 8, 3: 3, 8: 1, 0: 1}[page_size]
    by_id = {s.session_id: s for s in stored}
    sessions, _ = list_all(client, user_id=user, page_size=3)
    for s in sessions:  # as stored, without events
        assert s == by_id[s.session_id] and not s.events


def test_list_sessions_filters_by_time_range(
    client: Client, listed: tuple[str, list[cs.Session], list[datetime]]
) -> None:
    user, stored, times = listed

    def window(start: datetime | None, end: datetime | None) -> list[str]:
        kw: dict[str, Any] = {"user_id": user, "page_size": 2}
        if start is not None:
            kw["start_time"] = ts(start)
        if end is not None:
            kw["end_time"] = ts(end)
        return [s.session_id for s in list_all(client, **kw)[0]]

    def expected(keep: Callable[[datetime], bool]) -> list[str]:
        return _order([s for s in stored if keep(s.create_time.ToDatetime(tzinfo=UTC))])

    # start inclusive, end exclusive
    assert window(times[2], times[5]) == expected(lambda t: times[2] <= t < times[5])
    assert len(window(times[2], times[5])) == 4
    assert window(times[3], None) == expected(lambda t: t >= times[3])
    assert window(None, times[1]) == [f"{user}-s0"]
    assert window(times[6] + timedelta(seconds=1), None) == []


def test_list_sessions_filters_by_batch(
    client: Client, listed: tuple[str, list[cs.Session], list[datetime]]
) -> None:
    user, stored, _ = listed
    batches = {s.batch_id for s in stored}
    for batch_id in batches:
        in_batch, _ = list_all(client, batch_id=batch_id, page_size=500)
        assert in_batch and {s.batch_id for s in in_batch} == {batch_id}
        ids = {s.session_id for s in in_batch}
        assert {s.session_id for s in stored if s.batch_id == batch_id} <= ids
        mine, _ = list_all(client, batch_id=batch_id, user_id=user)
        assert [s.session_id for s in mine] == _order([s for s in stored if s.batch_id == batch_id])
    assert list_all(client, batch_id="cs-no-such-batch")[0] == []
    assert list_all(client, user_id="cs-no-such-user")[0] == []


def test_list_sessions_without_filters_is_newest_first(
    client: Client, listed: tuple[str, list[cs.Session], list[datetime]]
) -> None:
    _, stored, _ = listed
    sessions, _ = list_all(client, page_size=200)
    ids = [s.session_id for s in sessions]
    assert ids == _order(sessions)
    assert len(set(ids)) == len(ids)
    assert {s.session_id for s in stored} <= set(ids)


# --- Search with create_session -------------------------------------------------------------------


def test_search_with_create_session_records_what_was_shown(client: Client, cs_items: str) -> None:
    user = rid("user-search")
    query = unit(9400)
    reply = search(client, query, limit=5, user_id=user, create_session=True)
    assert reply.session_id and len(reply.results) == 5
    got = get(client, reply.session_id)
    assert [(r.object_id, r.rank) for r in got.results] == [
        (r.object_id, i) for i, r in enumerate(reply.results)
    ]
    assert got.user_id == user and got.query_text == ""
    assert got.collection_id == reply.collection_id == cs_items
    assert got.filter == MINE and got.batch_id and not got.events and not got.irrelevant
    # Without create_session: no session.
    assert search(client, query, limit=5, user_id=user).session_id == ""


def test_search_by_text_with_create_session_keeps_the_query_text(
    client: Client, cs_items: str
) -> None:
    text = "cs probe: blood pressure and heart disease"
    request = search_pb2.SearchRequest(query_text=text, limit=3, filter=MINE, create_session=True)
    reply = client.search.Search(request, timeout=120)
    assert reply.session_id and len(reply.results) == 3
    got = get(client, reply.session_id)
    assert got.query_text == text and got.user_id == ""
    assert [r.object_id for r in got.results] == [r.object_id for r in reply.results]
    assert [r.rank for r in got.results] == [0, 1, 2]


def test_search_with_create_session_and_no_results_records_nothing(
    client: Client, cs_items: str
) -> None:
    user = rid("user-empty")
    reply = search(client, unit(9500), limit=5, filter=NOBODY, user_id=user, create_session=True)
    assert list(reply.results) == [] and reply.session_id == ""
    assert list_all(client, user_id=user)[0] == []


def test_search_session_of_a_later_page_ranks_across_pages(client: Client, cs_items: str) -> None:
    query = unit(9600)
    first = search(client, query, limit=3)
    second = search(client, query, limit=3, page_token=first.next_page_token, create_session=True)
    assert second.session_id and len(second.results) == 3
    got = get(client, second.session_id)
    assert [r.rank for r in got.results] == [3, 4, 5]


# --- bad input ------------------------------------------------------------------------------------

LONG_ID = "cs-" + "x" * 126  # 129 characters
LONG_OBJECT = "cs-" + "o" * 254  # 257 characters
BIG_META = {"blob": "m" * (16 * 1024)}


def _edit(**changes: Any) -> Callable[[cs.Session], None]:
    def apply(message: cs.Session) -> None:
        for name, value in changes.items():
            setattr(message, name, value)

    return apply


def _results(*pairs: tuple[str, int]) -> Callable[[cs.Session], None]:
    def apply(message: cs.Session) -> None:
        del message.results[:]
        message.results.extend(cs.ShownResult(object_id=o, rank=r) for o, r in pairs)

    return apply


def _created(delta: timedelta) -> Callable[[cs.Session], None]:
    return lambda m: m.create_time.CopyFrom(ts(datetime.now(UTC) + delta))


def _meta(data: dict[str, Any]) -> Callable[[cs.Session], None]:
    return lambda m: m.meta.update(data)


REGISTER_CASES = [
    pytest.param(_edit(session_id=""), BAD, "session.session_id", id="empty-id"),
    pytest.param(_edit(session_id=LONG_ID), BAD, "session.session_id", id="id-129"),
    pytest.param(_edit(session_id="cs-a\x00b"), BAD, "session.session_id", id="id-nul"),
    pytest.param(_edit(user_id="u" * 257), BAD, "session.user_id", id="user-257"),
    pytest.param(_edit(user_id="u\x00"), BAD, "session.user_id", id="user-nul"),
    pytest.param(_edit(query_text="q" * 4097), BAD, "session.query_text", id="query-4097"),
    pytest.param(_edit(query_text="q\x00"), BAD, "session.query_text", id="query-nul"),
    pytest.param(_results(), BAD, "session.results", id="no-results"),
    pytest.param(
        _results(*[(f"cs-o{i}", i) for i in range(1001)]), BAD, "session.results", id="results-1001"
    ),
    pytest.param(
        _results(("cs-a", 0), ("", 1)), BAD, "session.results[1].object_id", id="empty-object"
    ),
    pytest.param(
        _results(("cs-a", 0), (LONG_OBJECT, 1)),
        BAD,
        "session.results[1].object_id",
        id="object-257",
    ),
    pytest.param(
        _results(("cs-a", 0), ("cs-\x00", 1)), BAD, "session.results[1].object_id", id="object-nul"
    ),
    pytest.param(
        _results(("cs-a", 0), ("cs-b", -1)), BAD, "session.results[1].rank", id="negative-rank"
    ),
    pytest.param(
        _results(("cs-a", 2), ("cs-b", 2)), BAD, "session.results[1].rank", id="repeated-rank"
    ),
    pytest.param(
        _created(-timedelta(days=30, minutes=1)), BAD, "session.create_time", id="created-30d-ago"
    ),
    pytest.param(
        _created(timedelta(minutes=6)), BAD, "session.create_time", id="created-in-6-minutes"
    ),
    pytest.param(_meta(BIG_META), BAD, "session.meta", id="meta-16k"),
    pytest.param(_meta({"k": "a\x00"}), BAD, "session.meta", id="meta-nul-value"),
    pytest.param(_meta({"a\x00": 1}), BAD, "session.meta", id="meta-nul-key"),
    pytest.param(_meta({"k": float("nan")}), BAD, "session.meta", id="meta-nan"),
    pytest.param(
        _edit(collection_id="cs-no-such-collection"),
        NOT_FOUND,
        "session.collection_id",
        id="unknown-collection",
    ),
    pytest.param(_edit(collection_id="c" * 129), BAD, "session.collection_id", id="collection-129"),
]


@pytest.mark.parametrize(("change", "code", "field"), REGISTER_CASES)
def test_bad_register_session_is_refused_naming_the_field(
    client: Client,
    cs_items: str,
    change: Callable[[cs.Session], None],
    code: grpc.StatusCode,
    field: str,
) -> None:
    message = session(rid("bad-reg"), user_id="cs-user-bad")
    change(message)
    request = cs.RegisterSessionRequest(session=message)
    expect_error(lambda: client.clickstream.RegisterSession(request, timeout=60), code, field)
    if message.session_id and len(message.session_id) <= 128 and "\x00" not in message.session_id:
        expect_error(lambda: get(client, message.session_id), NOT_FOUND, "session_id")


def test_register_session_without_a_session_is_refused(client: Client, cs_items: str) -> None:
    expect_error(
        lambda: client.clickstream.RegisterSession(cs.RegisterSessionRequest(), timeout=60),
        BAD,
        "session",
    )


@pytest.fixture(scope="module")
def known_session(client: Client, cs_items: str) -> str:
    sid = rid("known")
    register(client, session(sid))
    return sid


def _ev(**changes: Any) -> Callable[[str], list[cs.SessionEvent]]:
    def build(sid: str) -> list[cs.SessionEvent]:
        message = event(f"{sid}-bad-{uuid.uuid4().hex[:6]}", sid)
        for name, value in changes.items():
            if name == "when":
                message.event_time.CopyFrom(ts(datetime.now(UTC) + value))
            elif name == "meta":
                message.meta.update(value)
            else:
                setattr(message, name, value)
        return [message]

    return build


def _second(
    build: Callable[[str], list[cs.SessionEvent]],
) -> Callable[[str], list[cs.SessionEvent]]:
    return lambda sid: [event(f"{sid}-ok-{uuid.uuid4().hex[:6]}", sid), *build(sid)]


EVENT_CASES = [
    pytest.param(lambda sid: [], BAD, "events", id="no-events"),
    pytest.param(
        lambda sid: [event(f"{sid}-many-{i}", sid) for i in range(1001)], BAD, "events", id="1001"
    ),
    pytest.param(_ev(event_id=""), BAD, "events[0].event_id", id="empty-event-id"),
    pytest.param(_ev(event_id=LONG_ID), BAD, "events[0].event_id", id="event-id-129"),
    pytest.param(_ev(event_id="cs-\x00"), BAD, "events[0].event_id", id="event-id-nul"),
    pytest.param(_ev(session_id=""), BAD, "events[0].session_id", id="empty-session-id"),
    pytest.param(_ev(session_id=LONG_ID), BAD, "events[0].session_id", id="session-id-129"),
    pytest.param(_ev(object_id=""), BAD, "events[0].object_id", id="empty-object"),
    pytest.param(_ev(object_id=LONG_OBJECT), BAD, "events[0].object_id", id="object-257"),
    pytest.param(_ev(event_type=""), BAD, "events[0].event_type", id="empty-type"),
    pytest.param(_ev(event_type="add to cart"), BAD, "events[0].event_type", id="type-space"),
    pytest.param(_ev(event_type="x" * 65), BAD, "events[0].event_type", id="type-65"),
    pytest.param(_ev(event_type="click\x00"), BAD, "events[0].event_type", id="type-nul"),
    pytest.param(
        _ev(when=-timedelta(days=30, minutes=1)), BAD, "events[0].event_time", id="time-30d-ago"
    ),
    pytest.param(_ev(when=timedelta(minutes=6)), BAD, "events[0].event_time", id="time-future"),
    pytest.param(_ev(meta=BIG_META), BAD, "events[0].meta", id="meta-16k"),
    pytest.param(_ev(meta={"k": "\x00"}), BAD, "events[0].meta", id="meta-nul"),
    pytest.param(
        _second(_ev(event_type="bad type")), BAD, "events[1].event_type", id="second-bad-type"
    ),
    pytest.param(
        _second(_ev(session_id="cs-never-registered")),
        NOT_FOUND,
        "events[1].session_id",
        id="unknown-session",
    ),
]


@pytest.mark.parametrize("rpc", ["PushEvents", "StreamEvents"])
@pytest.mark.parametrize(("build", "code", "field"), EVENT_CASES)
def test_bad_events_are_refused_naming_the_field(
    client: Client,
    known_session: str,
    rpc: str,
    build: Callable[[str], list[cs.SessionEvent]],
    code: grpc.StatusCode,
    field: str,
) -> None:
    events = build(known_session)
    send: Callable[[], object] = (
        (lambda: client.clickstream.PushEvents(cs.PushEventsRequest(events=events), timeout=60))
        if rpc == "PushEvents"
        else (lambda: stream(client, events))
    )
    expect_error(send, code, field)
    # Nothing of a refused request is recorded.
    assert get(client, known_session).events == []


ID_CASES = [
    pytest.param("", BAD, id="empty"),
    pytest.param(LONG_ID, BAD, id="129"),
    pytest.param("cs-\x00", BAD, id="nul"),
    pytest.param("cs-never-registered", NOT_FOUND, id="unknown"),
]


@pytest.mark.parametrize(("session_id", "code"), ID_CASES)
def test_get_session_bad_id(client: Client, session_id: str, code: grpc.StatusCode) -> None:
    request = cs.GetSessionRequest(session_id=session_id)
    expect_error(lambda: client.clickstream.GetSession(request, timeout=60), code, "session_id")


@pytest.mark.parametrize(("session_id", "code"), ID_CASES)
def test_mark_session_irrelevant_bad_id(
    client: Client, session_id: str, code: grpc.StatusCode
) -> None:
    request = cs.MarkSessionIrrelevantRequest(session_id=session_id)
    expect_error(
        lambda: client.clickstream.MarkSessionIrrelevant(request, timeout=60), code, "session_id"
    )


def _window(start: datetime, end: datetime, **kw: Any) -> cs.ListSessionsRequest:
    return cs.ListSessionsRequest(start_time=ts(start), end_time=ts(end), **kw)


T = datetime(2025, 1, 1, tzinfo=UTC)
LIST_CASES = [
    pytest.param(_window(T, T), "end_time", id="end-equals-start"),
    pytest.param(_window(T, T - timedelta(seconds=1)), "end_time", id="end-before-start"),
    pytest.param(cs.ListSessionsRequest(page_token="garbage!!"), "page_token", id="garbage-token"),
    pytest.param(cs.ListSessionsRequest(page_token="e30"), "page_token", id="token-empty-json"),
    pytest.param(cs.ListSessionsRequest(page_size=-1), "page_size", id="negative-page-size"),
    pytest.param(cs.ListSessionsRequest(user_id="u" * 257), "user_id", id="user-257"),
    pytest.param(cs.ListSessionsRequest(batch_id=LONG_ID), "batch_id", id="batch-129"),
]


@pytest.mark.parametrize(("request_message", "field"), LIST_CASES)
def test_bad_list_sessions_is_refused_naming_the_field(
    client: Client, request_message: cs.ListSessionsRequest, field: str
) -> None:
    expect_error(lambda: client.clickstream.ListSessions(request_message, timeout=60), BAD, field)


def test_list_sessions_token_from_other_filters_is_refused(
    client: Client, listed: tuple[str, list[cs.Session], list[datetime]]
) -> None:
    user, _, times = listed
    first = client.clickstream.ListSessions(cs.ListSessionsRequest(user_id=user, page_size=2))
    assert first.next_page_token
    token = first.next_page_token
    for other in [
        cs.ListSessionsRequest(page_size=2, page_token=token),
        cs.ListSessionsRequest(user_id=user + "x", page_size=2, page_token=token),
        cs.ListSessionsRequest(user_id=user, start_time=ts(times[0]), page_token=token),
        cs.ListSessionsRequest(user_id=user, batch_id="cs-b", page_token=token),
    ]:
        expect_error(
            lambda o=other: client.clickstream.ListSessions(o, timeout=60), BAD, "page_token"
        )
    # The same filters with another page size continue where the token points.
    rest = client.clickstream.ListSessions(
        cs.ListSessionsRequest(user_id=user, page_size=100, page_token=token)
    )
    assert len(first.sessions) + len(rest.sessions) == 8


@pytest.mark.parametrize(
    ("ids", "field"),
    [
        pytest.param([], "session_ids", id="empty"),
        pytest.param([f"cs-s{i}" for i in range(1001)], "session_ids", id="1001"),
        pytest.param(["cs-ok", ""], "session_ids[1]", id="empty-id"),
        pytest.param(["cs-\x00"], "session_ids[0]", id="nul-id"),
    ],
)
def test_bad_use_sessions_for_improvement_is_refused(
    client: Client, ids: list[str], field: str
) -> None:
    request = cs.UseSessionsForImprovementRequest(session_ids=ids)
    expect_error(
        lambda: client.clickstream.UseSessionsForImprovement(request, timeout=60), BAD, field
    )


def test_every_clickstream_rpc_is_covered() -> None:
    methods = {m.name for m in cs.DESCRIPTOR.services_by_name["ClickstreamService"].methods}
    assert methods == {
        "RegisterSession",
        "PushEvents",
        "StreamEvents",
        "MarkSessionIrrelevant",
        "GetSession",
        "ListSessions",
        "UseSessionsForImprovement",
    }


# --- event ids per session; signed page tokens (issue 13, findings 3 and 4) -----------------------


def test_one_event_id_in_two_sessions_is_two_events(client: Client, cs_items: str) -> None:
    first, second = rid("twin-a"), rid("twin-b")
    register(client, session(first))
    register(client, session(second))
    shared = rid("click")  # two users' clients happen to pick the same event id
    assert push(client, event(shared, first, ITEM_IDS[0])) == (1, 0)
    assert push(client, event(shared, second, ITEM_IDS[1])) == (1, 0)
    assert stream(client, [event(shared, first), event(shared, second)]).duplicate_count == 2
    assert [(e.event_id, e.object_id) for e in get(client, first).events] == [(shared, ITEM_IDS[0])]
    assert [(e.event_id, e.object_id) for e in get(client, second).events] == [
        (shared, ITEM_IDS[1])
    ]


def test_one_event_twice_in_a_request_keeps_the_first_in_request_order(
    client: Client, cs_items: str
) -> None:
    sid = rid("twice")
    register(client, session(sid))
    first = event(f"{sid}-e", sid, ITEM_IDS[2], "purchase")
    again = event(f"{sid}-e", sid, ITEM_IDS[0], "click")
    assert push(client, first, again) == (1, 1)
    streamed = stream(client, [again, first])
    assert (streamed.accepted_count, streamed.duplicate_count) == (0, 2)
    (kept,) = get(client, sid).events
    assert (kept.object_id, kept.event_type) == (ITEM_IDS[2], "purchase")


def _token_parts(token: str) -> tuple[dict[str, Any], str]:
    body, _, mac = token.rpartition(".")
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))), mac


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _with_cursor(token: str, **changes: Any) -> tuple[dict[str, Any], str]:
    """The token's body with cursor fields changed, and its original mac."""
    body, mac = _token_parts(token)
    body["c"].update(changes)
    return body, mac


def _resigned(stack: StackInfo, token: str, **changes: Any) -> str:
    """The token with cursor fields changed, signed with the stack's own key (read from its
    database): what only someone holding the key could make."""
    body, _ = _with_cursor(token, **changes)
    key = with_db(stack, lambda conn: conn.fetchval("SELECT secret FROM page_token_key"))
    raw = _b64(json.dumps(body, separators=(",", ":")).encode())
    return f"{raw}.{_b64(hmac.new(bytes(key), raw.encode(), hashlib.sha256).digest())}"


def test_forged_and_tampered_list_sessions_tokens_are_invalid_argument(
    client: Client, listed: tuple[str, list[cs.Session], list[datetime]]
) -> None:
    user = listed[0]
    reply = client.clickstream.ListSessions(
        cs.ListSessionsRequest(user_id=user, page_size=2), timeout=60
    )
    assert reply.next_page_token
    body, mac = _with_cursor(reply.next_page_token, time="not a time", id=["x"])
    forged_body = _b64(json.dumps(body).encode())
    for token in (
        forged_body,  # the old unsigned format, which anyone could write
        f"{forged_body}.{mac}",  # a real token's mac on an altered cursor
        f"{forged_body}.{_b64(b'0' * 32)}",
        reply.next_page_token[:-3],
    ):
        expect_error(
            lambda t=token: client.clickstream.ListSessions(
                cs.ListSessionsRequest(user_id=user, page_size=2, page_token=t), timeout=60
            ),
            BAD,
            "page_token",
        )


def test_a_search_token_past_the_last_rank_records_nothing_and_listings_still_work(
    client: Client, stack: StackInfo, cs_items: str
) -> None:
    """The attack of finding 4: a later page's token with a huge rank plus create_session once
    stored a session GetSession and ListSessions then failed on for everyone."""
    user = rid("user-rank")
    query = unit(9700)
    first = search(client, query, limit=2, user_id=user)
    assert first.next_page_token
    body, mac = _with_cursor(first.next_page_token, n=2**40)
    tampered = f"{_b64(json.dumps(body, separators=(',', ':')).encode())}.{mac}"
    for token in (
        tampered,  # not signed by the server: refused before anything else
        _resigned(stack, first.next_page_token, n=2**40),  # signed, but past int32
        _resigned(stack, first.next_page_token, n=2**31 - 1),  # the page's 2nd rank would be
    ):
        expect_error(
            lambda t=token: search(
                client, query, limit=2, user_id=user, page_token=t, create_session=True
            ),
            BAD,
            "page_token",
        )
    assert list_all(client, user_id=user)[0] == []
    # A signed offset that leaves room for the page is served and recorded at those ranks.
    last = 2**31 - 1
    served = search(
        client,
        query,
        limit=1,
        user_id=user,
        page_token=_resigned(stack, first.next_page_token, n=last),
        create_session=True,
    )
    assert served.session_id
    assert [r.rank for r in get(client, served.session_id).results] == [last]
    listed, _ = list_all(client, user_id=user)
    assert [s.session_id for s in listed] == [served.session_id]
    assert list_all(client, page_size=1000)[0]  # every caller's listing still answers
