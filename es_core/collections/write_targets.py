"""Which collections a write must reach.

Some collections must stay complete: the blue one, the rollback target (the previous blue),
and every green collection a reindex fills or has filled. A write to any of them reaches all
of them, each encoded with its own model, so a switch or a rollback never loses a write.

Categories follow their model: the blue categories collections of the models of those item
collections are kept in step the same way (a category written while a reindex fills another
model's collection reaches that model's categories too, encoded by it), so whichever of
those item collections is blue, PredictCategories finds the same categories.

A write to any other collection (a retired one, a green one made by hand, the categories of
a model no such collection uses) reaches only it.

Writers hold the blue alias row FOR SHARE while they write; whatever changes the set (a new
reindex, a switch, a deletion) takes it FOR UPDATE. A write therefore either finishes before
the set changes or starts after, and sees the new set.
"""

from __future__ import annotations

import asyncpg

from es_core.domain import Collection
from es_core.storage.catalog import COLLECTION_SELECT, collection_from_row, get_collection

_KEPT_IN_STEP = (
    COLLECTION_SELECT
    + """
    CROSS JOIN blue_collection b
    WHERE c.delete_time IS NULL AND c.kind = 'items'
      AND (c.collection_id IN (b.collection_id, b.previous_collection_id)
           OR (c.state = 'green' AND c.reindex_task_id IS NOT NULL))
    ORDER BY c.create_time, c.collection_id
    """
)

# The models of the item collections kept in step.
_MODELS_IN_STEP = """
    SELECT i.model_id FROM collections i CROSS JOIN blue_collection b
    WHERE i.delete_time IS NULL AND i.kind = 'items'
      AND (i.collection_id IN (b.collection_id, b.previous_collection_id)
           OR (i.state = 'green' AND i.reindex_task_id IS NOT NULL))
"""

_CATEGORIES_IN_STEP = (
    COLLECTION_SELECT
    + f"""
    WHERE c.delete_time IS NULL AND c.kind = 'categories'
      AND c.collection_id IN (
          SELECT cb.collection_id FROM categories_blue cb
          WHERE cb.model_id IN ({_MODELS_IN_STEP}))
    ORDER BY c.create_time, c.collection_id
    """
)


async def lock_for_write(conn: asyncpg.Connection) -> None:
    """Hold the set of collections kept in step until the caller's transaction ends."""
    await conn.execute("SELECT 1 FROM blue_collection FOR SHARE")


async def lock_for_change(conn: asyncpg.Connection) -> None:
    """Wait for writes in flight and keep new ones out until the caller's transaction ends."""
    await conn.execute("SELECT 1 FROM blue_collection FOR UPDATE")


async def kept_in_step(conn: asyncpg.Connection | asyncpg.Pool) -> list[Collection]:
    """The collections every write to one of them must reach, oldest first.

    Oldest first matters: a reindex's source is always older than its destination, and
    writers lock an item in the source before the destination, as the reindex does."""
    return [collection_from_row(row) for row in await conn.fetch(_KEPT_IN_STEP)]


async def models_in_step(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """The model ids of the item collections kept in step, in id order."""
    rows = await conn.fetch(f"SELECT DISTINCT model_id FROM ({_MODELS_IN_STEP}) m ORDER BY 1")
    return [r["model_id"] for r in rows]


async def categories_in_step(conn: asyncpg.Connection | asyncpg.Pool) -> list[Collection]:
    """The blue categories collections of the models of the item collections kept in step,
    oldest first: every category write to one of them must reach them all."""
    return [collection_from_row(row) for row in await conn.fetch(_CATEGORIES_IN_STEP)]


async def write_targets(conn: asyncpg.Connection, collection: Collection) -> list[Collection]:
    """Where a write addressed to ``collection`` goes (it is always among them); NOT_FOUND
    when it was deleted since the write was accepted."""
    if collection.kind == "categories":
        in_step = await categories_in_step(conn)
    else:
        in_step = await kept_in_step(conn)
    if any(c.collection_id == collection.collection_id for c in in_step):
        return in_step
    return [await get_collection(conn, collection.collection_id, kind=collection.kind)]
