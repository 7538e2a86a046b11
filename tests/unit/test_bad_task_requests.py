"""Bad TaskService requests are refused naming the field, by the checks that run on what the
request carries (es_server/services/tasks.py, es_core/tasks/store.py); an unknown task needs
the database (tests/e2e/test_bad_input.py)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from embedding_studio.v1 import common_pb2, task_pb2
from es_core.pagination import check_page_size, time_cursor
from es_core.tasks.store import parse_task_id
from es_server.convert import task_kind_from_proto, task_statuses_from_proto
from tests.bad_requests import expect_refusal
from tests.page_tokens import TOKENS


def raw_enum(number: int) -> Any:
    """An enum number the contract does not define (proto3 enums are open on the wire)."""
    return number


@pytest.mark.parametrize(
    "request_message",
    [
        pytest.param(request_type(task_id=task_id), id=f"{rpc}-{name}")
        for rpc, request_type in [
            ("GetTask", task_pb2.GetTaskRequest),
            ("WatchTask", task_pb2.WatchTaskRequest),
            ("CancelTask", task_pb2.CancelTaskRequest),
            ("RestartTask", task_pb2.RestartTaskRequest),
        ]
        for name, task_id in [("empty-id", ""), ("not-a-uuid", "not-a-uuid"), ("nul-id", "\x00")]
    ],
)
def test_task_id_that_is_no_uuid_is_refused(request_message: Any) -> None:
    expect_refusal(lambda: parse_task_id(request_message.task_id), "task_id")


def test_a_uuid_is_a_task_id() -> None:
    assert parse_task_id(str(uuid.UUID(int=12345))) == uuid.UUID(int=12345)


def list_tasks_checks(request: task_pb2.ListTasksRequest) -> None:
    """ListTasks' checks in its order: page size, kind, statuses, then the page token (bound to
    the kind and statuses)."""
    check_page_size(request.page_size, default=50, maximum=1000)
    kind = task_kind_from_proto(request.kind)
    statuses = task_statuses_from_proto(request.statuses)
    time_cursor(TOKENS, request.page_token, {"kind": kind, "statuses": sorted(statuses)})


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(
            task_pb2.ListTasksRequest(page_size=-1), "page_size", id="list-negative-page-size"
        ),
        pytest.param(task_pb2.ListTasksRequest(kind=raw_enum(99)), "kind", id="list-unknown-kind"),
        pytest.param(
            task_pb2.ListTasksRequest(statuses=[common_pb2.TASK_STATUS_UNSPECIFIED]),
            "statuses[0]",
            id="list-unspecified-status",
        ),
        pytest.param(
            task_pb2.ListTasksRequest(statuses=[common_pb2.TASK_STATUS_DONE, raw_enum(42)]),
            "statuses[1]",
            id="list-unknown-status",
        ),
        pytest.param(
            task_pb2.ListTasksRequest(page_token="garbage"), "page_token", id="list-garbage-token"
        ),
    ],
)
def test_bad_list_tasks_is_refused_naming_the_field(
    request_message: task_pb2.ListTasksRequest, field: str
) -> None:
    expect_refusal(lambda: list_tasks_checks(request_message), field)
