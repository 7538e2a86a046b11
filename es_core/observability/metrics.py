"""The Prometheus metrics both processes share, and serving /metrics.

A worker runs prometheus_client in multiprocess mode (``multiprocess.py``): every metric here
then writes to files that one collector sums at scrape time, whatever process wrote them."""

from __future__ import annotations

import logging
import os

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import REGISTRY, Collector

log = logging.getLogger(__name__)

# Seconds: from a fast query encode to a long batch of items.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

TRITON_REQUEST_SECONDS = Histogram(
    "es_triton_request_seconds",
    "Seconds one Triton inference request took, by Triton model (failed ones too).",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)


def serve_metrics(host: str, port: int, extra: list[Collector] | None = None) -> None:
    """Serve /metrics on ``host:port`` from a daemon thread: this process's metrics, or in
    multiprocess mode those of every process writing to the same directory, plus ``extra``."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = REGISTRY
    for collector in extra or []:
        registry.register(collector)
    start_http_server(port, addr=host, registry=registry)
    log.info("metrics on http://%s:%d/metrics", host, port)
