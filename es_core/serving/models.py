"""ListModels: the catalogue's model versions, newest first, keyset-paged."""

from __future__ import annotations

import asyncpg

from es_core.domain import Model
from es_core.pagination import time_cursor, time_page
from es_core.storage.catalog import model_from_row

_SCOPE = {"list": "models"}


async def list_models(
    conn: asyncpg.Connection | asyncpg.Pool, *, page_size: int, page_token: str
) -> tuple[list[Model], str]:
    """A page of models and the token of the next page ("" after the last)."""
    after_time, after_id = time_cursor(page_token, _SCOPE)
    rows = await conn.fetch(
        "SELECT * FROM models"
        " WHERE ($1::timestamptz IS NULL OR (create_time, model_id) < ($1, $2::text))"
        " ORDER BY create_time DESC, model_id DESC LIMIT $3",
        after_time,
        after_id,
        page_size + 1,
    )
    return time_page(
        [model_from_row(r) for r in rows], page_size, lambda m: (m.create_time, m.model_id), _SCOPE
    )
