"""An item that fails on its way in fails alone: the rest of its batch is written, and the
result names each failed item with its stage, in request order. The database is real; the
model is the tests' word counter, made to fail on one word (no real encoder fails on a text,
so this is the only way to reach the encode stage's fallback)."""

from __future__ import annotations

import math

import asyncpg
import numpy as np
import pytest

from es_core.config import Settings
from es_core.encoders.base import Vectors
from es_core.encoders.registry import EncoderRegistry
from es_core.ingest.cleaning import TextCleaner
from es_core.item_input import ItemInput, PartInput
from es_core.storage.item_rows import get_items
from es_core.upsertion import run_upsertion
from tests.integration.helpers import word_count_collection
from tests.integration.tiny_plugin import WordCountEncoder

pytestmark = pytest.mark.integration


class PoisonedWordCounts(WordCountEncoder):
    """Word counts, except that a text saying "poison" cannot be encoded."""

    def encode_items(self, texts: list[str]) -> Vectors:
        if any("poison" in text for text in texts):
            raise ValueError("cannot encode a poisoned text")
        return super().encode_items(texts)


async def keep_going(fraction: float, message: str) -> bool:
    return True


async def test_blank_unencodable_and_refused_items_fail_alone(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await word_count_collection(pg_pool)
    registry = EncoderRegistry(lambda model: PoisonedWordCounts())
    nan = [math.nan, 1.0, 0.0, 0.0]
    items = [
        ItemInput("ok-1", {"n": 1}, text="apple pear"),
        ItemInput("empty", text="   "),
        ItemInput("poisoned", text="apple poison"),
        ItemInput("html-only", text="<script>x()</script>"),
        # pgvector refuses NaN: the database refuses this item's rows (its request checks
        # are skipped here, as a source's value could be).
        ItemInput("refused", parts=[PartInput("0", vector=nan)]),
        ItemInput("ok-2", text="plum. fig"),
    ]
    result = await run_upsertion(
        pg_pool,
        collection,
        items,
        registry,
        settings,
        keep_going,
        cleaner=TextCleaner(("strip_html", "normalize_whitespace")),
    )
    assert result["upserted_count"] == 3
    assert result["failed_count"] == 3
    failed = [(f["object_id"], f["stage"]) for f in result["failed_items"]]
    assert failed == [("empty", "split"), ("poisoned", "encode"), ("refused", "store")]
    reasons = {f["object_id"]: f["reason"] for f in result["failed_items"]}
    assert "poisoned text" in reasons["poisoned"] and "NaN" in reasons["refused"]
    # "html-only" is plain text here (inline texts are text/plain): its script tag is kept.
    stored = await get_items(
        pg_pool, collection, [i.object_id for i in items], include_vectors=True
    )
    assert [s.object_id for s in stored] == ["ok-1", "html-only", "ok-2"]
    ok_1 = stored[0]
    assert ok_1.payload == {"n": 1} and ok_1.source is None
    assert np.allclose(ok_1.parts[0].vector or [], [1, 1, 0, 0])


async def test_a_model_that_fails_on_every_item_fails_the_task(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await word_count_collection(pg_pool)
    registry = EncoderRegistry(lambda model: PoisonedWordCounts())
    items = [ItemInput(f"p{i}", text="poison apple") for i in range(3)]
    with pytest.raises(RuntimeError, match="encoded none of 3 items"):
        await run_upsertion(pg_pool, collection, items, registry, settings, keep_going)
    assert await get_items(pg_pool, collection, ["p0"], include_vectors=False) == []
