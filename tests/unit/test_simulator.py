"""ClickSimulator against a tiny in-process gRPC server with fake Search / PushEvents.

The fakes only script what the server would answer; under test is the simulator code around the
generated stubs: the requests it builds, the clicks it sends, batching and idempotent event ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import (
    clickstream_pb2,
    clickstream_pb2_grpc,
    common_pb2,
    search_pb2,
    search_pb2_grpc,
)
from es_core.evaluation.click_model import CascadeClickModel
from es_harness.click_simulator import (
    ClickSimulator,
    click_event_id,
    rankings_for,
    session_rng,
)

RANKING = [f"d{i}" for i in range(10)]
QUERIES = {"q2": "blue boots", "q1": "red shoes"}
QRELS = {"q1": {"d0": 2, "d3": 1}, "q2": {"d1": 1}}
USERS = ["u2", "u1"]
# Clicks on almost everything, so that batches fill up.
MODEL = CascadeClickModel(eta=0.3, click_probability={0: 0.5, 1: 0.9, 2: 1.0}, stop_after_click=0.1)


class FakeSearch(search_pb2_grpc.SearchServiceServicer):
    def __init__(self) -> None:
        self.requests: list[search_pb2.SearchRequest] = []
        self.give_sessions = True  # False: behave like a server that ignores create_session

    def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:
        self.requests.append(request)
        # Deterministic per (user, query), like a replayed session; empty unless asked for.
        wanted = request.create_session and self.give_sessions
        session_id = f"s/{request.user_id}/{request.query_text}" if wanted else ""
        return search_pb2.SearchResponse(
            results=[common_pb2.SearchResult(object_id=d) for d in RANKING[: request.limit]],
            session_id=session_id,
            collection_id=request.collection_id or "blue-1",
        )


class FakeClickstream(clickstream_pb2_grpc.ClickstreamServiceServicer):
    def __init__(self) -> None:
        self.batches: list[list[clickstream_pb2.SessionEvent]] = []
        self.seen: set[str] = set()

    def PushEvents(self, request: Any, context: Any) -> clickstream_pb2.PushEventsResponse:
        self.batches.append(list(request.events))
        new = {e.event_id for e in request.events} - self.seen
        self.seen |= new
        return clickstream_pb2.PushEventsResponse(
            accepted_count=len(new), duplicate_count=len(request.events) - len(new)
        )


Server = tuple[Client, FakeSearch, FakeClickstream]


@pytest.fixture
def server() -> Iterator[Server]:
    # Only the RPCs the simulator calls are implemented; the rest answer UNIMPLEMENTED.
    search, clickstream = FakeSearch(), FakeClickstream()  # type: ignore[abstract]
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    search_pb2_grpc.add_SearchServiceServicer_to_server(search, grpc_server)
    clickstream_pb2_grpc.add_ClickstreamServiceServicer_to_server(clickstream, grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    with Client(f"127.0.0.1:{port}") as client:
        yield client, search, clickstream
    grpc_server.stop(grace=None)


def sent(clickstream: FakeClickstream) -> list[clickstream_pb2.SessionEvent]:
    return [event for batch in clickstream.batches for event in batch]


def test_run_sends_the_click_models_draws(server: Server) -> None:
    client, search, clickstream = server
    report = ClickSimulator(client, MODEL, seed=11, batch_size=3).run(
        QUERIES, QRELS, USERS, limit=8, collection_id="c1"
    )

    order = [(u, q) for u in USERS for q in ("q1", "q2")]
    assert [(r.user_id, r.query_text) for r in search.requests] == [
        (u, QUERIES[q]) for u, q in order
    ]
    assert all(r.create_session and r.limit == 8 for r in search.requests)
    assert all(r.collection_id == "c1" for r in search.requests)

    expected: list[tuple[str, str, str, str]] = []
    clicks_per_query = {"q1": 0, "q2": 0}
    for user, query_id in order:
        session_id = f"s/{user}/{QUERIES[query_id]}"
        ranks = MODEL.simulate(RANKING[:8], QRELS[query_id], session_rng(11, user, query_id))
        clicks_per_query[query_id] += len(ranks)
        expected += [
            (click_event_id(session_id, r), session_id, RANKING[r], "click") for r in ranks
        ]
    assert len(expected) > 3, "the scenario must need several batches"
    assert [(e.event_id, e.session_id, e.object_id, e.event_type) for e in sent(clickstream)] == (
        expected
    )
    assert all(1 <= len(batch) <= 3 for batch in clickstream.batches)
    assert len(clickstream.batches) == -(-len(expected) // 3)

    assert report.session_ids == [f"s/{u}/{QUERIES[q]}" for u, q in order]
    assert report.events_sent == report.accepted_count == len(expected)
    assert report.duplicate_count == 0
    assert report.clicks_per_query == clicks_per_query
    assert report.rankings == {key: RANKING[:8] for key in order}


def test_running_twice_sends_identical_event_ids(server: Server) -> None:
    client, _, clickstream = server
    first = ClickSimulator(client, MODEL, seed=5).run(QUERIES, QRELS, USERS)
    first_events = sent(clickstream)
    clickstream.batches.clear()
    second = ClickSimulator(client, MODEL, seed=5).run(QUERIES, QRELS, USERS)
    assert sent(clickstream) == first_events
    assert len(clickstream.batches) == 1  # fewer than 1000 events: one request
    assert second.duplicate_count == second.events_sent == first.accepted_count > 0
    assert second.accepted_count == 0

    clickstream.batches.clear()
    ClickSimulator(client, MODEL, seed=6).run(QUERIES, QRELS, USERS)
    assert sent(clickstream) != first_events


def test_rankings_for_searches_without_sessions(server: Server) -> None:
    client, search, clickstream = server
    assert rankings_for(client, QUERIES, user_id="u1", limit=3) == {
        "q1": RANKING[:3],
        "q2": RANKING[:3],
    }
    assert not any(r.create_session for r in search.requests)
    assert all(r.user_id == "u1" for r in search.requests)
    assert clickstream.batches == []


def test_a_search_without_session_id_is_an_error(server: Server) -> None:
    client, search, _ = server
    search.give_sessions = False
    with pytest.raises(RuntimeError, match="no session_id"):
        ClickSimulator(client, MODEL, seed=1).run(QUERIES, QRELS, USERS)


def test_event_ids_are_short_and_stable() -> None:
    event_id = click_event_id("x" * 128, 999)
    assert len(event_id) == 36 and event_id == click_event_id("x" * 128, 999)
    assert click_event_id("s", 1) != click_event_id("s", 2) != click_event_id("t", 2)


@pytest.mark.parametrize("batch_size", [0, 1001])
def test_batch_size_is_bounded(batch_size: int) -> None:
    with pytest.raises(ValueError):
        ClickSimulator(Client("127.0.0.1:1"), MODEL, seed=0, batch_size=batch_size)
