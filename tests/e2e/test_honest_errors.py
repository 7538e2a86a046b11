"""Errors that neither lie nor leak, on a real stack (issue 13, finding 6): NUL characters,
undecodable requests and unknown enum values are INVALID_ARGUMENT naming the field; a task that
fails on an unexpected error shows its callers one line (the traceback is in the worker's log);
PostgreSQL stopped is UNAVAILABLE with health NOT_SERVING, and both recover when it is back.

The stack runs on a PostgreSQL of this module's own, so that stopping it touches no other test.
The unit-level checks: tests/unit/test_request_checks.py, test_interceptor_over_grpc.py,
test_error_statuses.py; the health watch: tests/integration/test_dependency_health.py.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, search_pb2, task_pb2, upsert_pb2
from es_cli.embedded import EmbeddedPostgres, start_postgres
from es_harness.throwaway import StackInfo, ThrowawayStack
from tests.e2e.conftest import NO_TRITON
from tests.e2e.grpc_errors import expect_error
from tests.e2e.test_bad_input import all_task_ids, run_async
from tests.unit.test_request_checks import over_nested_count_request, truncated_count_request

pytestmark = pytest.mark.e2e

BAD = grpc.StatusCode.INVALID_ARGUMENT
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
UPSERT = "embedding_studio.v1.UpsertService"
VEC = [1.0] + [0.0] * 383


@pytest.fixture(scope="module")
def pg_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("own-pg")) / "data"


@pytest.fixture(scope="module")
def postgres(pg_dir: Path) -> Iterator[list[EmbeddedPostgres]]:
    """The module's PostgreSQL, in a list: the last test stops it and starts a new server."""
    servers = [start_postgres(pg_dir)]
    yield servers
    servers[-1].stop()


@pytest.fixture(scope="module")
def own_stack(
    tmp_path_factory: pytest.TempPathFactory, postgres: list[EmbeddedPostgres]
) -> Iterator[StackInfo]:
    env = {
        "ES_POSTGRES_DSN": postgres[0].dsn,
        "ES_HEALTH_CHECK_SECONDS": "1",
        "ES_SWEEPER_INTERVAL_SECONDS": "2",
        **NO_TRITON,
    }
    with ThrowawayStack(Path(tmp_path_factory.mktemp("honest")), extra_env=env) as info:
        yield info


@pytest.fixture(scope="module")
def es(own_stack: StackInfo) -> Iterator[Client]:
    with Client(own_stack.grpc_address) as client:
        yield client


def test_nul_in_ids_and_keys_is_refused_naming_the_field(es: Client) -> None:
    item = upsert_pb2.UpsertItem(object_id="he-1", parts=[common_pb2.ItemPart(vector=VEC)])
    before = all_task_ids(es)
    for call, field in [
        (
            lambda: es.search.Search(
                search_pb2.SearchRequest(query_vector={"values": VEC}, collection_id="blue\x00")
            ),
            "collection_id",
        ),
        (
            lambda: es.upsert.UpsertItems(
                upsert_pb2.UpsertItemsRequest(items=[item], collection_id="c\x00")
            ),
            "collection_id",
        ),
        (
            lambda: es.upsert.UpsertItems(
                upsert_pb2.UpsertItemsRequest(items=[item], idempotency_key="k\x00")
            ),
            "idempotency_key",
        ),
        (
            lambda: es.upsert.DeleteItems(
                upsert_pb2.DeleteItemsRequest(object_ids=["he-1"], idempotency_key="\x00")
            ),
            "idempotency_key",
        ),
    ]:
        error = expect_error(call, BAD, field)
        assert "NUL" in (error.details() or "")
    assert all_task_ids(es) == before


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(truncated_count_request(), id="truncated"),
        pytest.param(over_nested_count_request(60), id="over-nested"),
    ],
)
def test_a_request_that_does_not_decode_is_invalid_argument(
    own_stack: StackInfo, data: bytes
) -> None:
    with grpc.insecure_channel(own_stack.grpc_address) as channel:
        raw = channel.unary_unary("/embedding_studio.v1.SearchService/CountItems")
        error = expect_error(lambda: raw(data, timeout=30), BAD)
    details = error.details() or ""
    assert "cannot be decoded" in details
    for python_word in ("Error", "Exception", "class", "Traceback"):
        assert python_word not in details


