"""Users' improved copies recomputed in a reindexed collection (ES_REINDEX_USER_COPIES=recompute).

A reindex copies originals only: a user's copies live in the vector space of the source's
model and mean nothing in the destination's. When the reindex was started with ``recompute``,
its parent, once done, creates an improvement task that runs ``recompute_user_copies``: every
session that improved copies in the source (or already in the destination) is read again, its
query re-encoded by the destination's model from the session's query text, and the users'
copies in the destination are rebuilt from its originals, in one transaction.

Rebuilt from the originals, not adjusted further: a rerun (a retried task) writes the same
copies again. Sessions with no query text (registered with a vector only) cannot be moved to
another model's space and are skipped with a note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import NotFound
from es_core.improvement.adjuster import VectorsAdjuster
from es_core.improvement.run import (
    SessionPlan,
    encode_missing_queries,
    improve_group,
    lock_users,
    plan_sessions,
)
from es_core.storage.catalog import get_collection, items_table

PARAM = "recompute_user_copies"
NO_TEXT = "no query text to encode with the destination's model"


@dataclass
class RecomputeReport:
    collection_id: str
    source_collection_id: str
    improved: int = 0
    skipped: int = 0
    copies_written: int = 0
    users: int = 0
    notes: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "recomputed_in": self.collection_id,
            "recomputed_from": self.source_collection_id,
            "improved_sessions": self.improved,
            "skipped_sessions": self.skipped,
            "copies_written": self.copies_written,
            "users": self.users,
            "skipped_because": self.notes,
        }


def recompute_params(source_collection_id: str, destination_collection_id: str) -> dict[str, Any]:
    """The improvement task's params that ask for a recompute."""
    return {
        PARAM: {
            "source_collection_id": source_collection_id,
            "destination_collection_id": destination_collection_id,
        }
    }


async def recompute_user_copies(
    pool: asyncpg.Pool,
    settings: Settings,
    encoders: EncoderRegistry,
    params: dict[str, Any],
    adjuster: VectorsAdjuster | None = None,
) -> RecomputeReport:
    """Rebuild, in the destination, the copies of every user with improved sessions in the
    source or the destination. A destination deleted since is a report with nothing done."""
    source_id = str(params["source_collection_id"])
    destination_id = str(params["destination_collection_id"])
    report = RecomputeReport(destination_id, source_id)
    async with pool.acquire() as conn, conn.transaction():
        try:
            destination = await get_collection(conn, destination_id)
        except NotFound:
            report.notes["the destination collection was deleted"] = 1
            return report
        first = await _plans(conn, settings, source_id, destination_id)
        users = {p.user_id for p in first if not p.skip_reason}
        # The users' drains into the destination wait from here; then read again, so a session
        # improved there in between is part of the rebuild, not lost by it.
        await lock_users(conn, destination, users)
        plans = [
            p
            for p in await _plans(conn, settings, source_id, destination_id)
            if p.user_id in users or p.skip_reason
        ]
        group = [p for p in plans if not p.skip_reason]
        for plan in plans:
            if plan.skip_reason:
                report.notes[plan.skip_reason] = report.notes.get(plan.skip_reason, 0) + 1
        rebuilt = sorted({p.user_id for p in group})
        report.users = len(rebuilt)
        if group:
            await encode_missing_queries(destination, group, encoders)
            # From the originals: whatever these users had here before is rebuilt below.
            await conn.execute(
                f"DELETE FROM {items_table(destination)} WHERE user_id = ANY($1::text[])", rebuilt
            )
            report.improved, report.copies_written = await improve_group(
                conn, settings, destination, group, adjuster
            )
        report.skipped = len(plans) - report.improved
    return report


async def _plans(
    conn: asyncpg.Connection, settings: Settings, source_id: str, destination_id: str
) -> list[SessionPlan]:
    """The improved sessions of both collections, planned; the source's marked for their
    query to be encoded again (or skipped when they have no text)."""
    ids = [
        str(r["session_id"])
        for r in await conn.fetch(
            "SELECT s.session_id FROM sessions s JOIN improvement_queue q USING (session_id)"
            " WHERE q.state = 'done' AND s.collection_id = ANY($1::text[])"
            " ORDER BY s.session_id",
            [source_id, destination_id],
        )
    ]
    plans = await plan_sessions(conn, settings, ids)
    for plan in plans:
        if plan.collection_id == source_id and not plan.skip_reason:
            # Its vector is the source model's: encode its text with the destination's.
            plan.query_vector = None
            if not plan.query_text:
                plan.skip_reason = NO_TEXT
    return plans
