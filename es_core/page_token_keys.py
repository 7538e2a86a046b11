"""The keys this deployment signs page tokens with: ES_PAGE_TOKEN_KEYS when set, else one key
generated once and kept in the database.

The database, not the data directory, keeps the generated key because it is the one thing
every server process shares, also when several servers on several hosts serve one database
(each would otherwise sign with its own key and refuse the others' tokens)."""

from __future__ import annotations

import secrets

import asyncpg

from es_core.config import Settings
from es_core.page_tokens import PageTokens

GENERATED_KEY_BYTES = 32


async def stored_key(conn: asyncpg.Connection | asyncpg.Pool) -> bytes:
    """The generated key, created by the first caller (race-safe: one row, first insert wins)."""
    await conn.execute(
        "INSERT INTO page_token_key (secret) VALUES ($1) ON CONFLICT DO NOTHING",
        secrets.token_bytes(GENERATED_KEY_BYTES),
    )
    return bytes(await conn.fetchval("SELECT secret FROM page_token_key"))


async def load_page_tokens(
    settings: Settings, conn: asyncpg.Connection | asyncpg.Pool
) -> PageTokens:
    """The signer of this process: the configured keys, else the stored one."""
    return PageTokens(settings.page_token_key_list or [await stored_key(conn)])
