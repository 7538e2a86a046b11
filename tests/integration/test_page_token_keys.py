"""Without ES_PAGE_TOKEN_KEYS every process signs with one key generated once and kept in the
database; with it, the configured keys sign and verify."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from pydantic import SecretStr

from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_core.page_token_keys import load_page_tokens
from es_core.storage.migrations import migrate
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.integration

SCOPE = {"list": "sessions"}


async def test_every_process_generates_or_reads_the_same_stored_key(
    pg_server: EmbeddedPostgres, settings: Settings
) -> None:
    async with fresh_database(pg_server.dsn) as dsn:
        conns = [await asyncpg.connect(dsn) for _ in range(4)]
        try:
            await migrate(conns[0])
            # Four server processes start at once on a database without a key.
            signers = await asyncio.gather(*(load_page_tokens(settings, c) for c in conns))
            keys = await conns[0].fetchval("SELECT count(*) FROM page_token_key")
        finally:
            for conn in conns:
                await conn.close()
    assert keys == 1
    token = signers[0].encode({"time": "2024-01-01T00:00:00+00:00", "id": "a"}, SCOPE)
    for other in signers[1:]:
        assert other.decode(token, SCOPE)["id"] == "a"


async def test_configured_keys_sign_instead_of_the_stored_one(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    stored = await load_page_tokens(settings, pg_pool)
    configured = await load_page_tokens(
        settings.model_copy(update={"page_token_keys": SecretStr("k" * 32 + ",o" + "l" * 31)}),
        pg_pool,
    )
    token = configured.encode({"id": "x"}, SCOPE)
    assert configured.decode(token, SCOPE) == {"id": "x"}
    with pytest.raises(InvalidArgument):
        stored.decode(token, SCOPE)
