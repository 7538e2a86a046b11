"""Online interleaving of green and blue through gRPC on the real stack: team-draft pages,
credits stored per session, and a verdict that follows what the simulated users prefer.

The green collection holds the base model's weights under another id (same metric and
aggregation as blue), so at first it ranks like blue: identical collections give no
difference. Then its vectors are shuffled among its items: users who click the judged
abstracts prefer blue, users who click what green puts first prefer green. Each phase's
sessions are marked irrelevant before the next, which takes them out of the verdict.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping

import asyncpg
import grpc
import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2, deployment_pb2, search_pb2
from es_core.evaluation.click_model import CascadeClickModel
from es_core.interleaving.store import credits_of
from es_harness.beir import Dataset
from es_harness.click_simulator import CLICK_EVENT_TYPE, click_event_id, session_rng
from es_harness.throwaway import StackInfo
from tests.e2e.grpc_errors import expect_error
from tests.e2e.test_deployment_api import DONE, reindex, run_async

pytestmark = pytest.mark.e2e

MODEL_PREFIX = "interleaving-minilm-"
LIMIT = 10
Relevance = Callable[[str, str], Mapping[str, int]]  # (query id, claim) -> grades


async def _insert_base_copy(dsn: str, model_id: str) -> None:
    """The base model (blue's) registered again under ``model_id``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation, source)"
            " SELECT $1, name, $1, dimensions, metric, aggregation, source FROM models m"
            " JOIN blue_collection b ON b.collection_id = m.model_id",
            model_id,
        )
    finally:
        await conn.close()


async def _shuffle_vectors(dsn: str, collection_id: str) -> int:
    """Rotate the original items' part vectors in a fixed pseudo-random order."""
    conn = await asyncpg.connect(dsn)
    try:
        table = await conn.fetchval(
            "SELECT table_name FROM collections WHERE collection_id = $1", collection_id
        )
        status = await conn.execute(
            f"WITH r AS (SELECT row_id, vector,"
            f" row_number() OVER (ORDER BY md5(object_id || '/' || part_id)) AS rn,"
            f' count(*) OVER () AS n FROM "{table}" WHERE user_id IS NULL AND NOT is_average)'
            f' UPDATE "{table}" t SET vector = b.vector FROM r a JOIN r b ON b.rn = a.rn % a.n + 1'
            f" WHERE t.row_id = a.row_id"
        )
        return int(status.split()[-1])
    finally:
        await conn.close()


