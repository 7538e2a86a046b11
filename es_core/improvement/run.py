"""Draining the improvement queue: sessions in, per-user copies of item vectors out.

Several workers may drain at once: each takes a batch with ``FOR UPDATE SKIP LOCKED`` and
holds it until its copies are written, so no session is processed twice.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import NotFound
from es_core.improvement.adjuster import (
    Key,
    SessionExample,
    TorchAdjuster,
    VectorsAdjuster,
    adjuster_settings,
)
from es_core.storage.catalog import get_collection, items_table
from es_core.storage.item_rows import AVERAGE_PART_ID, NO_PAYLOAD, ROW_COLUMNS, average_vector


@dataclass
class ImprovementReport:
    improved: int = 0
    skipped: int = 0
    copies_written: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "improved_sessions": self.improved,
            "skipped_sessions": self.skipped,
            "copies_written": self.copies_written,
        }


@dataclass
class SessionPlan:
    """One session read as clicks and passed-over results, or the reason it cannot be."""

    session_id: str
    collection_id: str
    skip_reason: str = ""
    user_id: str = ""
    query_vector: npt.NDArray[np.float32] | None = None
    query_text: str = ""
    clicked: list[str] = field(default_factory=list)
    not_clicked: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)

    def example(self, known: set[Key]) -> SessionExample | None:
        """The adjuster's input, without objects deleted since the search."""
        assert self.query_vector is not None
        clicked = [o for o in self.clicked if (self.user_id, o) in known]
        if not clicked:
            return None
        return SessionExample(
            user_id=self.user_id,
            query_vector=self.query_vector,
            clicked=clicked,
            not_clicked=[o for o in self.not_clicked if (self.user_id, o) in known],
            weights={o: self.weights[o] for o in clicked},
        )


def plan_session(
    row: asyncpg.Record, events: list[asyncpg.Record], settings: Settings
) -> SessionPlan:
    session_id, collection_id = row["session_id"], row["collection_id"]

    def skip(reason: str) -> SessionPlan:
        return SessionPlan(session_id, collection_id, reason)

    if row["irrelevant"]:
        return skip("irrelevant")
    if not row["user_id"]:
        return skip("anonymous: no user to personalise for")
    ranks = {r["object_id"]: r["rank"] for r in row["results"]}
    weights: dict[str, float] = {}
    for event in events:
        weight = settings.event_weights.get(event["event_type"], 0.0)
        if weight > 0 and event["object_id"] in ranks:
            weights[event["object_id"]] = max(weight, weights.get(event["object_id"], 0.0))
    if not weights:
        return skip("no positive event on a shown result")
    if row["query_vector"] is None and not row["query_text"]:
        return skip("neither a query vector nor a query text")
    deepest = max(ranks[o] for o in weights)
    # Cascade reading: results above the last positive were seen and passed over.
    passed_over = [o for o, rank in ranks.items() if rank < deepest and o not in weights]
    vector = None if row["query_vector"] is None else row["query_vector"].to_numpy()
    return SessionPlan(
        session_id,
        collection_id,
        user_id=row["user_id"],
        query_vector=vector,
        query_text=row["query_text"],
        clicked=sorted(weights, key=ranks.__getitem__),
        not_clicked=sorted(passed_over, key=ranks.__getitem__),
        weights=weights,
    )


async def _current_vectors(
    conn: asyncpg.Connection, collection: Collection, keys: set[Key]
) -> tuple[dict[Key, npt.NDArray[np.float32]], dict[Key, list[str]]]:
    """Each user's view of each object: their copy when they have one, else the original."""
    users = sorted({u for u, _ in keys})
    objects = sorted({o for _, o in keys})
    rows = await conn.fetch(
        f"SELECT object_id, user_id, part_id, vector FROM {items_table(collection)}"
        f" WHERE NOT is_average AND object_id = ANY($1::text[])"
        f" AND (user_id IS NULL OR user_id = ANY($2::text[])) ORDER BY row_id",
        objects,
        users,
    )
    parts: dict[tuple[str | None, str], list[tuple[str, Any]]] = defaultdict(list)
    for r in rows:
        parts[(r["user_id"], r["object_id"])].append((r["part_id"], r["vector"].to_numpy()))
    vectors: dict[Key, npt.NDArray[np.float32]] = {}
    part_ids: dict[Key, list[str]] = {}
    for user, obj in keys:
        view = parts.get((user, obj)) or parts.get((None, obj))
        if view:  # an object deleted since the search has nothing to adjust
            vectors[(user, obj)] = np.stack([v for _, v in view]).astype(np.float32)
            part_ids[(user, obj)] = [p for p, _ in view]
    return vectors, part_ids


async def _write_copies(
    conn: asyncpg.Connection,
    collection: Collection,
    adjusted: dict[Key, npt.NDArray[np.float32]],
    part_ids: dict[Key, list[str]],
) -> int:
    """Each user's copies of the objects in place of the ones they had; a copy has no payload
    of its own (searches read the original's)."""
    keys = sorted(adjusted)
    await conn.execute(
        f"DELETE FROM {items_table(collection)} t USING unnest($1::text[], $2::text[]) AS k(u, o)"
        f" WHERE t.user_id = k.u AND t.object_id = k.o",
        [u for u, _ in keys],
        [o for _, o in keys],
    )
    rows = []
    for user, obj in keys:
        vectors = adjusted[(user, obj)]
        for part_id, vector in zip(part_ids[(user, obj)], vectors, strict=True):
            rows.append((obj, part_id, False, user, None, vector, NO_PAYLOAD))
        average = average_vector(vectors, collection.model.metric)
        rows.append((obj, AVERAGE_PART_ID, True, user, None, average, NO_PAYLOAD))
    await conn.copy_records_to_table(collection.table_name, records=rows, columns=ROW_COLUMNS)
    return len(keys)


