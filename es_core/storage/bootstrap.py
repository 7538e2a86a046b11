"""First start: schema migrations and the base model's collection, marked blue (and the base
model deployed, when models are served through Triton)."""

from __future__ import annotations

from dataclasses import replace

import asyncpg

from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.encoders.local import BASE_MODEL_ID, BASE_MODEL_SOURCE
from es_core.storage import catalog
from es_core.storage.migrations import MIGRATION_LOCK_KEY, migrate

BASE_MODEL = Model(
    model_id=BASE_MODEL_ID,
    name="all-MiniLM-L6-v2",
    version="1",
    dimensions=384,
    metric="cosine",
    aggregation="min",
    source=BASE_MODEL_SOURCE,
)


def serves_through_triton(settings: Settings) -> bool:
    """A Triton URL is set, or `es up` will start the local Triton."""
    return bool(settings.triton_url) or settings.serve_with_triton


async def prepare_database(pool: asyncpg.Pool, settings: Settings) -> Collection:
    """Migrate, and on a new database create the base collection; returns the blue collection."""
    async with pool.acquire() as conn:
        await migrate(conn)
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            has_blue = await conn.fetchval("SELECT count(*) FROM blue_collection")
            if not has_blue:
                async with conn.transaction():
                    if not await conn.fetchval(
                        "SELECT count(*) FROM models WHERE model_id = $1", BASE_MODEL.model_id
                    ):
                        await catalog.insert_model(
                            conn, replace(BASE_MODEL, deployed=serves_through_triton(settings))
                        )
                    await catalog.create_collection(
                        conn,
                        BASE_MODEL.model_id,
                        BASE_MODEL,
                        state="green",
                        hnsw_m=settings.hnsw_m,
                        hnsw_ef_construction=settings.hnsw_ef_construction,
                        text_search_config=settings.text_search_config,
                    )
                    await catalog.set_blue_collection(conn, BASE_MODEL.model_id)
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
