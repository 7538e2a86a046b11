"""Observability of a whole stack (README "Observability"): the server's and the worker's
/metrics count what was done, and with JSON logs one UpsertItems call's request id is in the
server's log line and in the worker's lines for the task the call created."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import grpc
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, search_pb2, upsert_pb2
from es_cli.embedded import free_ports
from es_harness.throwaway import StackInfo, ThrowawayStack
from tests.e2e.conftest import NO_TRITON

T = TypeVar("T")

DIM = 384  # the default plugin's model
ITEMS = 20
REQUEST_ID = "e2e-observe-4242"
SEARCH = {"grpc_service": "embedding_studio.v1.SearchService", "grpc_method": "Search"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackInfo, int, int]]:
    # The worker groups take the worker port and the four above it.
    server_port, worker_port = free_ports(2)
    env = {
        **NO_TRITON,
        "ES_METRICS_PORT": str(server_port),
        "ES_WORKER_METRICS_PORT": str(worker_port),
        "ES_LOG_FORMAT": "json",
    }
    with ThrowawayStack(tmp_path_factory.mktemp("observed") / "data", extra_env=env) as info:
        yield info, server_port, worker_port


def samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def answering(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``samples(port)``; a port not listening yet (a worker still starting) fails an assert."""
    try:
        return samples(port)
    except urllib.error.URLError as exc:
        raise AssertionError(f"nothing answers on port {port} yet: {exc.reason}") from None


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def json_lines(path: Path) -> list[dict[str, object]]:
    """The log's JSON lines; every line that looks like an object must be one."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.startswith("{")]
    return [json.loads(line) for line in lines]


def eventually(check: Callable[[], T], seconds: float = 15.0) -> T:
    """``check()``'s value once it stops failing its asserts; its last failure after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_metrics_and_json_logs_follow_one_request(stack: tuple[StackInfo, int, int]) -> None:
    info, server_port, worker_port = stack
    vectors = np.random.default_rng(0).standard_normal((ITEMS, DIM)).astype(np.float32)
    request = upsert_pb2.UpsertItemsRequest(
        items=[
            upsert_pb2.UpsertItem(
                object_id=f"o{i}",
                parts=[common_pb2.ItemPart(part_id="0", vector=vectors[i].tolist(), text="t")],
            )
            for i in range(ITEMS)
        ]
    )
    with Client(info.grpc_address) as client:
        reply, call = client.upsert.UpsertItems.with_call(
            request, metadata=(("x-request-id", REQUEST_ID),), timeout=60
        )
        assert dict(call.trailing_metadata())["x-request-id"] == REQUEST_ID
        task = client.wait_for_task(reply.task.task_id, timeout_seconds=300)
        assert task.status == common_pb2.TASK_STATUS_DONE, task.error

        query = search_pb2.SearchRequest(
            query_vector=common_pb2.Vector(values=vectors[0].tolist()), limit=5
        )
        found, call = client.search.Search.with_call(query, timeout=60)
        assert found.results[0].object_id == "o0"
        generated = dict(call.trailing_metadata())["x-request-id"]
        assert generated and generated != REQUEST_ID
        bad = search_pb2.SearchRequest(query_vector=common_pb2.Vector(values=[1.0, 2.0]), limit=5)
        with pytest.raises(grpc.RpcError) as refused:
            client.search.Search(bad, timeout=60)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    server = samples(server_port)
    assert value(server, "es_grpc_server_handled_total", **SEARCH, grpc_code="OK") == 1
    assert (
        value(server, "es_grpc_server_handled_total", **SEARCH, grpc_code="INVALID_ARGUMENT") == 1
    )
    assert value(server, "es_grpc_server_handling_seconds_count", **SEARCH) == 2
    assert value(server, "es_grpc_server_handling_seconds_bucket", **SEARCH, le="+Inf") == 2
    assert value(server, "es_grpc_server_in_flight", **SEARCH) == 0
    upserts = {"grpc_service": "embedding_studio.v1.UpsertService", "grpc_method": "UpsertItems"}
    assert value(server, "es_grpc_server_handled_total", **upserts, grpc_code="OK") == 1

    # The worker counts and logs a task just after it records the task DONE, which is what
    # the client saw: read its metrics and log until they show it (a few seconds at most).
    def worker_counted() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        worker = answering(worker_port)
        assert value(worker, "es_tasks_total", kind="upsertion", status="done") == 1
        return worker

    worker = eventually(worker_counted)
    assert value(worker, "es_task_duration_seconds_count", kind="upsertion") == 1
    assert value(worker, "es_items_written_total", kind="upsertion") == ITEMS
    assert value(worker, "es_queue_depth", queue="upsertion") == 0
    # Under `es up` every worker group serves its own metrics, on the next port up (the
    # fine-tuning group is the fourth): it ran nothing here, and says so.
    fine_tuning = eventually(lambda: answering(worker_port + 3))
    assert value(fine_tuning, "es_tasks_total", kind="upsertion", status="done") == 0
    assert ("es_queue_depth", frozenset({("queue", "fine_tuning")})) in fine_tuning

    def worker_logged_done() -> list[dict[str, Any]]:
        lines = json_lines(info.data_dir / "logs" / "worker-upsertion.log")
        ran = [line for line in lines if line.get("request_id") == REQUEST_ID]
        assert any("done" in str(line["message"]) for line in ran)
        return lines

    eventually(worker_logged_done)
    server_lines = json_lines(info.data_dir / "logs" / "server.log")
    worker_lines = json_lines(info.data_dir / "logs" / "worker-upsertion.log")
    assert server_lines and worker_lines
    assert all({"time", "level", "logger", "message"} <= set(line) for line in server_lines)
    created = [line for line in server_lines if line.get("request_id") == REQUEST_ID]
    assert any(task.task_id in str(line["message"]) for line in created)
    ran = [line for line in worker_lines if line.get("request_id") == REQUEST_ID]
    assert {line.get("task_id") for line in ran} == {task.task_id}
    assert any("done" in str(line["message"]) for line in ran)
