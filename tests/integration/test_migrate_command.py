"""``es migrate``: a new database shows every migration pending with its checksum, then
applied; a second run applies nothing; an unreachable database fails with exit 1."""

from __future__ import annotations

import asyncio

import pytest

from es_cli.embedded import EmbeddedPostgres, free_port
from es_core.storage.migrations import available_migrations, checksum
from tests.cli_run import es
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.integration


def _rows(said: str) -> dict[int, list[str]]:
    """The table's rows by version: [name, status, applied time, checksum]."""
    rows = {}
    for line in said.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0].isdigit():
            rows[int(fields[0])] = fields[1:]
    return rows


async def _es(*argv: str, dsn: str) -> tuple[int, str]:
    return await asyncio.to_thread(es, *argv, env={"ES_POSTGRES_DSN": dsn})


async def test_status_lists_pending_then_applied_with_checksums(
    pg_server: EmbeddedPostgres,
) -> None:
    files = available_migrations()
    async with fresh_database(pg_server.dsn) as dsn:
        code, said = await _es("migrate", "--status", dsn=dsn)
        assert code == 0, said
        rows = _rows(said)
        assert sorted(rows) == [v for v, _, _ in files]
        for version, name, sql in files:
            assert rows[version] == [name, "pending", "-", checksum(sql)]
        assert f"0 applied, {len(files)} pending" in said

        code, said = await _es("migrate", dsn=dsn)
        assert code == 0, said
        assert f"applied {len(files)} migration(s)" in said

        code, said = await _es("migrate", "--status", dsn=dsn)
        assert code == 0, said
        rows = _rows(said)
        for version, name, sql in files:
            assert rows[version][:2] == [name, "applied"]
            assert rows[version][2].startswith("20")  # an ISO time, not "-"
            assert rows[version][3] == checksum(sql) and len(checksum(sql)) == 64
        assert f"{len(files)} applied, 0 pending" in said

        code, said = await _es("migrate", dsn=dsn)
        assert (code, said.strip()) == (0, "applied 0 migration(s)")


def test_an_unreachable_database_fails_with_exit_1() -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    for argv in (["migrate"], ["migrate", "--status"]):
        code, said = es(*argv, env={"ES_POSTGRES_DSN": dsn})
        assert code == 1, said
        assert "es migrate: cannot reach the database" in said


def test_no_database_configured_is_named() -> None:
    code, said = es("migrate", env={"ES_POSTGRES_DSN": ""})
    assert code == 1
    assert "ES_POSTGRES_DSN is not set" in said
