"""DeploymentService through gRPC on the real stack: reindex, switch and rollback while
searches run, writes during a reindex, deletion, and bad input for every RPC.

The destination model is the base model's weights registered under another id with the dot
metric and AVG aggregation: no training is needed, and its distances (negative inner products)
tell at a glance which collection a response came from. The module leaves the original blue
collection blue and deletes what it created.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import asyncpg
import grpc
import pytest

from embedding_studio.client import Client, from_struct
from embedding_studio.v1 import (
    clickstream_pb2,
    common_pb2,
    deployment_pb2,
    fine_tune_pb2,
    search_pb2,
    task_pb2,
    upsert_pb2,
)
from es_core.config import Settings
from es_core.encoders.local import BASE_MODEL_SOURCE
from es_core.serving.deploy_as_blue import first_promotion
from es_core.storage.db import create_pool
from es_core.tasks import store
from es_harness.beir import Dataset
from es_harness.throwaway import StackInfo
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

DONE = common_pb2.TASK_STATUS_DONE
SEARCH_THREADS = 3
LIMIT = 10
MODEL_PREFIX = "deploy-api-minilm-dot-"


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _insert_model(dsn: str, model_id: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "INSERT INTO models (model_id, name, version, dimensions, metric, aggregation, source)"
            " VALUES ($1, 'all-MiniLM-L6-v2', $1, 384, 'dot', 'avg', $2)",
            model_id,
            BASE_MODEL_SOURCE,
        )
    finally:
        await conn.close()


def new_model(client: Client, stack: StackInfo) -> str:
    """A model version with the base weights under a new id, deployed when serving exists."""
    model_id = f"{MODEL_PREFIX}{uuid.uuid4().hex[:8]}"
    run_async(_insert_model(stack.postgres_dsn, model_id))
    try:
        response = client.deployment.DeployModel(
            deployment_pb2.DeployModelRequest(model_id=model_id), timeout=30
        )
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call)
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error.details()
        return model_id  # no serving in this version: workers encode in process
    final = client.wait_for_task(response.task.task_id, timeout_seconds=600)
    assert final.status == DONE, final.error
    return model_id


@pytest.fixture(scope="module")
def original_blue(client: Client) -> Iterator[deployment_pb2.Collection]:
    """The blue collection before this module; blue again after it, and the collections this
    module made are deleted."""
    blue = client.get_blue_collection(timeout=30)
    yield blue
    if client.get_blue_collection(timeout=30).collection_id != blue.collection_id:
        client.rollback_blue_collection(timeout=30)
    for collection in client.list_collections(timeout=30):
        if collection.model_id.startswith(MODEL_PREFIX):
            client.delete_collection(collection.collection_id, timeout=60)


def reindex(client: Client, model_id: str) -> tuple[str, common_pb2.Task]:
    started = client.start_reindex(model_id, timeout=30)
    final = client.wait_for_task(started.task.task_id, timeout_seconds=900)
    assert final.status == DONE, final.error
    return started.destination_collection_id, final


Hits = list[tuple[str, float]]


def hits_of(response: search_pb2.SearchResponse) -> Hits:
    return [(r.object_id, r.distance) for r in response.results]


def same_hits(a: Hits, b: Hits) -> bool:
    return [o for o, _ in a] == [o for o, _ in b] and all(
        abs(x - y) < 1e-4 for (_, x), (_, y) in zip(a, b, strict=True)
    )


def expected_hits(client: Client, claims: list[str], collection_id: str) -> list[Hits]:
    return [
        hits_of(client.search_text(c, limit=LIMIT, collection_id=collection_id, timeout=60))
        for c in claims
    ]


class Searchers:
    """Threads that search the blue collection (naming none) without pause, recording every
    response's collection and results, and every error."""

    def __init__(self, client: Client, claims: list[str]) -> None:
        self.client, self.claims = client, claims
        self.responses: list[tuple[int, str, Hits]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._run, args=(i,)) for i in range(SEARCH_THREADS)
        ]

    def _run(self, offset: int) -> None:
        n = offset
        while not self._stop.is_set():
            q = n % len(self.claims)
            n += 1
            try:
                response = self.client.search_text(self.claims[q], limit=LIMIT, timeout=60)
            except grpc.RpcError as error:
                with self._lock:
                    self.errors.append(str(error))
                continue
            with self._lock:
                self.responses.append((q, response.collection_id, hits_of(response)))

    def __enter__(self) -> Searchers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=120)

    def count(self) -> int:
        with self._lock:
            return len(self.responses)


