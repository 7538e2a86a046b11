"""A real in-process gRPC server that refuses the first calls of each method with UNAVAILABLE:
what the clients' retries are tested against (tests/unit/test_client_channel.py for Python,
tests/e2e/test_typescript_sdk.py for TypeScript)."""

from __future__ import annotations

import threading
from concurrent import futures

import grpc

from embedding_studio.v1 import (
    common_pb2,
    search_pb2,
    search_pb2_grpc,
    upsert_pb2,
    upsert_pb2_grpc,
)


class Flaky:
    """Counts calls per method and refuses the first ``failures`` of each with UNAVAILABLE."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}
        self.deadlines: dict[str, float | None] = {}
        self._lock = threading.Lock()

    def serve(self, method: str, context: grpc.ServicerContext) -> bool:
        """Whether this call gets an answer (False: it was refused)."""
        with self._lock:
            self.calls[method] = self.calls.get(method, 0) + 1
            self.deadlines[method] = context.time_remaining()
            return self.calls[method] > self.failures


class FlakySearch(search_pb2_grpc.SearchServiceServicer):
    def __init__(self, flaky: Flaky) -> None:
        self.flaky = flaky

    def Search(
        self, request: search_pb2.SearchRequest, context: grpc.ServicerContext
    ) -> search_pb2.SearchResponse:
        if not self.flaky.serve("Search", context):
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return search_pb2.SearchResponse(
            results=[common_pb2.SearchResult(object_id=request.query_text)]
        )


class FlakyUpsert(upsert_pb2_grpc.UpsertServiceServicer):
    def __init__(self, flaky: Flaky) -> None:
        self.flaky = flaky

    def UpsertItems(
        self, request: upsert_pb2.UpsertItemsRequest, context: grpc.ServicerContext
    ) -> upsert_pb2.UpsertItemsResponse:
        if not self.flaky.serve("UpsertItems", context):
            context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return upsert_pb2.UpsertItemsResponse(task=common_pb2.Task(task_id="t1"))


def start_flaky(flaky: Flaky) -> tuple[grpc.Server, str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    search_pb2_grpc.add_SearchServiceServicer_to_server(FlakySearch(flaky), server)  # type: ignore[abstract]
    upsert_pb2_grpc.add_UpsertServiceServicer_to_server(FlakyUpsert(flaky), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
