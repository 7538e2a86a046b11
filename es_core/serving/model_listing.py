"""ListModels: the catalogue's model versions, newest first, keyset-paged."""

from __future__ import annotations

from es_core.context import Context
from es_core.domain import Model
from es_core.pagination import Page, PageRequest, time_cursor, time_page
from es_core.storage.catalog import model_from_row

_SCOPE = {"list": "models"}


async def list_models(ctx: Context, page: PageRequest) -> Page[Model]:
    """A page of models."""
    page_size = page.size(ctx.settings)
    after_time, after_id = time_cursor(ctx.tokens, page.page_token, _SCOPE)
    rows = await ctx.pool.fetch(
        "SELECT * FROM models"
        " WHERE ($1::timestamptz IS NULL OR (create_time, model_id) < ($1, $2::text))"
        " ORDER BY create_time DESC, model_id DESC LIMIT $3",
        after_time,
        after_id,
        page_size + 1,
    )
    models, next_token = time_page(
        [model_from_row(r) for r in rows],
        page_size,
        lambda m: (m.create_time, m.model_id),
        _SCOPE,
        ctx.tokens,
    )
    return Page(models, next_token)
