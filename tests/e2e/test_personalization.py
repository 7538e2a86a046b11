"""Clicks make the next search better for the user who clicked, and for nobody else."""

from __future__ import annotations

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2, common_pb2, search_pb2
from es_core.beir import Dataset

pytestmark = pytest.mark.e2e


def _search(
    client: Client, text: str, user_id: str, *, session: bool = False
) -> search_pb2.SearchResponse:
    return client.search.Search(
        search_pb2.SearchRequest(query_text=text, limit=10, user_id=user_id, create_session=session)
    )


def _ranking(reply: search_pb2.SearchResponse) -> list[tuple[str, float]]:
    return [(r.object_id, round(r.distance, 6)) for r in reply.results]


def test_a_click_lifts_the_item_for_that_user_only(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    data, claims = scifact_slice
    # A judged claim whose relevant abstract is shown, but below rank 1.
    chosen = None
    for query_id, claim in claims.items():
        shown = [r.object_id for r in _search(client, claim, "").results]
        ranks = [shown.index(d) for d in data.qrels[query_id] if d in shown]
        if ranks and min(ranks) >= 1:
            chosen = (claim, shown[min(ranks)], min(ranks))
            break
    assert chosen is not None, "no claim has its judged abstract below rank 1 in the top 10"
    claim, relevant, rank_before = chosen

    bob_before = _ranking(_search(client, claim, "p13n-bob"))
    alice = _search(client, claim, "p13n-alice", session=True)
    assert alice.session_id
    assert [r.object_id for r in alice.results].index(relevant) == rank_before
    pushed = client.clickstream.PushEvents(
        clickstream_pb2.PushEventsRequest(
            events=[
                clickstream_pb2.SessionEvent(
                    event_id=f"{alice.session_id}-click",
                    session_id=alice.session_id,
                    object_id=relevant,
                    event_type="click",
                )
            ]
        )
    )
    assert (pushed.accepted_count, pushed.duplicate_count) == (1, 0)

    queued = client.clickstream.UseSessionsForImprovement(
        clickstream_pb2.UseSessionsForImprovementRequest(session_ids=[alice.session_id])
    )
    assert queued.queued_count == 1
    done = client.wait_for_task(queued.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert done.result["improved_sessions"] >= 1

    after = _search(client, claim, "p13n-alice").results
    ids_after = [r.object_id for r in after]
    assert relevant in ids_after and ids_after.index(relevant) < rank_before
    assert after[ids_after.index(relevant)].user_id == "p13n-alice"
    # Another user, and an anonymous search, see exactly what they saw before.
    assert _ranking(_search(client, claim, "p13n-bob")) == bob_before
    assert _ranking(_search(client, claim, "")) == bob_before