def test_an_unknown_enum_value_is_invalid_argument_naming_the_field(es: Client) -> None:
    request = search_pb2.CountItemsRequest()
    request.filter.match.field, request.filter.match.query = "title", "fever"
    request.filter.match.operator = 7  # type: ignore[assignment]
    expect_error(lambda: es.search.CountItems(request, timeout=30), BAD, "filter.match.operator")
    tasks = task_pb2.ListTasksRequest()
    tasks.statuses.append(42)  # type: ignore[arg-type]
    expect_error(lambda: es.tasks.ListTasks(tasks, timeout=30), BAD, "statuses[0]")
    # The positive control: a known operator is answered.
    request.filter.match.operator = common_pb2.MATCH_OPERATOR_AND
    assert es.search.CountItems(request, timeout=30).count >= 0


async def _insert_broken_task(dsn: str) -> str:
    """An upsertion row without items, left unsent: the sweeper sends it and the worker fails
    on it with an exception no library check expected (KeyError)."""
    conn = await asyncpg.connect(dsn)
    try:
        collection_id = await conn.fetchval("SELECT collection_id FROM blue_collection")
        task_id = uuid.uuid4()
        await conn.execute(
            "INSERT INTO tasks (task_id, kind, status, params, create_time)"
            " VALUES ($1, 'upsertion', 'pending', $2::jsonb, now() - interval '1 minute')",
            task_id,
            json.dumps({"collection_id": collection_id}),
        )
        return str(task_id)
    finally:
        await conn.close()


def test_a_failed_task_shows_one_line_and_the_worker_log_the_traceback(
    es: Client, own_stack: StackInfo
) -> None:
    task_id = run_async(_insert_broken_task(own_stack.postgres_dsn))
    final = es.wait_for_task(task_id, timeout_seconds=120)
    assert final.status == common_pb2.TASK_STATUS_FAILED
    assert final.error == "KeyError: 'items'"
    log = own_stack.log("worker")
    assert f"task {task_id} failed" in log and "Traceback" in log


def _eventually(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return False


def _health(address: str, service: str) -> int:
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return int(reply.status)


def _get_task_code(es: Client, task_id: str) -> grpc.StatusCode:
    try:
        es.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), timeout=30)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_postgres_stopped_is_unavailable_and_health_follows_then_both_recover(
    es: Client, own_stack: StackInfo, postgres: list[EmbeddedPostgres], pg_dir: Path
) -> None:
    """Runs last in this module: it stops the module's PostgreSQL and starts it again."""
    address = own_stack.grpc_address
    task = es.upsert_items([{"object_id": "he-kept", "parts": [{"vector": VEC}]}])
    assert es.wait_for_task(task.task_id, 120).status == common_pb2.TASK_STATUS_DONE
    assert _eventually(lambda: _health(address, "") == SERVING, 30)
    assert _health(address, UPSERT) == SERVING

    postgres[0].stop()
    assert _eventually(lambda: _get_task_code(es, task.task_id) == UNAVAILABLE, 30)
    for call in [
        lambda: es.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.task_id), timeout=30),
        lambda: es.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["he-kept"]), timeout=30),
        lambda: es.search.CountItems(search_pb2.CountItemsRequest(), timeout=30),
    ]:
        error = expect_error(call, UNAVAILABLE)
        details = error.details() or ""
        assert "the database cannot be reached now" in details and "see server log" not in details
        assert str(pg_dir) not in details
    assert _eventually(lambda: _health(address, "") == NOT_SERVING, 15)
    assert _health(address, UPSERT) == NOT_SERVING
    assert _health(address, "embedding_studio.v1.SuggestionService") == NOT_SERVING

    postgres.append(start_postgres(pg_dir))
    assert postgres[-1].dsn == own_stack.postgres_dsn
    assert _eventually(lambda: _get_task_code(es, task.task_id) == grpc.StatusCode.OK, 60)
    reply = es.upsert.GetItems(upsert_pb2.GetItemsRequest(object_ids=["he-kept"]))
    assert [i.object_id for i in reply.items] == ["he-kept"]
    assert _eventually(lambda: _health(address, "") == SERVING, 15)
    assert _health(address, UPSERT) == SERVING
    after = es.upsert_items([{"object_id": "he-after", "parts": [{"vector": VEC}]}])
    assert es.wait_for_task(after.task_id, 120).status == common_pb2.TASK_STATUS_DONE