def test_searches_never_fail_nor_mix_collections_during_reindex_and_switch(
    client: Client,
    stack: StackInfo,
    scifact_slice: tuple[Dataset, dict[str, str]],
    original_blue: deployment_pb2.Collection,
) -> None:
    _, claims_by_id = scifact_slice
    claims = list(claims_by_id.values())[:8]
    source = original_blue.collection_id
    expected = {source: expected_hits(client, claims, source)}
    model_id = new_model(client, stack)

    with Searchers(client, claims) as searchers:
        destination, task = reindex(client, model_id)
        during_reindex = searchers.count()
        assert task.result["item_count"] == task.result["source_item_count"]
        assert task.reindex.item_count == task.result["item_count"] > 0
        assert task.reindex.destination_collection_id == destination
        expected[destination] = expected_hits(client, claims, destination)
        switched = client.switch_blue_collection(destination, timeout=30)
        switched_at = searchers.count()
        deadline = time.monotonic() + 60
        while searchers.count() < switched_at + 3 * len(claims):
            assert time.monotonic() < deadline
            time.sleep(0.05)

    assert searchers.errors == []
    assert during_reindex > 0, "no search ran while the reindex did"
    assert switched.blue.collection_id == destination
    assert switched.blue.state == deployment_pb2.COLLECTION_STATE_BLUE
    assert switched.previous.collection_id == source
    assert switched.previous.state == deployment_pb2.COLLECTION_STATE_RETIRED
    assert switched.blue.item_count == switched.previous.item_count == task.result["item_count"]
    # The two collections answer recognisably differently: cosine distances are positive,
    # the destination's (negative inner products) are not.
    for q in range(len(claims)):
        assert not same_hits(expected[source][q], expected[destination][q])
        assert all(d >= 0 for _, d in expected[source][q])
        assert all(d < 0 for _, d in expected[destination][q])
    seen: dict[str, int] = {source: 0, destination: 0}
    last_from = source
    for q, collection_id, hits in searchers.responses:
        assert collection_id in expected, collection_id
        # Every response is wholly one collection's answer to its query.
        assert same_hits(hits, expected[collection_id][q]), (collection_id, q)
        seen[collection_id] += 1
        last_from = collection_id
    assert seen[source] > 0 and seen[destination] > 0
    assert last_from == destination


def test_rollback_returns_to_the_previous_blue_and_pages_stay_on_their_collection(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]], original_blue: Any
) -> None:
    _, claims_by_id = scifact_slice
    claim = next(iter(claims_by_id.values()))
    blue = client.get_blue_collection(timeout=30)
    assert blue.collection_id != original_blue.collection_id, "runs after the switch test"
    first_page = client.search_text(claim, limit=5, timeout=60)
    assert first_page.collection_id == blue.collection_id and first_page.next_page_token

    back = client.rollback_blue_collection(timeout=30)
    assert back.blue.collection_id == original_blue.collection_id
    assert back.previous.collection_id == blue.collection_id
    assert client.get_blue_collection(timeout=30).collection_id == original_blue.collection_id
    assert client.search_text(claim, timeout=60).collection_id == original_blue.collection_id

    # A later page keeps reading the collection its first page came from.
    request = search_pb2.SearchRequest(
        query_text=claim, limit=5, page_token=first_page.next_page_token
    )
    second_page = client.search.Search(request, timeout=60)
    assert second_page.collection_id == blue.collection_id
    whole = client.search_text(claim, limit=10, collection_id=blue.collection_id, timeout=60)
    assert hits_of(first_page) + hits_of(second_page) == hits_of(whole)

    # The rolled-back collection can be deleted; then there is nothing to roll back to.
    client.delete_collection(blue.collection_id, timeout=60)
    assert blue.collection_id not in [c.collection_id for c in client.list_collections()]
    expect_error(
        lambda: client.rollback_blue_collection(timeout=30), grpc.StatusCode.FAILED_PRECONDITION
    )
    expect_error(
        lambda: client.search.Search(request, timeout=60),
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token",
    )
    expect_error(
        lambda: client.search_text(claim, collection_id=blue.collection_id, timeout=60),
        grpc.StatusCode.NOT_FOUND,
        "collection_id",
    )


