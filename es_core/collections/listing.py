"""Listing collections, newest first, with the number of original items in each."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.domain import Collection
from es_core.page_tokens import PageTokens
from es_core.pagination import time_cursor, time_page
from es_core.storage.catalog import COLLECTION_SELECT, collection_from_row
from es_core.storage.item_rows import count_originals


@dataclass(frozen=True)
class CollectionInfo:
    """A collection and how many original items it holds (users' copies not counted)."""

    collection: Collection
    item_count: int


async def describe(
    conn: asyncpg.Connection | asyncpg.Pool, collection: Collection
) -> CollectionInfo:
    return CollectionInfo(collection, await count_originals(conn, collection))


async def list_collections(
    conn: asyncpg.Connection, tokens: PageTokens, *, page_size: int, page_token: str
) -> tuple[list[CollectionInfo], str]:
    """Live item collections, newest first, keyset-paged on (create_time, collection_id);
    categories collections are CategoryService's, never listed here."""
    scope = {"list": "collections"}
    after_time, after_id = time_cursor(tokens, page_token, scope)
    rows = await conn.fetch(
        COLLECTION_SELECT + " WHERE c.delete_time IS NULL AND c.kind = 'items'"
        " AND ($1::timestamptz IS NULL OR (c.create_time, c.collection_id) < ($1, $2::text))"
        " ORDER BY c.create_time DESC, c.collection_id DESC LIMIT $3",
        after_time,
        after_id,
        page_size + 1,
    )
    collections, next_token = time_page(
        [collection_from_row(r) for r in rows],
        page_size,
        lambda c: (c.create_time, c.collection_id),
        scope,
        tokens,
    )
    return [await describe(conn, c) for c in collections], next_token
