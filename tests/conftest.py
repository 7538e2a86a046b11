"""Shared fixtures: one real embedded PostgreSQL (with pgvector) for the whole test session."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from embedding_studio.client import Client
from es_cli.embedded import EmbeddedPostgres, start_postgres
from es_core.config import Settings
from es_core.storage.db import create_pool
from es_core.storage.migrations import migrate
from es_harness.throwaway import StackInfo, ThrowawayStack


def pytest_configure(config: pytest.Config) -> None:
    """Every stack and process of the run shares one cache of model exports (an export takes
    seconds; each test stack has a data directory of its own)."""
    root = Path(__file__).resolve().parents[1]
    os.environ.setdefault("ES_EXPORTS_DIR", str(root / ".test-cache" / "exports"))


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("es-data"))


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = start_postgres(Path(tmp_path_factory.mktemp("pg")) / "data")
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pg_pool(pg_server: EmbeddedPostgres, settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a migrated database; tests create their own tables/collections inside it."""
    pool = await create_pool(settings, pg_server.dsn)
    async with pool.acquire() as conn:
        await migrate(conn)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    """`es up` with embedded Postgres, Redis, a Celery worker and the gRPC server."""
    data_dir = Path(tmp_path_factory.mktemp("stack"))
    env = {
        "ES_SWEEPER_INTERVAL_SECONDS": "2",
        # Fine-tuning e2e tests train on 64 tokens, half the default: a CPU step costs about
        # half as much, and what they check (registration, gate, lineage) does not depend on it.
        "ES_FINE_TUNING_MAX_SEQ_LENGTH": "64",
        # Reindexes rebuild users' copies in the destination (tests/e2e/test_deployment_api.py).
        "ES_REINDEX_USER_COPIES": "recompute",
        # The beat harvests suggestions from sessions every few seconds
        # (tests/e2e/test_suggestions_harvest.py), not every ten minutes.
        "ES_SUGGESTIONS_HARVEST_INTERVAL_SECONDS": "3",
    }
    with ThrowawayStack(data_dir, extra_env=env) as info:
        yield info


@pytest.fixture(scope="session")
def client(stack: StackInfo) -> Iterator[Client]:
    with Client(stack.grpc_address) as c:
        yield c


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def source_pg_dsn(pg_server: EmbeddedPostgres) -> str:
    """The DSN of a second database on the session's server: a customer's own PostgreSQL,
    read by the postgres loader (tests/source_postgres.py)."""
    from tests.source_postgres import create_source_database

    return await create_source_database(pg_server.dsn)


# Loaders: real source servers as processes (es_harness/source_servers.py).
@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from es_harness.source_servers import moto_s3

    with moto_s3() as url:
        yield url


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    from es_harness.source_servers import gcs_emulator

    with gcs_emulator() as url:
        yield url


@pytest.fixture(scope="session")
def http_root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP, and its base URL (ending with "/")."""
    from es_harness.source_servers import http_files

    root = Path(tmp_path_factory.mktemp("http-root"))
    with http_files(root) as url:
        yield root, url
