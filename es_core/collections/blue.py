"""The blue switch and its rollback: one transaction each, under a row lock on the alias.

The collection that stops being blue becomes the rollback target. It is kept complete (every
write reaches it, see ``write_targets``), so rolling back is as safe as switching.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.collections.write_targets import lock_for_change
from es_core.domain import Collection
from es_core.errors import FailedPrecondition, NotFound
from es_core.storage.catalog import check_collection_id, get_collection, set_blue_collection
from es_core.tasks.lookups import task_status


@dataclass(frozen=True)
class BlueChange:
    """What a switch or a rollback did: ``blue`` serves now, ``previous`` is the rollback target."""

    blue: Collection
    previous: Collection


async def _alias(conn: asyncpg.Connection) -> tuple[str, str | None]:
    """(blue, previous) with the alias row locked until the transaction ends."""
    await lock_for_change(conn)
    row = await conn.fetchrow("SELECT collection_id, previous_collection_id FROM blue_collection")
    if row is None:
        raise FailedPrecondition("no blue collection is set")
    return row["collection_id"], row["previous_collection_id"]


async def _point_blue_at(conn: asyncpg.Connection, target: str, old_blue: str) -> BlueChange:
    await set_blue_collection(conn, target)
    return BlueChange(await get_collection(conn, target), await get_collection(conn, old_blue))


async def switch_blue(conn: asyncpg.Connection, collection_id: str) -> BlueChange:
    """Make a filled green collection blue; the old blue becomes the rollback target."""
    check_collection_id(collection_id)
    async with conn.transaction():
        blue, _ = await _alias(conn)
        try:
            target = await get_collection(conn, collection_id)
        except NotFound as exc:
            raise NotFound.field_error("collection_id", exc.message) from None
        if target.collection_id == blue:
            raise FailedPrecondition.field_error("collection_id", "is already the blue collection")
        if target.state == "retired":
            raise FailedPrecondition.field_error(
                "collection_id",
                "is retired (it may have missed writes); RollbackBlueCollection returns to the"
                " previous blue, or reindex into a new green collection",
            )
        if not target.model.deployed:
            raise FailedPrecondition.field_error(
                "collection_id",
                f"its model {target.model.model_id!r} is not deployed, so queries could not be"
                " encoded; deploy it with DeployModel first",
            )
        if target.reindex_task_id is not None:
            status = await task_status(conn, target.reindex_task_id)
            if status != "done":
                raise FailedPrecondition.field_error(
                    "collection_id",
                    f"its reindex task {target.reindex_task_id} is {status}; a collection can"
                    " become blue once its reindex is done",
                )
        if target.index_state != "ready":
            raise FailedPrecondition.field_error(
                "collection_id",
                f"its vector index is {target.index_state} (a bulk fill builds it once its rows"
                " are in); a collection can become blue once its index is ready",
            )
        return await _point_blue_at(conn, target.collection_id, blue)


async def rollback_blue(conn: asyncpg.Connection) -> BlueChange:
    """Make the previous blue blue again; the one serving now becomes the rollback target."""
    async with conn.transaction():
        blue, previous = await _alias(conn)
        if previous is None or previous == blue:
            raise FailedPrecondition(
                "there is no previous blue collection to return to (none was switched from,"
                " or it was deleted)"
            )
        return await _point_blue_at(conn, previous, blue)