def _get(client: Client, collection_id: str, object_ids: list[str]) -> dict[str, Any]:
    response = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=object_ids, collection_id=collection_id),
        timeout=30,
    )
    return {item.object_id: item for item in response.items}


def test_writes_and_deletes_during_a_reindex_reach_both_collections(
    client: Client,
    stack: StackInfo,
    scifact_slice: tuple[Dataset, dict[str, str]],
    original_blue: deployment_pb2.Collection,
) -> None:
    # Items of its own: the SciFact slice is shared with other modules, which count it.
    doc_ids = ["deploy-api-changed", "deploy-api-deleted"]
    seeded = client.upsert_items(
        [{"object_id": i, "payload": {"v": 1}, "text": f"an abstract named {i}"} for i in doc_ids]
    )
    assert client.wait_for_task(seeded.task_id, timeout_seconds=300).status == DONE
    # A user whose click improved a result in the source (the stack runs with
    # ES_REINDEX_USER_COPIES=recompute): the copy is rebuilt in the destination.
    improved_id = _improve_a_result(client, COPIES_USER, COPIES_QUERY)
    model_id = new_model(client, stack)
    started = client.start_reindex(model_id, idempotency_key=f"during-{model_id}", timeout=30)
    again = client.start_reindex(model_id, idempotency_key=f"during-{model_id}", timeout=30)
    assert again.task.task_id == started.task.task_id
    destination = started.destination_collection_id

    new_id, changed_id, deleted_id = "deploy-api-new", doc_ids[0], doc_ids[1]
    writes = [
        client.upsert_items(
            [
                {"object_id": new_id, "payload": {"v": 1}, "text": "a brand new abstract"},
                {"object_id": changed_id, "payload": {"v": 2}, "text": "a rewritten abstract"},
            ]
        ),
        client.upsert.DeleteItems(
            upsert_pb2.DeleteItemsRequest(object_ids=[deleted_id]), timeout=30
        ).task,
    ]
    for task in [*writes, started.task]:
        final = client.wait_for_task(task.task_id, timeout_seconds=900)
        assert final.status == DONE, final.error

    for collection_id in (original_blue.collection_id, destination):
        items = _get(client, collection_id, [new_id, changed_id, deleted_id])
        assert sorted(items) == sorted([new_id, changed_id]), collection_id
        assert items[changed_id].parts[0].text == "a rewritten abstract"
        assert items[new_id].parts[0].text == "a brand new abstract"
    counts = {c.collection_id: c.item_count for c in client.list_collections(page_size=1)}
    assert counts[destination] == counts[original_blue.collection_id]

    # The worker that ended the reindex sent the task that rebuilds users' copies there.
    reindexed = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=started.task.task_id)).task
    follow_up = from_struct(reindexed.result)["user_copies_task_id"]
    rebuilt = client.wait_for_task(follow_up, timeout_seconds=300)
    assert rebuilt.status == DONE, rebuilt.error
    report = from_struct(rebuilt.result)
    assert report["recomputed_in"] == destination and report["improved_sessions"] >= 1
    hits = client.search_text(
        COPIES_QUERY, limit=5, collection_id=destination, user_id=COPIES_USER, timeout=60
    ).results
    assert [h.user_id for h in hits if h.object_id == improved_id] == [COPIES_USER]
    anonymous = client.search_text(COPIES_QUERY, limit=5, collection_id=destination, timeout=60)
    assert all(not h.user_id for h in anonymous.results)
    client.delete_collection(destination, timeout=60)


COPIES_USER, COPIES_QUERY = "deploy-api-copies-user", "an abstract named deploy-api-changed"


def _improve_a_result(client: Client, user_id: str, query: str) -> str:
    """``user_id`` searches, clicks the third result and has the session improved; returns
    the clicked object's id."""
    shown = client.search_text(query, limit=5, user_id=user_id, create_session=True, timeout=60)
    clicked = shown.results[2].object_id
    client.clickstream.PushEvents(
        clickstream_pb2.PushEventsRequest(
            events=[
                clickstream_pb2.SessionEvent(
                    event_id=f"{shown.session_id}-click",
                    session_id=shown.session_id,
                    object_id=clicked,
                    event_type="click",
                )
            ]
        ),
        timeout=30,
    )
    queued = client.clickstream.UseSessionsForImprovement(
        clickstream_pb2.UseSessionsForImprovementRequest(session_ids=[shown.session_id]),
        timeout=30,
    )
    done = client.wait_for_task(queued.task.task_id, timeout_seconds=300)
    assert done.status == DONE and done.result["improved_sessions"] == 1, done.error
    assert done.improvement.improved_sessions == 1
    return clicked


