"""The workers' metrics: tasks by kind and final status, their durations, items written, and
the depth of each queue (read from Redis at scrape time: one LLEN per queue).

Workers run prometheus_client in multiprocess mode (``es_core.observability.multiprocess``),
so a prefork pool's children count into the one /metrics their worker serves."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

TASKS = Counter(
    "es_tasks_total",
    "Task runs by kind and outcome (done, failed, waiting, canceled).",
    ["kind", "status"],
)
TASK_SECONDS = Histogram(
    "es_task_duration_seconds",
    "Seconds one task run took, from its claim to its outcome, by kind.",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600),
)
ITEMS_WRITTEN = Counter(
    "es_items_written_total",
    "Items upserted or imported into collections, by task kind (rate() gives items/s).",
    ["kind"],
)
# The result keys that count items written.
_WRITTEN_KEYS = ("upserted_count", "imported_count")


def task_ran(kind: str, status: str, seconds: float, result: Any) -> None:
    TASKS.labels(kind, status).inc()
    TASK_SECONDS.labels(kind).observe(seconds)
    if isinstance(result, dict):
        written = sum(int(result.get(key) or 0) for key in _WRITTEN_KEYS)
        if written:
            ITEMS_WRITTEN.labels(kind).inc(written)


class QueueDepth(Collector):
    """``es_queue_depth{queue}``: messages waiting in each Celery queue on Redis."""

    def __init__(self, broker_url: str, queues: Sequence[str], timeout: float = 1.0) -> None:
        self._queues = list(queues)
        self._redis = redis.Redis.from_url(
            broker_url, socket_timeout=timeout, socket_connect_timeout=timeout
        )

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "es_queue_depth", "Messages waiting in each Celery queue.", labels=["queue"]
        )
        try:
            pipe = self._redis.pipeline(transaction=False)
            for queue in self._queues:
                pipe.llen(queue)
            depths = pipe.execute()
        except redis.RedisError as exc:
            log.warning("queue depth: the broker cannot be read now (%s)", type(exc).__name__)
            return [family]
        for queue, depth in zip(self._queues, depths, strict=True):
            family.add_metric([queue], float(depth))
        return [family]
