"""Which vector a part with both a text and a vector gets in each collection a write reaches."""

from __future__ import annotations

import numpy as np

from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.encoders.base import Vectors
from es_core.encoders.registry import EncoderRegistry
from es_core.item_input import ItemInput, PartInput
from es_core.upsertion import build_rows


class Ones:
    """A stand-in encoder: every text becomes the all-ones vector."""

    dimensions = 3

    def encode_queries(self, texts: list[str]) -> Vectors:
        return np.ones((len(texts), 3), dtype=np.float32)

    def encode_items(self, texts: list[str]) -> Vectors:
        return self.encode_queries(texts)


COLLECTION = Collection(
    collection_id="c",
    model=Model("m", "m", "1", 3, "dot", "avg", "test:ones"),
    table_name="items_c",
    state="green",
    hnsw_m=16,
    hnsw_ef_construction=64,
)


def test_given_vector_is_kept_in_the_named_collection_and_the_text_encoded_elsewhere() -> None:
    item = ItemInput(object_id="o", parts=[PartInput("0", text="t", vector=[1.0, 2.0, 3.0])])
    registry = EncoderRegistry(lambda model: Ones())
    named = build_rows([item], COLLECTION, registry, Settings())
    other = build_rows([item], COLLECTION, registry, Settings(), use_given_vectors=False)
    assert list(named[0][5]) == [1.0, 2.0, 3.0] and named[0][4] == "t"
    assert list(other[0][5]) == [1.0, 1.0, 1.0] and other[0][4] == "t"
    vector_only = ItemInput(object_id="v", parts=[PartInput("0", vector=[3.0, 2.0, 1.0])])
    rows = build_rows([vector_only], COLLECTION, registry, Settings(), use_given_vectors=False)
    assert list(rows[0][5]) == [3.0, 2.0, 1.0]
