"""What the deploy gate ranks: the whole collection, or past a size the in-service model's top
items for every held-out query plus what was shown and clicked; and the in-service model's own
answers, from its stored vectors (on a real PostgreSQL)."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from es_core.config import Settings
from es_core.encoders.base import Vectors
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.gate import evaluation_pool
from es_core.plugins.text_minilm import TableDataLoader
from tests.integration.helpers import DIMS, load_items, new_collection

pytestmark = pytest.mark.asyncio(loop_scope="session")

N = 40


class QueryTable:
    """Encodes each query to a fixed vector (the gate encodes only the queries for the model in
    service: its items are ranked by their stored vectors)."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    @property
    def dimensions(self) -> int:
        return DIMS

    def encode_queries(self, texts: list[str]) -> Vectors:
        return np.array([self.vectors[t] for t in texts], dtype=np.float32)

    def encode_items(self, texts: list[str]) -> Vectors:
        raise AssertionError("the model in service ranks stored vectors, it encodes no item")


async def test_the_pool_is_the_collection_or_the_nearest_items_plus_shown_and_clicked(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(N, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    collection = await new_collection(pg_pool)
    items = [(f"i{k:02d}", vectors[k : k + 1], {}) for k in range(N)]
    # i39 has no text: nothing to encode, so no model can rank it.
    texts = {f"i{k:02d}": [f"text {k}"] for k in range(N - 1)}
    await load_items(pg_pool, collection, items, texts)
    query = vectors[3] + 0.1 * vectors[7]
    examples = [Example("q", {"i30": 1.0}, shown=("i31", "i30"))]
    encoder = QueryTable({"q": query})
    loader = TableDataLoader()

    async with pg_pool.acquire() as conn:
        whole = await evaluation_pool(conn, collection, examples, encoder, loader, settings)
        assert whole.whole_collection
        assert whole.object_ids == [f"i{k:02d}" for k in range(N - 1)]
        assert whole.item_parts["i05"] == ["text 5"]
        # The model in service answers from the stored vectors, nearest first: its
        # fine_tuning_gate_pool_per_query nearest, those with text (i39 has none: no candidate
        # could rank it).
        exact = np.argsort(1 - vectors @ (query / np.linalg.norm(query)))
        depth = settings.fine_tuning_gate_pool_per_query
        assert whole.in_service == [[f"i{k:02d}" for k in exact[:depth] if k != N - 1]]

        small = settings.model_copy(
            update={"fine_tuning_gate_max_items": N - 1, "fine_tuning_gate_pool_per_query": 10}
        )
        pooled = await evaluation_pool(conn, collection, examples, encoder, loader, small)
    assert not pooled.whole_collection
    # The 10 nearest of all items (i39 among them or not), those with text kept.
    nearest = np.argsort(1 - vectors @ (query / np.linalg.norm(query)))[:10]
    expected = ({f"i{k:02d}" for k in nearest} | {"i30", "i31"}) - {f"i{N - 1}"}
    assert set(pooled.object_ids) == expected
    assert "i03" in pooled.object_ids and len(pooled.object_ids) <= 12
