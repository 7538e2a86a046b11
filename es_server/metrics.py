"""The server's RPC metrics (names as go-grpc-prometheus's, with the ``es_`` prefix), and one
method's label children, made once so a call only increments and observes."""

from __future__ import annotations

import grpc
from prometheus_client import Counter, Gauge, Histogram

HANDLED = Counter(
    "es_grpc_server_handled_total",
    "RPCs completed, by service, method and final gRPC status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
HANDLING_SECONDS = Histogram(
    "es_grpc_server_handling_seconds",
    "Seconds from an RPC's start to its status, by service and method.",
    ["grpc_service", "grpc_method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
IN_FLIGHT = Gauge(
    "es_grpc_server_in_flight",
    "RPCs started and not yet completed, by service and method.",
    ["grpc_service", "grpc_method"],
)


class MethodMetrics:
    """One method's children of the RPC metrics."""

    def __init__(self, full_method: str) -> None:
        # "/embedding_studio.v1.SearchService/Search" -> ("embedding_studio.v1.SearchService",
        # "Search")
        service, _, method = full_method.lstrip("/").rpartition("/")
        self.service, self.method = service, method
        self.seconds = HANDLING_SECONDS.labels(service, method)
        self.in_flight = IN_FLIGHT.labels(service, method)
        self._handled: dict[grpc.StatusCode, Counter] = {}

    def handled(self, code: grpc.StatusCode) -> Counter:
        child = self._handled.get(code)
        if child is None:
            child = self._handled[code] = HANDLED.labels(self.service, self.method, code.name)
        return child
