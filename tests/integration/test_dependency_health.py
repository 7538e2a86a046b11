"""The health service follows the dependencies each service needs (es_server/dependency_health.py),
probed for real: the session's PostgreSQL, a Redis started and stopped here, a database and a
Triton at closed ports. The whole server with PostgreSQL stopped and restarted:
tests/e2e/test_honest_errors.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from grpc_health.v1 import health, health_pb2
from pydantic import SecretStr

from es_broker.celery_sender import CelerySender, broker_app
from es_cli.embedded import EmbeddedPostgres, free_port, start_redis
from es_core.config import Settings
from es_core.encoders.triton import server_live
from es_server.app import SERVICE_NAMES
from es_server.dependency_health import (
    BROKER,
    LIVENESS,
    NOT_SERVING,
    POSTGRESQL,
    SERVING,
    TRITON,
    PostgresProbe,
    Probe,
    down_now,
    follow_dependencies,
    in_thread,
    needs_by_service,
    statuses,
)

pytestmark = pytest.mark.integration

SEARCH, UPSERT, TASKS = (
    "embedding_studio.v1.SearchService",
    "embedding_studio.v1.UpsertService",
    "embedding_studio.v1.TaskService",
)


def test_every_served_service_has_its_needs() -> None:
    for through_triton in (False, True):
        needs = needs_by_service(through_triton)
        assert sorted(needs) == sorted(["", LIVENESS, *SERVICE_NAMES])
        assert needs[LIVENESS] == frozenset()
        assert all(POSTGRESQL in needed for name, needed in needs.items() if needed)
        assert (TRITON in needs[SEARCH]) is through_triton
    assert needs_by_service(False)[UPSERT] == {POSTGRESQL, BROKER}
    # Category writes are encoded by a worker; PredictCategories is SearchService's.
    assert needs_by_service(False)["embedding_studio.v1.CategoryService"] == {POSTGRESQL, BROKER}


def test_a_service_is_not_serving_while_a_dependency_it_needs_is_down() -> None:
    needs = needs_by_service(True)
    assert set(statuses(needs, set()).values()) == {SERVING}
    broker_down = statuses(needs, {BROKER})
    assert (broker_down[UPSERT], broker_down[SEARCH], broker_down[""]) == (
        NOT_SERVING,
        SERVING,
        SERVING,
    )
    assert statuses(needs, {TRITON})[SEARCH] == NOT_SERVING
    assert statuses(needs, {TRITON})[TASKS] == SERVING
    database_down = statuses(needs, {POSTGRESQL})
    assert database_down.pop(LIVENESS) == SERVING
    assert set(database_down.values()) == {NOT_SERVING}


async def test_probes_see_what_answers_and_what_does_not(
    pg_server: EmbeddedPostgres, tmp_path: Path
) -> None:
    redis = start_redis(tmp_path / "redis", free_port())
    sender = CelerySender(
        broker_app(Settings(redis_url=redis.url, redis_password=SecretStr(redis.password)))
    )
    database = PostgresProbe(pg_server.dsn)
    nowhere = PostgresProbe(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres")
    triton_port = free_port()
    probes: dict[str, Probe] = {
        "database": database,
        "closed-database": nowhere,
        "broker": in_thread(sender.reachable),
        "closed-triton": in_thread(lambda t: server_live(f"127.0.0.1:{triton_port}", timeout=t)),
    }
    try:
        assert await down_now(probes, 5) == {"closed-database", "closed-triton"}
        assert await down_now(probes, 5) == {"closed-database", "closed-triton"}  # reused
        redis.stop()
        assert await down_now(probes, 5) == {"closed-database", "closed-triton", "broker"}
    finally:
        redis.stop()
        await database.close()
        await nowhere.close()


async def test_the_watch_sets_each_service_from_its_probes() -> None:
    """Two rounds: the broker answers, then it does not."""
    answers = {BROKER: True}

    async def database(timeout: float) -> bool:
        return True

    async def broker(timeout: float) -> bool:
        return answers[BROKER]

    servicer = health.aio.HealthServicer()
    watch = asyncio.create_task(
        follow_dependencies(
            servicer,
            needs_by_service(False),
            {POSTGRESQL: database, BROKER: broker},
            interval=0.05,
            timeout=1,
        )
    )
    try:
        assert await _status_soon(servicer, UPSERT, SERVING)
        answers[BROKER] = False
        assert await _status_soon(servicer, UPSERT, NOT_SERVING)
        assert await _status(servicer, SEARCH) == SERVING
    finally:
        watch.cancel()


async def test_liveness_serves_while_the_database_is_down() -> None:
    """The liveness probe's service needs nothing: a database outage takes every other service
    out of rotation but does not ask the orchestrator to restart the server."""

    async def down(timeout: float) -> bool:
        return False

    servicer = health.aio.HealthServicer()
    watch = asyncio.create_task(
        follow_dependencies(
            servicer,
            needs_by_service(False),
            {POSTGRESQL: down, BROKER: down},
            interval=0.05,
            timeout=1,
        )
    )
    try:
        assert await _status_soon(servicer, "", NOT_SERVING)
        assert await _status(servicer, LIVENESS) == SERVING
        await servicer.enter_graceful_shutdown()
        assert await _status(servicer, LIVENESS) == NOT_SERVING
    finally:
        watch.cancel()


class NotSetYet(Exception):
    """What the health servicer's abort means here: no status was set for the service yet."""


class CheckContext:
    async def abort(self, code: object) -> None:
        raise NotSetYet


async def _status(servicer: health.aio.HealthServicer, service: str) -> int | None:
    request = health_pb2.HealthCheckRequest(service=service)
    try:
        reply = await servicer.Check(request, CheckContext())  # type: ignore[arg-type]
    except NotSetYet:
        return None
    return int(reply.status)


async def _status_soon(servicer: health.aio.HealthServicer, service: str, wanted: int) -> bool:
    for _ in range(100):
        if await _status(servicer, service) == wanted:
            return True
        await asyncio.sleep(0.05)
    return False
