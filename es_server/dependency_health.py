"""The health service follows the dependencies each service needs, so that a load balancer or
an orchestrator stops sending a service's calls to a server that cannot answer them.

Every ``health_check_seconds`` the server probes PostgreSQL (its own connection, not the
pool's, so that a pool busy with slow queries does not read as a database that is down), the
broker and, when it encodes through Triton, Triton; a probe that fails or does not answer
within ``health_check_timeout_seconds`` counts as down. A service is NOT_SERVING while any
dependency it needs is down:

- every service needs PostgreSQL, and so does the server as a whole (service ""): nothing it
  answers works without the database;
- SearchService also needs Triton when the server encodes through it (text queries);
- UpsertService, CategoryService, FineTuneService and DeploymentService also need the broker:
  their calls start work that only a worker does (the task rows are kept, but nothing runs
  until it is back; CategoryService's writes are encoded by a worker, its listing reads rows);
- the other services need nothing else (sessions, events, ranking specs, tasks and suggestion
  phrases are rows in PostgreSQL; a task they start waits for the sweeper like any other);
- SearchService.PredictCategories is part of SearchService (PostgreSQL, Triton for text).

The service named ``liveness`` needs nothing: it is SERVING from the first round for as long as
the process answers (until graceful shutdown), so an orchestrator's liveness probe restarts a
server that hangs, not every server while the database is down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

import asyncpg
from grpc_health.v1 import health, health_pb2

from embedding_studio.v1 import (
    categories_pb2,
    clickstream_pb2,
    deployment_pb2,
    fine_tune_pb2,
    keys_pb2,
    ranking_pb2,
    search_pb2,
    suggestion_pb2,
    task_pb2,
    upsert_pb2,
)
from es_core.storage.db import connect_or_unavailable

log = logging.getLogger(__name__)

POSTGRESQL, BROKER, TRITON = "postgresql", "broker", "triton"
LIVENESS = "liveness"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

Probe = Callable[[float], Awaitable[bool]]


def _service(module: object, name: str) -> str:
    return str(module.DESCRIPTOR.services_by_name[name].full_name)  # type: ignore[attr-defined]


def needs_by_service(through_triton: bool) -> dict[str, frozenset[str]]:
    """The dependencies each service needs, by its full name ("" for the whole server)."""
    database = frozenset({POSTGRESQL})
    with_broker = database | {BROKER}
    return {
        LIVENESS: frozenset(),
        "": database,
        _service(search_pb2, "SearchService"): database | {TRITON} if through_triton else database,
        _service(clickstream_pb2, "ClickstreamService"): database,
        _service(upsert_pb2, "UpsertService"): with_broker,
        _service(fine_tune_pb2, "FineTuneService"): with_broker,
        _service(deployment_pb2, "DeploymentService"): with_broker,
        _service(ranking_pb2, "RankingService"): database,
        _service(task_pb2, "TaskService"): database,
        _service(keys_pb2, "KeyService"): database,
        _service(suggestion_pb2, "SuggestionService"): database,
        _service(categories_pb2, "CategoryService"): with_broker,
    }


def statuses(needs: Mapping[str, frozenset[str]], down: set[str]) -> dict[str, int]:
    """Each service's health status when the dependencies in ``down`` are down."""
    return {name: NOT_SERVING if needed & down else SERVING for name, needed in needs.items()}


class PostgresProbe:
    """``SELECT 1`` on a connection of its own, opened again after any failure."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._connection: asyncpg.Connection | None = None

    async def __call__(self, timeout: float) -> bool:
        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await connect_or_unavailable(self._dsn, timeout=timeout)
            return bool(await self._connection.fetchval("SELECT 1", timeout=timeout) == 1)
        except Exception:
            await self.close()
            raise

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.terminate()


def in_thread(check: Callable[[float], bool]) -> Probe:
    """A blocking check (its own client with its own timeout) run off the event loop."""

    async def probe(timeout: float) -> bool:
        return await asyncio.to_thread(check, timeout)

    return probe


async def down_now(probes: Mapping[str, Probe], timeout: float) -> set[str]:
    """The dependencies whose probe failed, raised or did not answer within ``timeout``."""

    async def is_up(probe: Probe) -> bool:
        try:
            return await asyncio.wait_for(probe(timeout), timeout)
        except Exception:
            return False

    results = await asyncio.gather(*(is_up(p) for p in probes.values()))
    return {name for name, up in zip(probes, results, strict=True) if not up}


async def follow_dependencies(
    servicer: health.aio.HealthServicer,
    needs: Mapping[str, frozenset[str]],
    probes: Mapping[str, Probe],
    *,
    interval: float,
    timeout: float,
) -> None:
    """Probe every ``interval`` seconds and set each service's status from what is down; runs
    until cancelled. The first round runs at once."""
    down: set[str] | None = None
    while True:
        now = await down_now(probes, timeout)
        if now != down:
            if now:
                log.warning("health: down: %s", ", ".join(sorted(now)))
            elif down:
                log.info("health: every dependency answers again")
            for name, status in statuses(needs, now).items():
                await servicer.set(name, status)
            down = now
        await asyncio.sleep(interval)
