"""Clicks make the next search better for the user who clicked, and for nobody else."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2, common_pb2, search_pb2
from es_harness.beir import Dataset

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def _search(
    client: Client, text: str, user_id: str, *, session: bool = False
) -> search_pb2.SearchResponse:
    return client.search.Search(
        search_pb2.SearchRequest(query_text=text, limit=10, user_id=user_id, create_session=session)
    )


def _ranking(reply: search_pb2.SearchResponse) -> list[tuple[str, float]]:
    return [(r.object_id, round(r.distance, 6)) for r in reply.results]


def _first_claim(
    client: Client,
    claims: dict[str, str],
    pick: Callable[[str, list[str]], T | None],
) -> tuple[str, T] | None:
    """The first claim whose anonymous top 10 ``pick`` accepts, with what it picked."""
    for query_id, claim in claims.items():
        picked = pick(query_id, [r.object_id for r in _search(client, claim, "").results])
        if picked is not None:
            return claim, picked
    return None


def _click_and_improve(client: Client, session: search_pb2.SearchResponse, object_id: str) -> None:
    """One click on ``object_id`` in the session, then the session improved (task waited for)."""
    assert session.session_id
    pushed = client.clickstream.PushEvents(
        clickstream_pb2.PushEventsRequest(
            events=[
                clickstream_pb2.SessionEvent(
                    event_id=f"{session.session_id}-click",
                    session_id=session.session_id,
                    object_id=object_id,
                    event_type="click",
                )
            ]
        )
    )
    assert (pushed.accepted_count, pushed.duplicate_count) == (1, 0)
    queued = client.clickstream.UseSessionsForImprovement(
        clickstream_pb2.UseSessionsForImprovementRequest(session_ids=[session.session_id])
    )
    assert queued.queued_count == 1
    done = client.wait_for_task(queued.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert done.result["improved_sessions"] >= 1


def test_a_click_lifts_the_item_for_that_user_only(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    data, claims = scifact_slice
    # A judged claim whose relevant abstract is shown, but below rank 1.

    def below_rank_1(query_id: str, shown: list[str]) -> tuple[str, int] | None:
        ranks = [shown.index(d) for d in data.qrels[query_id] if d in shown]
        return (shown[min(ranks)], min(ranks)) if ranks and min(ranks) >= 1 else None

    chosen = _first_claim(client, claims, below_rank_1)
    assert chosen is not None, "no claim has its judged abstract below rank 1 in the top 10"
    claim, (relevant, rank_before) = chosen

    bob_before = _ranking(_search(client, claim, "p13n-bob"))
    alice = _search(client, claim, "p13n-alice", session=True)
    assert [r.object_id for r in alice.results].index(relevant) == rank_before
    _click_and_improve(client, alice, relevant)

    after = _search(client, claim, "p13n-alice").results
    ids_after = [r.object_id for r in after]
    assert relevant in ids_after and ids_after.index(relevant) < rank_before
    assert after[ids_after.index(relevant)].user_id == "p13n-alice"
    # Another user, and an anonymous search, see exactly what they saw before.
    assert _ranking(_search(client, claim, "p13n-bob")) == bob_before
    assert _ranking(_search(client, claim, "")) == bob_before


def test_a_noise_click_keeps_the_relevant_results_in_the_top_10(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    data, claims = scifact_slice
    # A claim with every judged abstract in the top 9: carol skips them all and clicks the
    # irrelevant result at rank 10 (the deepest click: all nine above are passed over).

    def all_in_top_9(query_id: str, shown: list[str]) -> tuple[set[str], str] | None:
        relevant = set(data.qrels[query_id])
        if len(shown) == 10 and relevant <= set(shown[:9]) and shown[9] not in relevant:
            return relevant, shown[9]
        return None

    chosen = _first_claim(client, claims, all_in_top_9)
    assert chosen is not None, "no claim has all its judged abstracts in the top 9"
    claim, (relevant, noise) = chosen

    dave_before = _ranking(_search(client, claim, "p13n-dave"))
    _click_and_improve(client, _search(client, claim, "p13n-carol", session=True), noise)

    after = [r.object_id for r in _search(client, claim, "p13n-carol").results]
    assert after[0] == noise  # the click still counts for carol
    assert relevant <= set(after)  # but costs her none of the relevant results
    assert _ranking(_search(client, claim, "p13n-dave")) == dave_before