async def _credits(dsn: str, session_id: str) -> dict[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await credits_of(conn, session_id)
    finally:
        await conn.close()


def verdict(
    client: Client, confidence: float = 0.0
) -> deployment_pb2.GetInterleavingVerdictResponse:
    return client.get_interleaving_verdict(confidence=confidence, timeout=30)


def interleaved_search(client: Client, claim: str, user_id: str) -> search_pb2.SearchResponse:
    response: search_pb2.SearchResponse = client.search.Search(
        search_pb2.SearchRequest(
            query_text=claim, limit=LIMIT, user_id=user_id, create_session=True, interleave=True
        ),
        timeout=60,
    )
    return response


def simulate(
    client: Client, claims: Mapping[str, str], relevance: Relevance, users: list[str], seed: int
) -> list[str]:
    """Each user searches every claim interleaved and clicks as the cascade model draws from
    ``relevance``; returns the sessions."""
    model = CascadeClickModel()
    sessions: list[str] = []
    events: list[clickstream_pb2.SessionEvent] = []
    for user_id in users:
        for query_id, claim in sorted(claims.items()):
            response = interleaved_search(client, claim, user_id)
            assert response.session_id and response.interleaved_collection_id
            shown = [r.object_id for r in response.results]
            clicks = model.simulate(
                shown, relevance(query_id, claim), session_rng(seed, user_id, query_id)
            )
            sessions.append(response.session_id)
            events += [
                clickstream_pb2.SessionEvent(
                    event_id=click_event_id(response.session_id, rank),
                    session_id=response.session_id,
                    object_id=shown[rank],
                    event_type=CLICK_EVENT_TYPE,
                )
                for rank in clicks
            ]
    assert events, "the simulated users clicked nothing"
    client.clickstream.PushEvents(clickstream_pb2.PushEventsRequest(events=events), timeout=60)
    return sessions


def forget(client: Client, sessions: list[str]) -> None:
    for session_id in sessions:
        client.clickstream.MarkSessionIrrelevant(
            clickstream_pb2.MarkSessionIrrelevantRequest(session_id=session_id), timeout=30
        )


@pytest.fixture(scope="module")
def green(client: Client, stack: StackInfo) -> Iterator[str]:
    """A ready green collection with blue's model weights; deleted after the module."""
    model_id = f"{MODEL_PREFIX}{uuid.uuid4().hex[:8]}"
    run_async(_insert_base_copy(stack.postgres_dsn, model_id))
    try:
        deployed = client.deployment.DeployModel(
            deployment_pb2.DeployModelRequest(model_id=model_id), timeout=30
        )
        assert client.wait_for_task(deployed.task.task_id, timeout_seconds=600).status == DONE
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error.details()
    collection_id, _ = reindex(client, model_id)
    yield collection_id
    client.delete_collection(collection_id, timeout=60)


def test_without_a_green_collection_interleaving_is_a_failed_precondition(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    _, claims = scifact_slice
    greens = [
        c
        for c in client.list_collections(timeout=30)
        if c.state == deployment_pb2.COLLECTION_STATE_GREEN
    ]
    if greens:
        pytest.skip("another module left a green collection in this stack")
    claim = next(iter(claims.values()))
    error = expect_error(
        lambda: interleaved_search(client, claim, ""), grpc.StatusCode.FAILED_PRECONDITION
    )
    assert "no green collection" in str(error.details())
    expect_error(lambda: verdict(client), grpc.StatusCode.FAILED_PRECONDITION)
    # A search that did not ask is not interleaved (ES_INTERLEAVING_SHARE is 0 here).
    plain = client.search_text(claim, limit=LIMIT, create_session=True, timeout=60)
    assert plain.session_id and not plain.interleaved_collection_id


def test_bad_input_names_the_field(
    client: Client, stack: StackInfo, green: str, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    claim = next(iter(scifact_slice[1].values()))
    blue = client.get_blue_collection(timeout=30).collection_id
    cases: list[tuple[search_pb2.SearchRequest, str]] = [
        (search_pb2.SearchRequest(query_text=claim, interleave=True), "create_session"),
        (
            search_pb2.SearchRequest(
                query_vector={"values": [0.1] * 384}, create_session=True, interleave=True
            ),
            "query_text",
        ),
        (
            search_pb2.SearchRequest(
                query_text=claim, collection_id=blue, create_session=True, interleave=True
            ),
            "collection_id",
        ),
    ]
    for request, words in cases:
        error = expect_error(
            lambda r=request: client.search.Search(r, timeout=30),  # type: ignore[misc]
            grpc.StatusCode.INVALID_ARGUMENT,
            "interleave",
        )
        assert words in str(error.details())
    for confidence in (1.5, 0.5, -1.0):
        expect_error(
            lambda c=confidence: verdict(client, c),  # type: ignore[misc]
            grpc.StatusCode.INVALID_ARGUMENT,
            "confidence",
        )
    expect_error(
        lambda: client.get_interleaving_verdict(blue, timeout=30),
        grpc.StatusCode.FAILED_PRECONDITION,
        "green_collection_id",
    )
    expect_error(
        lambda: client.get_interleaving_verdict("no-such", timeout=30),
        grpc.StatusCode.NOT_FOUND,
        "green_collection_id",
    )


def test_the_verdict_follows_what_users_prefer(
    client: Client, stack: StackInfo, green: str, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    data, claims = scifact_slice

    def judged(query_id: str, claim: str) -> Mapping[str, int]:
        return {doc: max(grade, 1) for doc, grade in data.qrels[query_id].items()}

    # Identical collections: the pages are blue's ranking; credit is split by coin flips.
    same = simulate(client, claims, judged, ["il-same-1", "il-same-2"], seed=11)
    first = interleaved_search(client, next(iter(claims.values())), "")
    assert first.interleaved_collection_id == green
    credits = run_async(_credits(stack.postgres_dsn, first.session_id))
    assert sorted(credits) == sorted(r.object_id for r in first.results)
    assert set(credits.values()) == {"blue", "green"}
    blue_page = client.search_text(next(iter(claims.values())), limit=LIMIT, timeout=60)
    # (the same ranking up to near-ties between two encodings of the same text)
    same_items = {r.object_id for r in first.results} & {r.object_id for r in blue_page.results}
    assert len(same_items) >= LIMIT - 2
    tie = verdict(client, 0.999)
    assert tie.green_collection_id == green
    assert tie.decision == deployment_pb2.INTERLEAVING_DECISION_NO_DIFFERENCE, tie
    assert tie.sessions >= len(same) and tie.green_wins + tie.blue_wins > 0
    assert tie.green_win_rate_lower < 0.5 < tie.green_win_rate_upper
    forget(client, [*same, first.session_id])
    assert verdict(client).sessions == 0  # irrelevant sessions do not count

    # Green's vectors shuffled: users clicking the judged abstracts prefer blue.
    assert run_async(_shuffle_vectors(stack.postgres_dsn, green)) > 0
    worse = simulate(client, claims, judged, ["il-judged-1", "il-judged-2"], seed=12)
    blue_better = verdict(client)
    assert blue_better.decision == deployment_pb2.INTERLEAVING_DECISION_BLUE_BETTER, blue_better
    assert blue_better.blue_wins > blue_better.green_wins
    assert blue_better.green_win_rate_upper < 0.5 and blue_better.p_value < 0.05
    forget(client, worse)

    # Users who want what green ranks first prefer green.
    def green_top(query_id: str, claim: str) -> Mapping[str, int]:
        top = client.search_text(claim, limit=3, collection_id=green, timeout=60).results
        return {r.object_id: 2 for r in top}

    simulate(client, claims, green_top, ["il-green-1", "il-green-2"], seed=13)
    green_better = verdict(client)
    assert green_better.decision == deployment_pb2.INTERLEAVING_DECISION_GREEN_BETTER, green_better
    assert green_better.green_win_rate_lower > 0.5
