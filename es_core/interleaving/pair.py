"""Which green collection is compared with blue, and the verdict of their interleaving."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from es_core.config import Settings
from es_core.context import Context
from es_core.domain import Collection
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.interleaving.store import session_clicks
from es_core.interleaving.verdict import Verdict, decide, decide_sequentially
from es_core.storage.catalog import (
    COLLECTION_SELECT,
    check_collection_id,
    collection_from_row,
    get_blue_collection,
    get_collection,
)
from es_core.tasks.lookups import done_sql

# A green collection searches can be interleaved with: its model can encode queries and its
# reindex (if any) is done.
_READY = (
    "c.state = 'green' AND c.kind = 'items' AND c.delete_time IS NULL AND m.deployed"
    " AND (c.reindex_task_id IS NULL"
    f" OR {done_sql('c.reindex_task_id')})"
)


@dataclass(frozen=True)
class Pair:
    blue: Collection
    green: Collection


async def interleaving_pair(
    conn: asyncpg.Connection, green_collection_id: str = "", field: str = "green_collection_id"
) -> Pair:
    """Blue and the named green collection, else the newest ready one; FAILED_PRECONDITION
    when there is none, or the named one is not a ready green collection."""
    blue = await get_blue_collection(conn)
    if not green_collection_id:
        row = await conn.fetchrow(
            f"{COLLECTION_SELECT} WHERE {_READY} ORDER BY c.create_time DESC LIMIT 1"
        )
        if row is None:
            raise FailedPrecondition(
                "no green collection to interleave with blue: reindex into a deployed model"
                " version (StartReindex) and wait for its task to finish"
            )
        return Pair(blue, collection_from_row(row))
    check_collection_id(green_collection_id, field)
    try:
        green = await get_collection(conn, green_collection_id)
    except NotFound as exc:
        raise NotFound.field_error(field, exc.message) from None
    ready = await conn.fetchval(
        f"SELECT EXISTS ({COLLECTION_SELECT} WHERE c.collection_id = $1 AND {_READY})",
        green_collection_id,
    )
    if not ready:
        raise FailedPrecondition.field_error(
            field,
            f"collection {green_collection_id!r} is {green.state}, not a green collection ready"
            " to search (deployed model, reindex done)",
        )
    return Pair(blue, green)


def check_confidence(
    confidence: float, settings: Settings, field_path: str = "confidence"
) -> float:
    """0 means ES_INTERLEAVING_CONFIDENCE."""
    if confidence == 0:
        return settings.interleaving_confidence
    if not 0.5 < confidence < 1:
        raise InvalidArgument.field_error(field_path, "must be 0 (the default) or in (0.5, 1)")
    return confidence


async def pair_verdict(
    conn: asyncpg.Connection,
    pair: Pair,
    settings: Settings,
    confidence: float,
    *,
    sequential: bool = False,
) -> Verdict:
    """The verdict over the pair's stored interleaved sessions and their clicks; ``sequential``
    for a caller that asks again and again and acts on the first answer (planned looks from
    ES_INTERLEAVING_FIRST_LOOK decided sessions up to ES_INTERLEAVING_MAX_SESSIONS)."""
    clicks = await session_clicks(
        conn,
        green_collection_id=pair.green.collection_id,
        blue_collection_id=pair.blue.collection_id,
        event_weights=settings.event_weights,
    )
    if sequential:
        return decide_sequentially(
            clicks, confidence, settings.interleaving_first_look, settings.interleaving_max_sessions
        )
    return decide(clicks, confidence)


@dataclass(frozen=True)
class PairVerdict:
    pair: Pair
    verdict: Verdict


async def interleaving_verdict(
    ctx: Context, green_collection_id: str, confidence: float
) -> PairVerdict:
    """The GetInterleavingVerdict use case: the named green collection (else the newest ready
    one) against blue, at ``confidence`` (0 = ES_INTERLEAVING_CONFIDENCE)."""
    checked = check_confidence(confidence, ctx.settings)
    async with ctx.pool.acquire() as conn:
        pair = await interleaving_pair(conn, green_collection_id)
        return PairVerdict(pair, await pair_verdict(conn, pair, ctx.settings, checked))
