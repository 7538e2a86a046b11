"""The collection use cases behind DeploymentService: list, read blue, switch blue and roll
it back, delete. Starting a reindex is ``es_core.reindex.start``'s."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.collections import blue, lifecycle, listing
from es_core.collections.listing import CollectionInfo, describe
from es_core.context import Context
from es_core.pagination import Page, PageRequest
from es_core.storage.catalog import get_blue_collection


@dataclass(frozen=True)
class BlueSwitch:
    """The collections after a switch or a rollback, with their item counts."""

    blue: CollectionInfo  # serves now
    previous: CollectionInfo  # the rollback target


async def list_collections(ctx: Context, page: PageRequest) -> Page[CollectionInfo]:
    """Live collections, newest first."""
    page_size = page.size(ctx.settings)
    async with ctx.pool.acquire() as conn:
        infos, next_token = await listing.list_collections(
            conn, ctx.tokens, page_size=page_size, page_token=page.page_token
        )
    return Page(infos, next_token)


async def get_blue(ctx: Context) -> CollectionInfo:
    async with ctx.pool.acquire() as conn:
        return await describe(conn, await get_blue_collection(conn))


async def switch_blue(ctx: Context, collection_id: str) -> BlueSwitch:
    async with ctx.pool.acquire() as conn:
        switched = await _described(conn, await blue.switch_blue(conn, collection_id))
    ctx.aliases.follow_soon(ctx.pool)
    return switched


async def rollback_blue(ctx: Context) -> BlueSwitch:
    async with ctx.pool.acquire() as conn:
        rolled_back = await _described(conn, await blue.rollback_blue(conn))
    ctx.aliases.follow_soon(ctx.pool)
    return rolled_back


async def delete_collection(ctx: Context, collection_id: str) -> None:
    """Drop a collection that is not blue; the undeploy of its model, when no live collection
    uses it any more, is sent once the drop commits."""
    async with ctx.pool.acquire() as conn:
        to_send = await lifecycle.delete_collection(conn, ctx.settings, collection_id)
    for task in to_send:
        await ctx.send(task)


async def _described(conn: asyncpg.Connection, change: blue.BlueChange) -> BlueSwitch:
    return BlueSwitch(await describe(conn, change.blue), await describe(conn, change.previous))
