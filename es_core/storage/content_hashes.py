"""Content hashes of item parts: the vectors a collection already holds for a text.

Each original part row encoded by the collection's model keeps ``content_hash``, the SHA-256
of the text it was encoded from (the part as cleaned and split). A collection is bound to one
model version, so two parts of one collection with the same hash have the same vector: an
upsert (or a reindex resuming a page) can take the stored vector instead of encoding the text
again. Parts whose vector the caller gave have no hash and are never taken."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.domain import Collection
from es_core.storage.catalog import items_table

HASH_COLUMN = "content_hash"


def content_hash(text: str) -> bytes:
    """The SHA-256 digest of the UTF-8 text (32 bytes, stored as bytea)."""
    return hashlib.sha256(text.encode("utf-8")).digest()


async def stored_vectors(
    conn: asyncpg.Connection | asyncpg.Pool,
    collection: Collection,
    object_ids: Iterable[str],
    hashes: Iterable[bytes],
) -> dict[bytes, npt.NDArray[np.float32]]:
    """The stored vectors of the items' original parts whose content hash is one of
    ``hashes``, by hash. Only the named items are looked at (through the table's unique index
    on object_id): a re-upsert of an item finds its own unchanged parts."""
    ids = list(dict.fromkeys(object_ids))
    wanted = list(dict.fromkeys(hashes))
    if not ids or not wanted:
        return {}
    rows = await conn.fetch(
        f"SELECT DISTINCT ON ({HASH_COLUMN}) {HASH_COLUMN}, vector FROM {items_table(collection)}"
        f" WHERE object_id = ANY($1::text[]) AND user_id IS NULL AND NOT is_average"
        f" AND {HASH_COLUMN} = ANY($2::bytea[])",
        ids,
        wanted,
    )
    return {
        bytes(r[HASH_COLUMN]): np.asarray(r["vector"].to_numpy(), dtype=np.float32) for r in rows
    }
