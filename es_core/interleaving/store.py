"""Interleaved sessions in PostgreSQL: which collections a session compared, which of them
contributed each shown item, and the clicks each side got."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import asyncpg

from es_core.clickstream.store import Conn
from es_core.interleaving.team_draft import Pick


async def record_interleaving(
    conn: asyncpg.Connection,
    session_id: str,
    *,
    blue_collection_id: str,
    green_collection_id: str,
    picks: Sequence[Pick],
) -> None:
    """Store a session's draft (the session row must exist, in the same transaction)."""
    await conn.execute(
        "INSERT INTO interleaving_sessions (session_id, blue_collection_id, green_collection_id)"
        " VALUES ($1, $2, $3)",
        session_id,
        blue_collection_id,
        green_collection_id,
    )
    await conn.execute(
        "INSERT INTO interleaving_credits (session_id, object_id, team)"
        " SELECT $1, o, t FROM unnest($2::text[], $3::text[]) AS p(o, t)",
        session_id,
        [p.object_id for p in picks],
        [p.team for p in picks],
    )


async def credits_of(conn: Conn, session_id: str) -> dict[str, str]:
    """object_id -> team of one interleaved session ({} when it was not interleaved)."""
    rows = await conn.fetch(
        "SELECT object_id, team FROM interleaving_credits WHERE session_id = $1", session_id
    )
    return {r["object_id"]: r["team"] for r in rows}


async def session_clicks(
    conn: Conn,
    *,
    green_collection_id: str,
    blue_collection_id: str,
    event_weights: Mapping[str, float],
) -> list[tuple[int, int]]:
    """(green, blue) clicked items of every relevant interleaved session of the pair, oldest
    first. A clicked item counts once for the team that contributed it; event types of weight
    0 (ES_EVENT_WEIGHTS) are not clicks."""
    positive = sorted(t for t, w in event_weights.items() if w > 0)
    rows = await conn.fetch(
        "SELECT i.session_id,"
        "  count(DISTINCT c.object_id) FILTER (WHERE c.team = 'green') AS green,"
        "  count(DISTINCT c.object_id) FILTER (WHERE c.team = 'blue') AS blue"
        " FROM interleaving_sessions i JOIN sessions s USING (session_id)"
        " LEFT JOIN session_events e"
        "  ON e.session_id = i.session_id AND e.event_type = ANY($3::text[])"
        " LEFT JOIN interleaving_credits c"
        "  ON c.session_id = e.session_id AND c.object_id = e.object_id"
        " WHERE i.green_collection_id = $1 AND i.blue_collection_id = $2 AND NOT s.irrelevant"
        " GROUP BY i.session_id, i.create_time ORDER BY i.create_time, i.session_id",
        green_collection_id,
        blue_collection_id,
        positive,
    )
    return [(int(r["green"]), int(r["blue"])) for r in rows]
