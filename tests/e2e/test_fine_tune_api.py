"""FineTuneService through gRPC: starting on a batch of sessions, idempotency, reading, bad input.

A started task is really run by the stack's worker, so successful starts are few (two, made once
by the ``started`` fixture): one releases whatever batch was collecting (and is canceled at once,
as other suites' sessions may be in it), the other trains on a batch of this suite's own sessions,
too few for training, so the worker fails it in a moment instead of training a model.
Sessions here carry a random "ft-" id; their shown items ("ft-item-*") need not exist.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

import grpc
import pytest
from google.protobuf import struct_pb2

from embedding_studio.client import Client, to_struct
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import common_pb2, task_pb2, upsert_pb2
from embedding_studio.v1 import fine_tune_pb2 as ft
from tests.e2e.grpc_errors import expect_error, violated_fields

pytestmark = pytest.mark.e2e

BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
ALREADY = grpc.StatusCode.ALREADY_EXISTS
ITEMS = [f"ft-item-{i}" for i in range(4)]
# The hyperparameters of the trained start: whole-number floats (all a Struct carries) included.
HYPERPARAMETERS = {"epochs": 1, "learning_rate": [3e-5, 5e-5], "loss": "mnrl"}


def rid(name: str) -> str:
    return f"ft-{name}-{uuid.uuid4().hex[:10]}"


def register(client: Client, query_text: str = "", click: bool = False) -> cs.Session:
    """A session of this suite; with a query text and a click it is one training example."""
    session = cs.Session(
        session_id=rid("s"),
        query_text=query_text,
        results=[cs.ShownResult(object_id=o, rank=r) for r, o in enumerate(ITEMS)],
    )
    registered: cs.RegisterSessionResponse = client.clickstream.RegisterSession(
        cs.RegisterSessionRequest(session=session), timeout=60
    )
    stored = registered.session
    if click:
        click_event = cs.SessionEvent(
            event_id=f"{stored.session_id}-click",
            session_id=stored.session_id,
            object_id=ITEMS[1],
            event_type="click",
        )
        reply = client.clickstream.PushEvents(cs.PushEventsRequest(events=[click_event]))
        assert reply.accepted_count == 1
    return stored


def collecting_batch(client: Client) -> str:
    """The batch new sessions join now, found by registering a session that teaches nothing."""
    return register(client).batch_id


def batch_session_ids(client: Client, batch_id: str) -> set[str]:
    reply = client.clickstream.ListSessions(
        cs.ListSessionsRequest(batch_id=batch_id, page_size=1000), timeout=60
    )
    assert not reply.next_page_token
    return {s.session_id for s in reply.sessions}


def list_pages(client: Client, page_size: int) -> list[list[ft.FineTuningTask]]:
    pages: list[list[ft.FineTuningTask]] = []
    token = ""
    while True:
        reply = client.fine_tune.ListFineTuningTasks(
            ft.ListFineTuningTasksRequest(page_size=page_size, page_token=token), timeout=60
        )
        pages.append(list(reply.tasks))
        token = reply.next_page_token
        if not token:
            return pages
        assert len(pages) < 1000


def fine_tuning_task_ids(client: Client) -> list[str]:
    return [t.task.task_id for page in list_pages(client, 1000) for t in page]


@dataclass(frozen=True)
class Started:
    cleared: ft.FineTuningTask  # started on the batch that collected before this suite
    cleared_batch: str
    task: ft.FineTuningTask  # started on this suite's own batch
    batch: str
    session_ids: set[str]
    # What StartFineTuning answered right after ``task`` released the last batch.
    after_release: grpc.RpcError


@pytest.fixture(scope="module")
def started(client: Client) -> Started:
    cleared_batch = collecting_batch(client)
    cleared = client.start_fine_tuning(batch_id=cleared_batch, timeout=60)
    # Other suites' sessions may be in that batch: stop the task before it can train a model.
    try:
        client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=cleared.task.task_id))
    except grpc.RpcError as error:
        assert isinstance(error, grpc.Call) and error.code() == PRECONDITION, error

    sessions = [
        register(client, "vitamin d and bone density", click=True),
        register(client, "statins and muscle pain", click=True),
        register(client, "", click=True),  # no query text: no example
    ]
    batch = sessions[0].batch_id
    assert batch != cleared_batch
    assert {s.batch_id for s in sessions} == {batch}
    assert batch_session_ids(client, batch) == {s.session_id for s in sessions}
    task = client.start_fine_tuning(
        idempotency_key=rid("key"),
        deploy_as_blue=True,
        hyperparameters=HYPERPARAMETERS,
        timeout=60,
    )
    with pytest.raises(grpc.RpcError) as after_release:
        client.start_fine_tuning(timeout=60)
    return Started(
        cleared,
        cleared_batch,
        task,
        batch,
        {s.session_id for s in sessions},
        after_release.value,
    )


# --- StartFineTuning ------------------------------------------------------------------------------


def test_start_releases_the_batch_and_returns_a_pending_task(
    client: Client, started: Started
) -> None:
    task = started.task
    assert task.task.kind == common_pb2.TASK_KIND_FINE_TUNING
    assert task.task.status == common_pb2.TASK_STATUS_PENDING
    assert task.task.idempotency_key.startswith("ft-key-")
    assert task.batch_id == started.batch
    assert task.deploy_as_blue
    assert (task.model_id, task.mlflow_run_id, dict(task.metrics), task.deployable) == (
        "",
        "",
        {},
        False,
    )
    assert started.cleared.batch_id == started.cleared_batch
    assert not started.cleared.deploy_as_blue
    # The released batch keeps exactly its sessions; new sessions start another batch.
    assert batch_session_ids(client, started.batch) == started.session_ids
    assert collecting_batch(client) not in {started.batch, started.cleared_batch}


def test_start_with_no_sessions_since_the_last_release_is_failed_precondition(
    started: Started,
) -> None:
    error = started.after_release
    assert isinstance(error, grpc.Call)
    assert error.code() == PRECONDITION, error.details()
    assert violated_fields(error) == ["batch_id"]
    assert "no sessions" in (error.details() or "")


def test_start_with_the_same_key_returns_the_first_task(client: Client, started: Started) -> None:
    key = started.task.task.idempotency_key
    tasks_before = fine_tuning_task_ids(client)
    collecting = collecting_batch(client)

    again = client.start_fine_tuning(
        idempotency_key=key, deploy_as_blue=True, hyperparameters=HYPERPARAMETERS, timeout=60
    )
    assert again.task.task_id == started.task.task.task_id
    assert again.batch_id == started.batch
    # Nothing new: no task, and the batch collecting now was not released.
    assert fine_tuning_task_ids(client) == tasks_before
    assert collecting_batch(client) == collecting

    changes: list[dict[str, Any]] = [
        {"deploy_as_blue": False, "hyperparameters": HYPERPARAMETERS},
        {"deploy_as_blue": True, "hyperparameters": {**HYPERPARAMETERS, "epochs": 2}},
        {"deploy_as_blue": True, "hyperparameters": HYPERPARAMETERS, "batch_id": collecting},
    ]
    for changed in changes:
        expect_error(
            partial(client.start_fine_tuning, idempotency_key=key, timeout=60, **changed),
            ALREADY,
            "idempotency_key",
        )
    assert fine_tuning_task_ids(client) == tasks_before
    assert collecting_batch(client) == collecting


def test_the_worker_fails_a_batch_with_too_few_examples(client: Client, started: Started) -> None:
    final = client.wait_for_task(started.task.task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_FAILED, final.error
    assert "fewer than the 4 needed" in final.error
    got = client.get_fine_tuning_task(started.task.task.task_id, timeout=60)
    assert got.task.status == common_pb2.TASK_STATUS_FAILED
    assert (got.batch_id, got.deploy_as_blue) == (started.batch, True)
    assert (got.model_id, got.mlflow_run_id, dict(got.metrics), got.deployable) == (
        "",
        "",
        {},
        False,
    )
    cleared = client.wait_for_task(started.cleared.task.task_id, timeout_seconds=300)
    assert cleared.status in {common_pb2.TASK_STATUS_FAILED, common_pb2.TASK_STATUS_CANCELED}


# --- GetFineTuningTask and ListFineTuningTasks ---------------------------------------------------


def test_get_returns_the_started_task(client: Client, started: Started) -> None:
    got = client.get_fine_tuning_task(started.task.task.task_id, timeout=60)
    assert got.task.task_id == started.task.task.task_id
    assert got.task.kind == common_pb2.TASK_KIND_FINE_TUNING
    assert got.task.create_time == started.task.task.create_time
    assert (got.batch_id, got.deploy_as_blue) == (started.batch, True)
    cleared = client.fine_tune.GetFineTuningTask(
        ft.GetFineTuningTaskRequest(task_id=started.cleared.task.task_id), timeout=60
    ).task
    assert (cleared.batch_id, cleared.deploy_as_blue) == (started.cleared_batch, False)


def test_list_pages_newest_first_without_duplicates(client: Client, started: Started) -> None:
    pages = list_pages(client, 1)
    assert all(len(page) == 1 for page in pages)
    tasks = [t for page in pages for t in page]
    ids = [t.task.task_id for t in tasks]
    assert len(set(ids)) == len(ids)
    assert ids == fine_tuning_task_ids(client)
    assert ids.index(started.task.task.task_id) < ids.index(started.cleared.task.task_id)
    times = [t.task.create_time.ToDatetime() for t in tasks]
    assert times == sorted(times, reverse=True)
    assert all(t.task.kind == common_pb2.TASK_KIND_FINE_TUNING for t in tasks)
    listed = {t.task.task_id: t for t in tasks}
    assert listed[started.task.task.task_id].batch_id == started.batch
    assert listed[started.task.task.task_id].deploy_as_blue
    # The same tasks TaskService lists as fine-tuning ones.
    reply = client.tasks.ListTasks(
        task_pb2.ListTasksRequest(kind=common_pb2.TASK_KIND_FINE_TUNING, page_size=1000)
    )
    assert [t.task_id for t in reply.tasks] == ids


def test_list_clamps_a_large_page_size(client: Client, started: Started) -> None:
    reply = client.fine_tune.ListFineTuningTasks(
        ft.ListFineTuningTasksRequest(page_size=5000), timeout=60
    )
    assert 2 <= len(reply.tasks) <= 1000


# --- bad input ------------------------------------------------------------------------------------


def hyper(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def start(**kw: Any) -> ft.StartFineTuningRequest:
    return ft.StartFineTuningRequest(**kw)


LONG_BATCH = "ft-" + "b" * 126  # 129 characters
START_CASES = [
    pytest.param(start(idempotency_key="k" * 257), BAD, "idempotency_key", id="key-257"),
    pytest.param(start(batch_id="ft-no-such-batch"), NOT_FOUND, "batch_id", id="batch-unknown"),
    pytest.param(start(batch_id=LONG_BATCH), BAD, "batch_id", id="batch-129"),
    pytest.param(start(batch_id="ft-\x00"), BAD, "batch_id", id="batch-nul"),
    pytest.param(
        start(hyperparameters=hyper({"nope": 1})), BAD, "hyperparameters.nope", id="hp-unknown"
    ),
    pytest.param(
        start(hyperparameters=hyper({"learning_rate": -1})),
        BAD,
        "hyperparameters.learning_rate[0]",
        id="hp-negative-learning-rate",
    ),
    pytest.param(
        start(hyperparameters=hyper({"learning_rate": [1e-5, -1]})),
        BAD,
        "hyperparameters.learning_rate[1]",
        id="hp-second-value-bad",
    ),
    pytest.param(
        start(hyperparameters=hyper({"learning_rate": "fast"})),
        BAD,
        "hyperparameters.learning_rate[0]",
        id="hp-text-for-number",
    ),
    pytest.param(
        start(hyperparameters=hyper({"learning_rate": True})),
        BAD,
        "hyperparameters.learning_rate[0]",
        id="hp-bool-for-number",
    ),
    pytest.param(
        start(hyperparameters=hyper({"loss": "nope"})),
        BAD,
        "hyperparameters.loss[0]",
        id="hp-unknown-loss",
    ),
    pytest.param(
        start(hyperparameters=hyper({"epochs": 1.5})),
        BAD,
        "hyperparameters.epochs[0]",
        id="hp-fractional-epochs",
    ),
    pytest.param(
        start(hyperparameters=hyper({"epochs": 0})),
        BAD,
        "hyperparameters.epochs[0]",
        id="hp-zero-epochs",
    ),
    pytest.param(
        start(hyperparameters=hyper({"loss": []})), BAD, "hyperparameters.loss", id="hp-empty-list"
    ),
    pytest.param(
        start(hyperparameters=hyper({"epochs": list(range(1, 18))})),
        BAD,
        "hyperparameters.epochs",
        id="hp-17-values",
    ),
    pytest.param(
        start(hyperparameters=hyper({"learning_rate": math.nan})),
        BAD,
        "hyperparameters",
        id="hp-nan",
    ),
    pytest.param(
        start(hyperparameters=hyper({"loss": "mnrl\x00"})), BAD, "hyperparameters", id="hp-nul"
    ),
    pytest.param(
        start(hyperparameters=hyper({"loss": "x" * 17000})),
        BAD,
        "hyperparameters",
        id="hp-over-16-kib",
    ),
]


@pytest.mark.parametrize(("request_message", "code", "field"), START_CASES)
def test_bad_start_is_refused_naming_the_field(
    client: Client, request_message: ft.StartFineTuningRequest, code: grpc.StatusCode, field: str
) -> None:
    expect_error(lambda: client.fine_tune.StartFineTuning(request_message, timeout=60), code, field)


def test_refused_starts_create_no_task_and_release_no_batch(client: Client) -> None:
    tasks_before = fine_tuning_task_ids(client)
    collecting = collecting_batch(client)
    sessions_before = batch_session_ids(client, collecting)
    requests = [cast(ft.StartFineTuningRequest, case.values[0]) for case in START_CASES]
    # The same refusals when they name the batch that collects now.
    for case in START_CASES:
        request = ft.StartFineTuningRequest()
        request.CopyFrom(cast(ft.StartFineTuningRequest, case.values[0]))
        if not request.batch_id:
            request.batch_id = collecting
            requests.append(request)
    for request in requests:
        with pytest.raises(grpc.RpcError):
            client.fine_tune.StartFineTuning(request, timeout=60)
    assert fine_tuning_task_ids(client) == tasks_before
    assert collecting_batch(client) == collecting
    assert sessions_before < batch_session_ids(client, collecting)


def test_a_refused_start_on_the_collecting_batch_names_the_field(client: Client) -> None:
    collecting = collecting_batch(client)
    request = ft.StartFineTuningRequest(
        batch_id=collecting, hyperparameters=to_struct({"loss": "nope"})
    )
    expect_error(
        lambda: client.fine_tune.StartFineTuning(request, timeout=60),
        BAD,
        "hyperparameters.loss[0]",
    )
    assert collecting_batch(client) == collecting


@pytest.fixture(scope="module")
def deletion_task_id(client: Client) -> str:
    """A task of another kind: the deletion of an item that was never stored."""
    request = upsert_pb2.DeleteItemsRequest(object_ids=["ft-never-stored"])
    reply: upsert_pb2.DeleteItemsResponse = client.upsert.DeleteItems(request, timeout=60)
    return reply.task.task_id


@pytest.mark.parametrize(
    ("task_id", "code"),
    [
        pytest.param("", BAD, id="empty"),
        pytest.param("not-a-uuid", BAD, id="malformed"),
        pytest.param("ft-\x00", BAD, id="nul"),
        pytest.param(str(uuid.UUID(int=424242)), NOT_FOUND, id="unknown"),
    ],
)
def test_get_bad_task_id(client: Client, task_id: str, code: grpc.StatusCode) -> None:
    request = ft.GetFineTuningTaskRequest(task_id=task_id)
    expect_error(lambda: client.fine_tune.GetFineTuningTask(request, timeout=60), code, "task_id")


def test_get_a_task_of_another_kind_is_not_found(client: Client, deletion_task_id: str) -> None:
    unknown = str(uuid.UUID(int=424242))
    errors = [
        expect_error(partial(client.get_fine_tuning_task, t, timeout=60), NOT_FOUND, "task_id")
        for t in [deletion_task_id, unknown]
    ]
    # The same answer as for an unknown id: the service does not reveal other kinds of task.
    details = [
        (e.details() or "").replace(t, "<id>")
        for e, t in zip(errors, [deletion_task_id, unknown], strict=True)
    ]
    assert details[0] == details[1]
    # TaskService still serves it.
    got = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=deletion_task_id), timeout=60).task
    assert got.kind == common_pb2.TASK_KIND_DELETION


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(
            ft.ListFineTuningTasksRequest(page_token="garbage!!"), "page_token", id="garbage-token"
        ),
        pytest.param(
            ft.ListFineTuningTasksRequest(page_token="e30"), "page_token", id="token-empty-json"
        ),
        pytest.param(
            ft.ListFineTuningTasksRequest(page_token="x" * 5000), "page_token", id="token-5000"
        ),
        pytest.param(
            ft.ListFineTuningTasksRequest(page_size=-1), "page_size", id="negative-page-size"
        ),
    ],
)
def test_bad_list_is_refused_naming_the_field(
    client: Client, request_message: ft.ListFineTuningTasksRequest, field: str
) -> None:
    expect_error(
        lambda: client.fine_tune.ListFineTuningTasks(request_message, timeout=60), BAD, field
    )


def test_list_token_of_another_task_list_is_refused(client: Client, started: Started) -> None:
    """A TaskService.ListTasks token of other filters, even over the same tasks, is refused."""
    every_status = [
        common_pb2.TASK_STATUS_PENDING,
        common_pb2.TASK_STATUS_PROCESSING,
        common_pb2.TASK_STATUS_DONE,
        common_pb2.TASK_STATUS_FAILED,
        common_pb2.TASK_STATUS_CANCELED,
    ]
    for other in [
        task_pb2.ListTasksRequest(page_size=1),
        task_pb2.ListTasksRequest(
            page_size=1, kind=common_pb2.TASK_KIND_FINE_TUNING, statuses=every_status
        ),
    ]:
        first = client.tasks.ListTasks(other, timeout=60)
        assert first.next_page_token
        request = ft.ListFineTuningTasksRequest(page_size=1, page_token=first.next_page_token)
        expect_error(
            partial(client.fine_tune.ListFineTuningTasks, request, timeout=60), BAD, "page_token"
        )


def test_every_fine_tune_rpc_is_covered() -> None:
    methods = {m.name for m in ft.DESCRIPTOR.services_by_name["FineTuneService"].methods}
    assert methods == {"StartFineTuning", "GetFineTuningTask", "ListFineTuningTasks"}
