"""Bad input through gRPC: one refusal per status code with its field named, and what needs the
database or the whole stack (nothing half-written, page tokens of real queries, idempotency keys,
task states, services not built yet).

Each refusal's check is unit-tested on its own, field by field, in tests/unit/test_bad_*_requests.py
(and the mapping of each library error to its status in tests/unit/test_error_statuses.py).
Requests are built from raw messages (not the client's helpers, which refuse some of them).
Objects written here use ids starting "bi-" and payload {"suite": "bad_input"}.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast

import asyncpg
import grpc
import pytest
from google.protobuf.message import Message

from embedding_studio.client import Client
from embedding_studio.v1 import (
    common_pb2,
    search_pb2,
    task_pb2,
    upsert_pb2,
)
from es_core.item_input import ItemInput, PartInput
from es_harness.throwaway import StackInfo
from tests.bad_requests import (
    SUITE,
    VEC,
    WRITE_CASES,
    F,
    deep_bool,
    ok_item,
    unit,
    upsert,
)
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
UNKNOWN_TASK = str(uuid.UUID(int=12345))

# (client attribute, method) of every RPC sent here.
RPCS: dict[str, tuple[str, str]] = {
    "Search": ("search", "Search"),
    "SearchByPayload": ("search", "SearchByPayload"),
    "CountItems": ("search", "CountItems"),
    "FindSimilarItems": ("search", "FindSimilarItems"),
    "UpsertItems": ("upsert", "UpsertItems"),
    "DeleteItems": ("upsert", "DeleteItems"),
    "GetItems": ("upsert", "GetItems"),
    "GetTask": ("tasks", "GetTask"),
    "ListTasks": ("tasks", "ListTasks"),
    "WatchTask": ("tasks", "WatchTask"),
    "CancelTask": ("tasks", "CancelTask"),
    "RestartTask": ("tasks", "RestartTask"),
}


def call(client: Client, rpc: str, request: Message) -> Callable[[], object]:
    stub, method = RPCS[rpc]
    return lambda: getattr(getattr(client, stub), method)(request, timeout=60)


def by_vector(values: list[float] = VEC, **kw: Any) -> search_pb2.SearchRequest:
    return search_pb2.SearchRequest(query_vector=common_pb2.Vector(values=values), **kw)


def with_sort(request: Any, field: str, order: int = common_pb2.SORT_ORDER_ASC) -> Any:
    request.sort.field = field
    request.sort.order = order
    return request


# --- INVALID_ARGUMENT naming the field: the depth limit of filters and its positive control ------


def test_bad_filter_is_refused_naming_the_clause(client: Client) -> None:
    request = search_pb2.CountItemsRequest(filter=deep_bool(17))
    expect_error(call(client, "CountItems", request), BAD, "filter" + ".bool.must[0]" * 16)


def test_sixteen_bool_levels_are_accepted(client: Client) -> None:
    """The positive control of the depth limit: one level less is a valid filter."""
    reply = client.search.CountItems(search_pb2.CountItemsRequest(filter=deep_bool(16)))
    assert reply.count >= 0


# --- NOT_FOUND: what only the database knows is missing, naming the field -----------------------

NOT_FOUND_CASES = [
    pytest.param(
        "Search",
        by_vector(collection_id="no-such-collection"),
        "collection_id",
        id="search-unknown-collection",
    ),
    pytest.param(
        "SearchByPayload",
        search_pb2.SearchByPayloadRequest(collection_id="nope"),
        "collection_id",
        id="payload-unknown-collection",
    ),
    pytest.param(
        "CountItems",
        search_pb2.CountItemsRequest(collection_id="nope"),
        "collection_id",
        id="count-unknown-collection",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", collection_id="nope"),
        "collection_id",
        id="similar-unknown-collection",
    ),
    pytest.param(
        "FindSimilarItems",
        search_pb2.FindSimilarItemsRequest(object_id="bi-no-such-object"),
        "object_id",
        id="similar-unknown-object",
    ),
    pytest.param(
        "UpsertItems",
        upsert(ok_item("bi-bad-nocoll"), collection_id="nope"),
        "collection_id",
        id="upsert-unknown-collection",
    ),
    pytest.param(
        "DeleteItems",
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], collection_id="nope"),
        "collection_id",
        id="delete-unknown-collection",
    ),
    pytest.param(
        "GetItems",
        upsert_pb2.GetItemsRequest(object_ids=["bi-seed-0"], collection_id="nope"),
        "collection_id",
        id="get-unknown-collection",
    ),
    *[
        pytest.param(rpc, request_type(task_id=UNKNOWN_TASK), "task_id", id=f"{rpc}-unknown")
        for rpc, request_type in [
            ("GetTask", task_pb2.GetTaskRequest),
            ("WatchTask", task_pb2.WatchTaskRequest),
            ("CancelTask", task_pb2.CancelTaskRequest),
            ("RestartTask", task_pb2.RestartTaskRequest),
        ]
    ],
]


@pytest.fixture(scope="module")
def seeded(client: Client) -> common_pb2.Task:
    """Three stored items (bi-seed-0..2): targets for FindSimilarItems, DeleteItems, page tokens."""
    task = client.upsert_items(
        [
            {
                "object_id": f"bi-seed-{i}",
                "payload": {"suite": SUITE, "n": i},
                "parts": [{"vector": unit(10 + i)}],
            }
            for i in range(3)
        ]
    )
    final = client.wait_for_task(task.task_id, timeout_seconds=120)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    return final


@pytest.mark.parametrize(("rpc", "request_message", "field"), NOT_FOUND_CASES)
def test_unknown_resource_is_not_found_naming_the_field(
    client: Client, seeded: common_pb2.Task, rpc: str, request_message: Message, field: str
) -> None:
    expect_error(call(client, rpc, request_message), NOT_FOUND, field)


# --- nothing half-written: every bad write of the unit tests' table, sent through gRPC ----------


def write_rpc(request: Message) -> str:
    return "UpsertItems" if isinstance(request, upsert_pb2.UpsertItemsRequest) else "DeleteItems"


def write_code(field: str | None) -> grpc.StatusCode:
    return NOT_FOUND if field is None else BAD


def all_task_ids(client: Client) -> list[str]:
    ids: list[str] = []
    page_token = ""
    while True:
        reply = client.tasks.ListTasks(
            task_pb2.ListTasksRequest(page_size=1000, page_token=page_token)
        )
        ids += [t.task_id for t in reply.tasks]
        page_token = reply.next_page_token
        if not page_token:
            return ids


def named_ids(request: Message) -> set[str]:
    """The object ids a write request names that GetItems can be asked about."""
    if isinstance(request, upsert_pb2.UpsertItemsRequest):
        ids = {i.object_id for i in request.items}
    else:
        ids = set(request.object_ids)  # type: ignore[attr-defined]
    return {i for i in ids if i.startswith("bi-bad") and len(i) <= 256 and "\x00" not in i}


def test_refused_writes_leave_no_task_and_no_item(client: Client, seeded: common_pb2.Task) -> None:
    tasks_before = all_task_ids(client)
    asked: set[str] = set()
    for case in WRITE_CASES:
        request, field = cast(tuple[Message, str | None], case.values)
        expect_error(call(client, write_rpc(request), request), write_code(field), field)
        asked |= named_ids(request)
    assert all_task_ids(client) == tasks_before
    assert len(asked) > 20
    ids = sorted(asked)
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        reply = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=chunk))
        assert list(reply.items) == []
        assert list(reply.missing_object_ids) == chunk
    # The delete cases named bi-seed-1: it is still there.
    kept = client.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["bi-seed-1"]))
    assert [i.object_id for i in kept.items] == ["bi-seed-1"]


# --- page tokens only valid with the query that produced them -------------------------------------

MINE = F({"term": {"field": "suite", "value": SUITE}})


def test_page_token_from_another_query_is_refused(client: Client, seeded: common_pb2.Task) -> None:
    first = client.search.Search(by_vector(limit=1, filter=MINE))
    assert len(first.results) == 1 and first.next_page_token
    same = client.search.Search(by_vector(limit=1, filter=MINE, page_token=first.next_page_token))
    assert len(same.results) == 1 and same.results[0].object_id != first.results[0].object_id
    t = first.next_page_token
    for other in [
        by_vector(limit=1, page_token=t),  # no filter
        by_vector(unit(2), limit=1, filter=MINE, page_token=t),  # another vector
        by_vector(limit=1, filter=MINE, max_distance=1.5, page_token=t),
        by_vector(limit=1, filter=MINE, user_id="someone", page_token=t),
        with_sort(by_vector(limit=1, filter=MINE, page_token=t), "n"),
    ]:
        expect_error(call(client, "Search", other), BAD, "page_token")
    # A Search token is no SearchByPayload or FindSimilarItems token, and the reverse.
    payload_request = search_pb2.SearchByPayloadRequest(filter=MINE, limit=1, page_token=t)
    expect_error(call(client, "SearchByPayload", payload_request), BAD, "page_token")
    similar = search_pb2.FindSimilarItemsRequest(
        object_id="bi-seed-0", filter=MINE, limit=1, page_token=t
    )
    expect_error(call(client, "FindSimilarItems", similar), BAD, "page_token")

    payload_first = client.search.SearchByPayload(
        search_pb2.SearchByPayloadRequest(filter=MINE, limit=1)
    )
    assert payload_first.next_page_token
    sorted_request = with_sort(
        search_pb2.SearchByPayloadRequest(
            filter=MINE, limit=1, page_token=payload_first.next_page_token
        ),
        "n",
    )
    expect_error(call(client, "SearchByPayload", sorted_request), BAD, "page_token")
    expect_error(
        call(
            client,
            "Search",
            by_vector(limit=1, filter=MINE, page_token=payload_first.next_page_token),
        ),
        BAD,
        "page_token",
    )

    similar_first = client.search.FindSimilarItems(
        search_pb2.FindSimilarItemsRequest(object_id="bi-seed-0", filter=MINE, limit=1)
    )
    assert similar_first.next_page_token
    other_object = search_pb2.FindSimilarItemsRequest(
        object_id="bi-seed-1", filter=MINE, limit=1, page_token=similar_first.next_page_token
    )
    expect_error(call(client, "FindSimilarItems", other_object), BAD, "page_token")


def test_list_tasks_token_from_other_filters_is_refused(
    client: Client, seeded: common_pb2.Task
) -> None:
    client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=["bi-never-stored"]))
    first = client.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=1))
    assert first.next_page_token
    for other in [
        task_pb2.ListTasksRequest(
            page_size=1, page_token=first.next_page_token, kind=common_pb2.TASK_KIND_UPSERTION
        ),
        task_pb2.ListTasksRequest(
            page_size=1, page_token=first.next_page_token, statuses=[common_pb2.TASK_STATUS_DONE]
        ),
    ]:
        expect_error(call(client, "ListTasks", other), BAD, "page_token")


def test_list_tasks_clamps_a_large_page_size(client: Client, seeded: common_pb2.Task) -> None:
    reply = client.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=5000))
    assert 1 <= len(reply.tasks) <= 1000


# --- idempotency keys -----------------------------------------------------------------------------


def test_idempotency_key_reuse(client: Client) -> None:
    key = f"bi-key-{uuid.uuid4()}"
    request = upsert(ok_item("bi-idem-1"), idempotency_key=key)
    first = client.upsert.UpsertItems(request).task
    assert first.idempotency_key == key
    tasks_after_first = all_task_ids(client)
    again = client.upsert.UpsertItems(request).task
    assert again.task_id == first.task_id
    assert all_task_ids(client) == tasks_after_first, "a retry with the same key created a task"

    different = upsert(ok_item("bi-idem-2"), idempotency_key=key)
    expect_error(
        call(client, "UpsertItems", different), grpc.StatusCode.ALREADY_EXISTS, "idempotency_key"
    )
    final = client.wait_for_task(first.task_id, timeout_seconds=120)
    assert final.status == common_pb2.TASK_STATUS_DONE
    # Still the same task once it has finished; the refused request wrote nothing.
    assert client.upsert.UpsertItems(request).task.task_id == first.task_id
    expect_error(
        call(client, "UpsertItems", different), grpc.StatusCode.ALREADY_EXISTS, "idempotency_key"
    )
    reply = client.upsert.GetItems(
        upsert_pb2.GetItemsRequest(object_ids=["bi-idem-1", "bi-idem-2"])
    )
    assert [i.object_id for i in reply.items] == ["bi-idem-1"]
    assert list(reply.missing_object_ids) == ["bi-idem-2"]
    assert all_task_ids(client) == tasks_after_first

    delete_key = f"bi-del-key-{uuid.uuid4()}"
    deletion = upsert_pb2.DeleteItemsRequest(
        object_ids=["bi-never-stored"], idempotency_key=delete_key
    )
    d1 = client.upsert.DeleteItems(deletion).task
    assert client.upsert.DeleteItems(deletion).task.task_id == d1.task_id
    other_deletion = upsert_pb2.DeleteItemsRequest(
        object_ids=["bi-idem-1"], idempotency_key=delete_key
    )
    expect_error(
        call(client, "DeleteItems", other_deletion),
        grpc.StatusCode.ALREADY_EXISTS,
        "idempotency_key",
    )
    assert (
        client.wait_for_task(d1.task_id, timeout_seconds=120).status == common_pb2.TASK_STATUS_DONE
    )


# --- task states ----------------------------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine on a fresh loop in another thread (tests here are synchronous)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def insert_task(dsn: str, status: str, object_id: str) -> str:
    """A task row no broker message will run: sent just now (so the sweeper leaves it alone for
    ten minutes) and, when processing, leased to a worker for an hour."""
    conn = await asyncpg.connect(dsn)
    try:
        collection_id = await conn.fetchval("SELECT collection_id FROM blue_collection")
        params = {
            "collection_id": collection_id,
            "items": [
                ItemInput(object_id, {"suite": SUITE}, None, [PartInput("0", None, VEC)]).to_json()
            ],
        }
        task_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO tasks (task_id, kind, status, params, sent_time, attempts, lease_owner,"
            " lease_expires_at, start_time)"
            " VALUES ($1, 'upsertion', $2, $3::jsonb, now(), $4, $5,"
            " CASE WHEN $2 = 'processing' THEN now() + interval '1 hour' END,"
            " CASE WHEN $2 = 'processing' THEN now() END)",
            task_id,
            status,
            json.dumps(params),
            1 if status == "processing" else 0,
            "test-holder" if status == "processing" else None,
        )
        return str(task_id)
    finally:
        await conn.close()


def test_finished_task_cannot_be_canceled_or_restarted(
    client: Client, seeded: common_pb2.Task
) -> None:
    assert seeded.status == common_pb2.TASK_STATUS_DONE
    for rpc, request_type in [
        ("CancelTask", task_pb2.CancelTaskRequest),
        ("RestartTask", task_pb2.RestartTaskRequest),
    ]:
        error = expect_error(
            call(client, rpc, request_type(task_id=seeded.task_id)), PRECONDITION, "task_id"
        )
        assert "done" in (error.details() or "")
    after = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=seeded.task_id)).task
    assert after.status == common_pb2.TASK_STATUS_DONE
    assert after.finish_time == seeded.finish_time


def test_pending_or_running_task_cannot_be_restarted(client: Client, stack: StackInfo) -> None:
    for status, expected in [
        ("pending", common_pb2.TASK_STATUS_PENDING),
        ("processing", common_pb2.TASK_STATUS_PROCESSING),
    ]:
        task_id = run_async(insert_task(stack.postgres_dsn, status, f"bi-state-{status}"))
        request = task_pb2.RestartTaskRequest(task_id=task_id)
        error = expect_error(call(client, "RestartTask", request), PRECONDITION, "task_id")
        assert status in (error.details() or "")
        assert (
            client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id)).task.status == expected
        )
        # Clean up: the row would otherwise be re-sent by the sweeper ten minutes from now.
        canceled = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task_id)).task
        assert canceled.status == common_pb2.TASK_STATUS_CANCELED
        error = expect_error(
            call(client, "CancelTask", task_pb2.CancelTaskRequest(task_id=task_id)),
            PRECONDITION,
            "task_id",
        )
        assert "canceled" in (error.details() or "")
