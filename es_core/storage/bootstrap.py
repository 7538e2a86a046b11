"""First start: schema migrations and the plugin's initial model with its collection, marked
blue (and the model deployed, when models are served through Triton)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.plugins.protocol import FineTuningMethod
from es_core.plugins.registry import PluginError
from es_core.storage import catalog
from es_core.storage.migrations import MIGRATION_LOCK_KEY, migrate, wait_for_schema


def serves_through_triton(settings: Settings) -> bool:
    """A Triton URL is set, or `es up` will start the local Triton."""
    return bool(settings.triton_url) or settings.serve_with_triton


def _checked_initial_model(plugin: FineTuningMethod, model: Model) -> Model:
    """The model, if it is the one the plugin names and laid out as its search index says (the
    collection's table and every search read the layout from the model row)."""
    index = plugin.get_search_index_info()
    wrong = [
        f"{what} {got!r} (expected {wanted!r})"
        for what, got, wanted in (
            ("model_id", model.model_id, plugin.meta.base_model_id),
            ("dimensions", model.dimensions, index.dimensions),
            ("metric", model.metric, index.metric),
            ("aggregation", model.aggregation, index.aggregation),
        )
        if got != wanted
    ]
    if wrong:
        raise PluginError(f"plugin {plugin.meta.name!r}: its initial model has {', '.join(wrong)}")
    return model


async def prepare_database(
    pool: asyncpg.Pool, settings: Settings, plugin: FineTuningMethod
) -> Collection:
    """Migrate (or, with migrate_on_start off, wait for the schema), and on a new database
    create the plugin's initial model and its collection; returns the blue collection."""
    async with pool.acquire() as conn:
        if settings.migrate_on_start:
            await migrate(conn)
        else:
            await wait_for_schema(conn, settings.migration_wait_seconds)
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            if not await conn.fetchval("SELECT count(*) FROM blue_collection"):
                await _create_initial_collection(conn, settings, plugin)
            blue = await catalog.get_blue_collection(conn)
            if serves_through_triton(settings) and not blue.model.deployed:
                # Triton serves only deployed models, and the blue one must be served (a
                # database made before serving through Triton has none deployed).
                await conn.execute(
                    "UPDATE models SET deployed = true WHERE model_id = $1", blue.model.model_id
                )
                blue = await catalog.get_blue_collection(conn)
            return blue
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)


async def _create_initial_collection(
    conn: asyncpg.Connection, settings: Settings, plugin: FineTuningMethod
) -> None:
    """The initial model (the plugin may store its weights first: off the event loop) and its
    collection, laid out as the plugin's search index info says, made blue."""
    index = plugin.get_search_index_info()
    model = _checked_initial_model(plugin, await asyncio.to_thread(plugin.upload_initial_model))
    async with conn.transaction():
        if not await conn.fetchval(
            "SELECT count(*) FROM models WHERE model_id = $1", model.model_id
        ):
            await catalog.insert_model(
                conn, replace(model, deployed=serves_through_triton(settings))
            )
        await catalog.create_collection(
            conn,
            model.model_id,
            model,
            state="green",
            hnsw_m=index.hnsw_m,
            hnsw_ef_construction=index.hnsw_ef_construction,
            text_search_config=settings.text_search_config,
        )
        await catalog.set_blue_collection(conn, model.model_id)
