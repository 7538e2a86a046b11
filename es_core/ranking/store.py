"""A collection's ranking spec versions, the live one and the one before it, and its signal
fields, in PostgreSQL. Every change is one transaction holding the collection row's lock."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import asyncpg

from es_core.domain import Collection
from es_core.errors import FailedPrecondition
from es_core.ranking.spec import RankingSpec, SignalField

Origin = Literal["manual", "learned", "inherited"]


@dataclass(frozen=True)
class SpecVersion:
    version: int
    spec: RankingSpec
    origin: Origin
    deployable: bool
    metrics: dict[str, float] = field(default_factory=dict)
    task_id: str = ""
    note: str = ""
    create_time: datetime | None = None


@dataclass(frozen=True)
class RankingSettings:
    collection_id: str
    text_search_config: str
    signal_fields: list[SignalField]
    live: SpecVersion | None
    previous: SpecVersion | None


def _version(row: asyncpg.Record) -> SpecVersion:
    return SpecVersion(
        version=row["version"],
        spec=RankingSpec.from_json(row["spec"]),
        origin=row["origin"],
        deployable=row["deployable"],
        metrics={k: float(v) for k, v in row["metrics"].items()},
        task_id="" if row["task_id"] is None else str(row["task_id"]),
        note=row["note"],
        create_time=row["create_time"],
    )


async def _lock(conn: asyncpg.Connection, collection_id: str) -> asyncpg.Record:
    row = await conn.fetchrow(
        "SELECT ranking_version, previous_ranking_version, signal_fields, text_search_config"
        " FROM collections WHERE collection_id = $1 AND delete_time IS NULL FOR UPDATE",
        collection_id,
    )
    if row is None:
        raise FailedPrecondition.field_error(
            "collection_id", f"collection {collection_id!r} was deleted"
        )
    return row


async def get_version(
    conn: asyncpg.Connection | asyncpg.Pool, collection_id: str, version: int | None
) -> SpecVersion | None:
    if version is None:
        return None
    row = await conn.fetchrow(
        "SELECT * FROM ranking_specs WHERE collection_id = $1 AND version = $2",
        collection_id,
        version,
    )
    return None if row is None else _version(row)


async def get_settings(conn: asyncpg.Connection, collection_id: str) -> RankingSettings:
    row = await conn.fetchrow(
        "SELECT ranking_version, previous_ranking_version, signal_fields, text_search_config"
        " FROM collections WHERE collection_id = $1",
        collection_id,
    )
    assert row is not None
    return RankingSettings(
        collection_id=collection_id,
        text_search_config=row["text_search_config"],
        signal_fields=[SignalField(s["field"], s["kind"]) for s in row["signal_fields"]],
        live=await get_version(conn, collection_id, row["ranking_version"]),
        previous=await get_version(conn, collection_id, row["previous_ranking_version"]),
    )


async def add_version(
    conn: asyncpg.Connection,
    collection_id: str,
    spec: RankingSpec,
    origin: Origin,
    *,
    go_live: bool,
    metrics: dict[str, float] | None = None,
    task_id: str | None = None,
    note: str = "",
) -> int:
    """Store a new version (live at once when ``go_live``; the live one becomes the previous)
    in the caller's transaction; returns its number."""
    current = await _lock(conn, collection_id)
    version = int(
        await conn.fetchval(
            "SELECT coalesce(max(version), 0) + 1 FROM ranking_specs WHERE collection_id = $1",
            collection_id,
        )
    )
    await conn.execute(
        "INSERT INTO ranking_specs (collection_id, version, spec, origin, deployable, metrics,"
        " task_id, note) VALUES ($1, $2, $3, $4, $5, $6, $7::text::uuid, $8)",
        collection_id,
        version,
        spec.to_json(),
        origin,
        go_live or origin != "learned",
        metrics or {},
        task_id,
        note,
    )
    if go_live:
        await conn.execute(
            "UPDATE collections SET ranking_version = $2, previous_ranking_version = $3,"
            " update_time = now() WHERE collection_id = $1",
            collection_id,
            version,
            current["ranking_version"],
        )
    return version


async def rollback(conn: asyncpg.Connection, collection_id: str) -> None:
    """Swap the live version and the previous one."""
    current = await _lock(conn, collection_id)
    if current["previous_ranking_version"] is None:
        raise FailedPrecondition.field_error(
            "collection_id", "has no previous ranking spec to roll back to"
        )
    await conn.execute(
        "UPDATE collections SET ranking_version = previous_ranking_version,"
        " previous_ranking_version = ranking_version, update_time = now()"
        " WHERE collection_id = $1",
        collection_id,
    )


async def declare_signals(
    conn: asyncpg.Connection, collection: Collection, fields: list[SignalField]
) -> None:
    """Replace the declared signal fields; a field the live spec boosts must stay, as itself."""
    current = await _lock(conn, collection.collection_id)
    live = await get_version(conn, collection.collection_id, current["ranking_version"])
    kinds = {f.field: f.kind for f in fields}
    for i, boost in enumerate(live.spec.boosts if live else ()):
        declared = next(s for s in collection.signal_fields if s["field"] == boost.field)
        if kinds.get(boost.field) != declared["kind"]:
            raise FailedPrecondition.field_error(
                "fields",
                f"the live ranking spec (version {live.version if live else 0}) boosts"
                f" {boost.field!r} as a {declared['kind']} field (boosts[{i}]); set a spec"
                " without that boost first",
            )
    await conn.execute(
        "UPDATE collections SET signal_fields = $2, update_time = now() WHERE collection_id = $1",
        collection.collection_id,
        [{"field": f.field, "kind": f.kind} for f in fields],
    )


async def list_versions(
    conn: asyncpg.Connection | asyncpg.Pool, collection_id: str, before: int | None, limit: int
) -> list[SpecVersion]:
    """Newest first; ``before``: only versions older than it."""
    rows = await conn.fetch(
        "SELECT * FROM ranking_specs WHERE collection_id = $1 AND ($2::int IS NULL OR version < $2)"
        " ORDER BY version DESC LIMIT $3",
        collection_id,
        before,
        limit,
    )
    return [_version(r) for r in rows]


async def inherit(conn: asyncpg.Connection, source: Collection, destination_id: str) -> None:
    """A collection a reindex creates ranks like its source until told otherwise: the same
    text search configuration, signal fields and live spec (as its version 1)."""
    await conn.execute(
        "UPDATE collections SET text_search_config = $2, signal_fields = $3,"
        " ranking_version = NULL, previous_ranking_version = NULL WHERE collection_id = $1",
        destination_id,
        source.text_search_config,
        list(source.signal_fields),
    )
    await conn.execute("DELETE FROM ranking_specs WHERE collection_id = $1", destination_id)
    if source.ranking_spec is not None:
        await add_version(
            conn,
            destination_id,
            RankingSpec.from_json(source.ranking_spec),
            "inherited",
            go_live=True,
            note=f"copied from collection {source.collection_id!r} version"
            f" {source.ranking_version}",
        )