async def improve_batch(
    conn: asyncpg.Connection,
    settings: Settings,
    encoders: EncoderRegistry,
    adjuster: VectorsAdjuster | None = None,
) -> ImprovementReport | None:
    """Take one batch of queued sessions and improve them, in the caller's transaction.
    None when nothing was waiting."""
    taken = await conn.fetch(
        "SELECT session_id FROM improvement_queue WHERE state = 'queued'"
        " ORDER BY queue_time, session_id LIMIT $1 FOR UPDATE SKIP LOCKED",
        settings.improvement_batch_size,
    )
    if not taken:
        return None
    ids = [r["session_id"] for r in taken]
    plans = await plan_sessions(conn, settings, ids)
    report = ImprovementReport()
    by_collection: dict[str, list[SessionPlan]] = defaultdict(list)
    for plan in plans:
        if not plan.skip_reason:
            by_collection[plan.collection_id].append(plan)
    for collection_id, group in sorted(by_collection.items()):
        try:
            collection = await get_collection(conn, collection_id)
        except NotFound:
            for plan in group:
                plan.skip_reason = "its collection was deleted"
            continue
        await encode_missing_queries(collection, group, encoders)
        await lock_users(conn, collection, {p.user_id for p in group})
        improved, written = await improve_group(conn, settings, collection, group, adjuster)
        report.improved += improved
        report.copies_written += written
    report.skipped = len(ids) - report.improved
    await conn.execute(
        "UPDATE improvement_queue q SET state = CASE WHEN n.note = '' THEN 'done' ELSE 'skipped'"
        " END, note = n.note, process_time = now(), process_count = q.process_count + 1"
        " FROM unnest($1::text[], $2::text[]) AS n(session_id, note)"
        " WHERE q.session_id = n.session_id",
        [p.session_id for p in plans],
        [p.skip_reason for p in plans],
    )
    return report


async def plan_sessions(
    conn: asyncpg.Connection, settings: Settings, session_ids: list[str]
) -> list[SessionPlan]:
    """The sessions with these ids, each read as clicks and passed-over results (or the
    reason it cannot teach), in session id order."""
    sessions = await conn.fetch(
        "SELECT session_id, user_id, query_text, results, collection_id, query_vector,"
        " irrelevant FROM sessions WHERE session_id = ANY($1::text[]) ORDER BY session_id",
        session_ids,
    )
    events: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for e in await conn.fetch(
        "SELECT session_id, object_id, event_type FROM session_events"
        " WHERE session_id = ANY($1::text[]) AND NOT object_not_shown",
        session_ids,
    ):
        events[e["session_id"]].append(e)
    return [plan_session(s, events[s["session_id"]], settings) for s in sessions]


async def lock_users(
    conn: asyncpg.Connection, collection: Collection, user_ids: Iterable[str]
) -> None:
    """Another drain may hold other sessions of the same users: take the users one drain at a
    time (in a fixed order, so two drains never wait on each other in a circle)."""
    for user in sorted(set(user_ids)):
        await conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))",
            collection.collection_id,
            user,
        )


async def improve_group(
    conn: asyncpg.Connection,
    settings: Settings,
    collection: Collection,
    group: list[SessionPlan],
    adjuster: VectorsAdjuster | None,
) -> tuple[int, int]:
    """Adjust the users' views of what the sessions showed, in ``collection``, and write them
    as the users' copies; (sessions improved, copies written). The users must be locked and
    every plan's query vector be in the collection's model's space."""
    keys = {(p.user_id, o) for p in group for o in [*p.clicked, *p.not_clicked]}
    vectors, part_ids = await _current_vectors(conn, collection, keys)
    examples = [ex for p in group if (ex := p.example(set(vectors))) is not None]
    adjusted = await asyncio.to_thread(
        functools.partial(
            (adjuster or TorchAdjuster(adjuster_settings(settings))).adjust,
            metric=collection.model.metric,
            aggregation=collection.model.aggregation,
        ),
        examples,
        vectors,
    )
    written = await _write_copies(conn, collection, adjusted, part_ids)
    return len(examples), written


async def encode_missing_queries(
    collection: Collection, group: list[SessionPlan], encoders: EncoderRegistry
) -> None:
    """Sessions registered without a search carry only their text: encode it now."""
    missing = [p for p in group if p.query_vector is None]
    if missing:
        encoder = encoders.get(collection.model)
        vectors = await asyncio.to_thread(encoder.encode_queries, [p.query_text for p in missing])
        for plan, vector in zip(missing, vectors, strict=True):
            plan.query_vector = vector


async def improve_queued(
    pool: asyncpg.Pool,
    settings: Settings,
    encoders: EncoderRegistry,
    adjuster: VectorsAdjuster | None = None,
) -> ImprovementReport:
    """Drain the queue batch by batch, one transaction per batch."""
    total = ImprovementReport()
    while True:
        async with pool.acquire() as conn, conn.transaction():
            report = await improve_batch(conn, settings, encoders, adjuster)
        if report is None:
            return total
        total.improved += report.improved
        total.skipped += report.skipped
        total.copies_written += report.copies_written