async def _promoting_task(dsn: str, model_id: str) -> str:
    """A fine-tuning task as the worker leaves it when its version passed the gate with
    deploy_as_blue: handed over to its chain, which nothing has started yet. It stands in for
    the training, which tests/e2e/test_fine_tuning.py runs for real."""
    pool = await create_pool(Settings(), dsn, max_size=1)
    try:
        async with pool.acquire() as conn:
            task, _ = await store.create_task(conn, "fine_tuning", {"deploy_as_blue": True})
            assert await store.claim_task(conn, task.task_id, "e2e-trainer", 60) is not None
            promotion = first_promotion(
                deploy_as_blue=True, deployable=True, model_id=model_id, margin=0.005
            )
            assert promotion is not None
            result = {"model_id": model_id, "deployable": True, "promotion": promotion.as_json()}
            owner = "e2e-trainer"
            assert await store.start_waiting(conn, task.task_id, owner, result, "")
            return task.task_id
    finally:
        await pool.close()


def test_deploy_as_blue_deploys_reindexes_and_switches_unattended(
    client: Client,
    stack: StackInfo,
    scifact_slice: tuple[Dataset, dict[str, str]],
    original_blue: deployment_pb2.Collection,
) -> None:
    assert client.get_blue_collection(timeout=30).collection_id == original_blue.collection_id
    model_id = f"{MODEL_PREFIX}{uuid.uuid4().hex[:8]}"
    run_async(_insert_model(stack.postgres_dsn, model_id))  # registered, not deployed
    task_id = run_async(_promoting_task(stack.postgres_dsn, model_id))
    # No message is sent for it: the sweeper's passes (every 2 s here) move the chain on, and
    # the workers that end its deployment and its reindex do.
    final = client.wait_for_task(task_id, timeout_seconds=900)
    assert final.status == DONE, final.error
    got = client.fine_tune.GetFineTuningTask(
        fine_tune_pb2.GetFineTuningTaskRequest(task_id=task_id), timeout=30
    ).task
    promotion = got.promotion
    assert promotion.step == fine_tune_pb2.PROMOTION_STEP_SWITCHED
    assert promotion.collection_id == model_id
    assert promotion.previous_collection_id == original_blue.collection_id
    deploy = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=promotion.deploy_task_id)).task
    assert deploy.kind == common_pb2.TASK_KIND_DEPLOYMENT and deploy.status == DONE
    reindexed = client.tasks.GetTask(
        task_pb2.GetTaskRequest(task_id=promotion.reindex_task_id)
    ).task
    assert reindexed.status == DONE
    counts = from_struct(reindexed.result)
    assert counts["item_count"] == counts["source_item_count"] > 0
    assert client.get_blue_collection(timeout=30).collection_id == model_id
    assert client.search_text("a claim", limit=3, timeout=60).collection_id == model_id

    client.rollback_blue_collection(timeout=30)
    assert client.get_blue_collection(timeout=30).collection_id == original_blue.collection_id
    client.delete_collection(model_id, timeout=60)


# ---- bad input -----------------------------------------------------------------------------

D = deployment_pb2


