"""An upsert reuses the vectors a collection holds for unchanged part texts: only new or
changed texts reach the model. The database is real; the models are real encoders (the tests'
word counter, and all-MiniLM-L6-v2 for equality with fresh encodings) wrapped to count what
they are asked to encode."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest

from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.base import Encoder, Vectors
from es_core.encoders.registry import EncoderRegistry
from es_core.item_input import ItemInput, PartInput
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.storage import catalog
from es_core.storage.content_hashes import content_hash, stored_vectors
from es_core.storage.item_rows import get_items
from es_core.upsertion import encode_batch, run_deletion, run_upsertion, store_batch
from tests.integration.helpers import new_collection, word_count_collection
from tests.integration.tiny_plugin import WordCountEncoder

pytestmark = pytest.mark.integration


class Counting:
    """A real encoder that records every text it is asked to encode."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.calls: list[list[str]] = []

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    @property
    def texts(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def encode_queries(self, texts: list[str]) -> Vectors:
        return self.inner.encode_queries(texts)

    def encode_items(self, texts: list[str]) -> Vectors:
        self.calls.append(list(texts))
        return self.inner.encode_items(texts)


async def keep_going(fraction: float, message: str) -> bool:
    return True


def _pipe_settings(settings: Settings) -> Settings:
    """Sentences of at most a few words: "apple pear. plum fig." gives two parts."""
    return settings.model_copy(update={"splitter_max_words": 2, "splitter_overlap_words": 0})


ITEMS = {
    "a": "apple pear. plum fig.",
    "b": "fig fig. apple apple.",
    "c": "pear plum.",
}


def _word_counts(texts: list[str]) -> list[list[float]]:
    return [[float(v) for v in row] for row in WordCountEncoder().encode_items(texts)]


def _items(texts: dict[str, str]) -> list[ItemInput]:
    return [ItemInput(k, {"k": k}, text=v) for k, v in texts.items()]


async def test_a_second_upsert_of_the_same_texts_encodes_nothing(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await word_count_collection(pg_pool)
    counting = Counting(WordCountEncoder())
    registry = EncoderRegistry(lambda model: counting)
    small = _pipe_settings(settings)
    first = await run_upsertion(pg_pool, collection, _items(ITEMS), registry, small, keep_going)
    assert first == {"upserted_count": 3}
    assert sorted(counting.texts) == sorted(
        ["apple pear.", "plum fig.", "fig fig.", "apple apple.", "pear plum."]
    )
    before = await get_items(pg_pool, collection, list(ITEMS), include_vectors=True)

    counting.calls.clear()
    again = await run_upsertion(pg_pool, collection, _items(ITEMS), registry, small, keep_going)
    assert again == {"upserted_count": 3}
    assert counting.calls == []
    after = await get_items(pg_pool, collection, list(ITEMS), include_vectors=True)
    assert [(s.object_id, s.parts) for s in after] == [(s.object_id, s.parts) for s in before]
    assert all(s.version == b.version for s, b in zip(after, before, strict=True))


async def test_only_a_changed_part_is_encoded_again(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await word_count_collection(pg_pool)
    counting = Counting(WordCountEncoder())
    registry = EncoderRegistry(lambda model: counting)
    small = _pipe_settings(settings)
    await run_upsertion(pg_pool, collection, _items(ITEMS), registry, small, keep_going)

    counting.calls.clear()
    changed = {**ITEMS, "a": "apple pear. fig plum."}
    result = await run_upsertion(pg_pool, collection, _items(changed), registry, small, keep_going)
    assert result == {"upserted_count": 3}
    assert counting.calls == [["fig plum."]]
    [a] = await get_items(pg_pool, collection, ["a"], include_vectors=True)
    assert [(p.part_id, p.text) for p in a.parts] == [("0", "apple pear."), ("1", "fig plum.")]
    assert [p.vector for p in a.parts] == _word_counts(["apple pear.", "fig plum."])


async def test_a_text_met_twice_in_a_batch_is_encoded_once(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await word_count_collection(pg_pool)
    counting = Counting(WordCountEncoder())
    registry = EncoderRegistry(lambda model: counting)
    items = [ItemInput("x", text="apple fig"), ItemInput("y", text="apple fig")]
    await run_upsertion(pg_pool, collection, items, registry, settings, keep_going)
    assert counting.texts == ["apple fig"]
    stored = await get_items(pg_pool, collection, ["x", "y"], include_vectors=True)
    assert [s.parts[0].vector for s in stored] == [[1.0, 0.0, 0.0, 1.0]] * 2


async def test_another_model_does_not_reuse_the_vectors_of_the_first(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    first, second = await word_count_collection(pg_pool), await word_count_collection(pg_pool)
    encoders: dict[str, Counting] = {}

    def factory(model: Model) -> Counting:
        return encoders.setdefault(model.model_id, Counting(WordCountEncoder()))

    registry = EncoderRegistry(factory)
    small = _pipe_settings(settings)
    await run_upsertion(pg_pool, first, _items(ITEMS), registry, small, keep_going)
    await run_upsertion(pg_pool, second, _items(ITEMS), registry, small, keep_going)
    assert len(encoders[first.model.model_id].texts) == 5
    assert len(encoders[second.model.model_id].texts) == 5
    # The lookup itself is per collection: the first's hashes are not in the second's table.
    async with pg_pool.acquire() as conn:
        await conn.execute(f"DELETE FROM {catalog.items_table(second)}")
    hashes = [content_hash("apple pear.")]
    assert await stored_vectors(pg_pool, second, ["a"], hashes) == {}
    found = await stored_vectors(pg_pool, first, ["a"], hashes)
    assert list(found) == hashes and [found[hashes[0]].tolist()] == _word_counts(["apple pear."])


async def test_given_vectors_are_kept_and_never_reused_for_their_text(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await word_count_collection(pg_pool)
    counting = Counting(WordCountEncoder())
    registry = EncoderRegistry(lambda model: counting)
    given = [0.5, 0.5, 0.5, 0.5]
    sent = [ItemInput("g", parts=[PartInput("0", text="apple", vector=given)])]
    await run_upsertion(pg_pool, collection, sent, registry, settings, keep_going)
    assert counting.calls == []
    hashes = [content_hash("apple")]
    assert await stored_vectors(pg_pool, collection, ["g"], hashes) == {}
    [g] = await get_items(pg_pool, collection, ["g"], include_vectors=True)
    assert g.parts[0].vector == given

    # The same text without a vector is encoded: the given vector is not the model's.
    plain = [ItemInput("g", parts=[PartInput("0", text="apple")])]
    await run_upsertion(pg_pool, collection, plain, registry, settings, keep_going)
    assert counting.texts == ["apple"]
    [g] = await get_items(pg_pool, collection, ["g"], include_vectors=True)
    assert g.parts[0].vector == [1.0, 0.0, 0.0, 0.0]


async def test_reused_vectors_equal_fresh_encodings_of_a_real_model(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    base = TextMiniLMPlugin(settings).upload_initial_model()
    async with pg_pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(
            "SELECT count(*) FROM models WHERE model_id = $1", base.model_id
        ):
            await catalog.insert_model(conn, base)
    collection = await new_collection(pg_pool, model=base)
    counting = Counting(EncoderRegistry().get(base))
    registry = EncoderRegistry(lambda model: counting)
    small = settings.model_copy(update={"splitter_max_words": 6, "splitter_overlap_words": 0})
    texts = {
        "r1": "The cat sat on the mat. It was warm and sunny outside today.",
        "r2": "Vectors of short texts. Another sentence about the weather.",
    }
    await run_upsertion(pg_pool, collection, _items(texts), registry, small, keep_going)
    encoded_once = len(counting.texts)
    assert encoded_once >= 4
    changed = {**texts, "r2": "Vectors of short texts. A new sentence about dogs."}
    await run_upsertion(pg_pool, collection, _items(changed), registry, small, keep_going)
    assert counting.texts[encoded_once:] == ["A new sentence about dogs."]

    stored = await get_items(pg_pool, collection, list(changed), include_vectors=True)
    parts = [p for s in stored for p in s.parts]
    fresh = counting.inner.encode_items([p.text or "" for p in parts])
    assert np.allclose(np.asarray([p.vector for p in parts]), fresh, atol=1e-5)


async def test_a_delete_between_lookup_and_write_leaves_no_half_written_item(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """The stored vectors are read before the write's transaction; a deletion that commits in
    between wins or loses by version, and the item is then wholly gone or wholly written."""
    collection = await word_count_collection(pg_pool)
    counting = Counting(WordCountEncoder())
    registry = EncoderRegistry(lambda model: counting)
    small = _pipe_settings(settings)
    await run_upsertion(pg_pool, collection, _items(ITEMS), registry, small, keep_going, version=1)
    counting.calls.clear()
    prepared = [
        ItemInput(k, {"k": k}, parts=[PartInput(str(i), s) for i, s in enumerate(v)])
        for k, v in {
            "a": ["apple pear.", "fig plum."],
            "b": ["fig fig.", "apple apple."],
        }.items()
    ]

    # A newer deletion of "a" commits between the lookup (and encoding) and the write.
    encoded = await encode_batch(pg_pool, collection, prepared, registry, small)
    assert counting.calls == [["fig plum."]]  # the rest came from the lookup
    assert await run_deletion(pg_pool, collection, ["a"], version=3) == {
        "deleted_count": 1,
        "missing_count": 0,
    }
    report = await store_batch(pg_pool, encoded, registry, small, version=2)
    assert report.applied == ["b"] and report.superseded == ["a"]
    rows = await pg_pool.fetch(
        f"SELECT object_id, count(*) AS n FROM {catalog.items_table(collection)}"
        f" GROUP BY object_id ORDER BY object_id"
    )
    assert [(r["object_id"], r["n"]) for r in rows] == [("b", 3), ("c", 2)]

    # An older deletion committing in between loses: the write lands whole, with the reused
    # vectors it read before the deletion took the rows away.
    encoded = await encode_batch(pg_pool, collection, prepared[1:], registry, small)
    await run_deletion(pg_pool, collection, ["b"], version=3)
    report = await store_batch(pg_pool, encoded, registry, small, version=4)
    assert report.applied == ["b"]
    [b] = await get_items(pg_pool, collection, ["b"], include_vectors=True)
    assert [p.text for p in b.parts] == ["fig fig.", "apple apple."]
    assert [p.vector for p in b.parts] == _word_counts(["fig fig.", "apple apple."])
    assert b.version == 4
