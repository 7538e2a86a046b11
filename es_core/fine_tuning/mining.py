"""Hard negatives mined over the whole collection with the model in service.

The items shown above a click are negatives the searcher happened to see; the nearest items of
the whole collection to the query (as the model in service ranks them) that were never clicked
for it are the ones the model confuses most. Each example gets up to ``depth`` of them, nearest
first, never one of its positives (an object clicked in any session of the query).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.base import Encoder
from es_core.fine_tuning.examples import Example
from es_core.search.query import VectorQuery
from es_core.search.vector_search import vector_page

QueryVector = npt.NDArray[np.float32]
# The ids of the ``limit`` items nearest to a query vector, nearest first.
Search = Callable[[QueryVector, int], Awaitable[list[str]]]


def with_mined(example: Example, nearest: Sequence[str], depth: int) -> Example:
    """``example`` with the first ``depth`` of ``nearest`` that are not its positives."""
    mined = [o for o in dict.fromkeys(nearest) if o not in example.positives][:depth]
    return dataclasses.replace(example, mined=tuple(mined))


async def mine_negatives(
    examples: Sequence[Example], vectors: Sequence[QueryVector], search: Search, depth: int
) -> list[Example]:
    """Every example with its mined negatives (``vectors``: the examples' query vectors)."""
    if depth <= 0:
        return list(examples)
    mined = []
    for example, vector in zip(examples, vectors, strict=True):
        nearest = await search(vector, depth + len(example.positives))
        mined.append(with_mined(example, nearest, depth))
    return mined


def collection_search(
    conn: asyncpg.Connection, collection: Collection, settings: Settings
) -> Search:
    """Nearest originals of ``collection`` by its stored vectors, the way search ranks them."""

    async def search(vector: QueryVector, limit: int) -> list[str]:
        hits, _ = await vector_page(
            conn, collection, VectorQuery(vector=vector, limit=limit), settings
        )
        return [hit.object_id for hit in hits]

    return search


def query_vectors(encoder: Encoder, examples: Sequence[Example]) -> list[QueryVector]:
    """The examples' queries encoded by ``encoder`` (the model in service)."""
    if not examples:
        return []
    return list(encoder.encode_queries([e.query for e in examples]))


async def mine_collection(
    conn: asyncpg.Connection,
    collection: Collection,
    settings: Settings,
    encoder: Encoder,
    examples: Sequence[Example],
) -> list[Example]:
    """The examples with ``ES_FINE_TUNING_MINED_NEGATIVES`` negatives each mined from
    ``collection`` (its queries encoded by ``encoder``, the model in service)."""
    depth = settings.fine_tuning_mined_negatives
    if depth <= 0:
        return list(examples)
    vectors = await asyncio.to_thread(query_vectors, encoder, examples)
    return await mine_negatives(
        examples, vectors, collection_search(conn, collection, settings), depth
    )