def _bad_requests(blue: deployment_pb2.Collection) -> list[Any]:
    cases: list[Any] = [
        (
            "ListCollections",
            D.ListCollectionsRequest(page_size=-1),
            "INVALID_ARGUMENT",
            "page_size",
        ),
        (
            "ListCollections",
            D.ListCollectionsRequest(page_token="not-a-token"),
            "INVALID_ARGUMENT",
            "page_token",
        ),
        (
            "SwitchBlueCollection",
            D.SwitchBlueCollectionRequest(),
            "INVALID_ARGUMENT",
            "collection_id",
        ),
        (
            "SwitchBlueCollection",
            D.SwitchBlueCollectionRequest(collection_id="x" * 129),
            "INVALID_ARGUMENT",
            "collection_id",
        ),
        (
            "SwitchBlueCollection",
            D.SwitchBlueCollectionRequest(collection_id="no-such-collection"),
            "NOT_FOUND",
            "collection_id",
        ),
        (
            "SwitchBlueCollection",
            D.SwitchBlueCollectionRequest(collection_id=blue.collection_id),
            "FAILED_PRECONDITION",
            "collection_id",
        ),
        ("StartReindex", D.StartReindexRequest(), "INVALID_ARGUMENT", "destination_model_id"),
        (
            "StartReindex",
            D.StartReindexRequest(destination_model_id="m" * 129),
            "INVALID_ARGUMENT",
            "destination_model_id",
        ),
        (
            "StartReindex",
            D.StartReindexRequest(destination_model_id="no-such-model"),
            "NOT_FOUND",
            "destination_model_id",
        ),
        (
            "StartReindex",
            D.StartReindexRequest(destination_model_id=blue.model_id),
            "FAILED_PRECONDITION",
            "destination_model_id",
        ),
        (
            "StartReindex",
            D.StartReindexRequest(
                destination_model_id="no-such-model", source_collection_id="no-such-collection"
            ),
            "NOT_FOUND",
            "source_collection_id",
        ),
        (
            "StartReindex",
            D.StartReindexRequest(destination_model_id="m", source_collection_id="s" * 129),
            "INVALID_ARGUMENT",
            "source_collection_id",
        ),
        (
            "StartReindex",
            D.StartReindexRequest(destination_model_id="m", idempotency_key="k" * 129),
            "INVALID_ARGUMENT",
            "idempotency_key",
        ),
        ("DeleteCollection", D.DeleteCollectionRequest(), "INVALID_ARGUMENT", "collection_id"),
        (
            "DeleteCollection",
            D.DeleteCollectionRequest(collection_id="no-such-collection"),
            "NOT_FOUND",
            "collection_id",
        ),
        (
            "DeleteCollection",
            D.DeleteCollectionRequest(collection_id=blue.collection_id),
            "FAILED_PRECONDITION",
            "collection_id",
        ),
        (
            "GetInterleavingVerdict",
            D.GetInterleavingVerdictRequest(confidence=2.0),
            "INVALID_ARGUMENT",
            "confidence",
        ),
        (
            "GetInterleavingVerdict",
            D.GetInterleavingVerdictRequest(green_collection_id=blue.collection_id),
            "FAILED_PRECONDITION",
            "green_collection_id",
        ),
    ]
    cases += [
        ("DeployModel", D.DeployModelRequest(), "INVALID_ARGUMENT", "model_id"),
        ("UndeployModel", D.UndeployModelRequest(), "INVALID_ARGUMENT", "model_id"),
        ("ListModels", D.ListModelsRequest(page_size=-1), "INVALID_ARGUMENT", "page_size"),
        (
            "SetFilterableFields",
            D.SetFilterableFieldsRequest(
                fields=[D.FilterableField(field="", type=D.FIELD_TYPE_NUMBER)]
            ),
            "INVALID_ARGUMENT",
            "fields[0].field",
        ),
    ]
    return cases


def test_every_rpc_refuses_bad_input_naming_the_field_and_changes_nothing(
    client: Client, original_blue: deployment_pb2.Collection
) -> None:
    before = [(c.collection_id, c.state) for c in client.list_collections()]
    rpcs_seen = set()
    for rpc, request, code, field in _bad_requests(original_blue):
        expect_error(
            lambda rpc=rpc, request=request: getattr(client.deployment, rpc)(request, timeout=30),
            getattr(grpc.StatusCode, code),
            field,
        )
        rpcs_seen.add(rpc)
    # No previous blue now (the rollback test deleted it): nothing to roll back to.
    expect_error(
        lambda: client.rollback_blue_collection(timeout=30), grpc.StatusCode.FAILED_PRECONDITION
    )
    rpcs_seen.add("RollbackBlueCollection")
    # GetBlueCollection takes no input to get wrong; it answers with the blue collection.
    blue = client.get_blue_collection(timeout=30)
    assert blue.collection_id == original_blue.collection_id and blue.item_count > 0
    rpcs_seen.add("GetBlueCollection")
    assert rpcs_seen == {m.name for m in D.DESCRIPTOR.services_by_name["DeploymentService"].methods}
    assert [(c.collection_id, c.state) for c in client.list_collections()] == before
