"""run_upsertion / run_deletion write and remove exactly the rows they should."""

from __future__ import annotations

from typing import Any

import asyncpg
import numpy as np
import pytest

from es_core.config import Settings
from es_core.domain import Collection
from es_core.encoders.registry import EncoderRegistry
from es_core.item_input import ItemInput, PartInput
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.splitter import split_text
from es_core.storage import catalog
from es_core.storage.item_rows import count_originals, get_items
from es_core.upsertion import run_deletion, run_upsertion
from tests.integration.helpers import DIMS, as_array, new_collection

pytestmark = pytest.mark.integration


class Recorder:
    """A progress callback that records its calls and answers ``keep_going``."""

    def __init__(self, keep_going: bool = True) -> None:
        self.calls: list[tuple[float, str]] = []
        self.keep_going = keep_going

    async def __call__(self, fraction: float, message: str) -> bool:
        self.calls.append((fraction, message))
        return self.keep_going


def _unused_registry() -> EncoderRegistry:
    """Models of source "test:none" cannot load: any attempt to encode would raise."""
    return EncoderRegistry()


def _vec(rng: np.random.Generator) -> list[float]:
    return [float(v) for v in rng.normal(size=DIMS).astype(np.float32)]


def _vector_item(
    object_id: str, n_parts: int, rng: np.random.Generator, **payload: Any
) -> ItemInput:
    parts = [PartInput(part_id=f"part-{j}", vector=_vec(rng)) for j in range(n_parts)]
    return ItemInput(object_id=object_id, payload=payload, parts=parts)


async def _rows(pool: asyncpg.Pool, collection: Collection) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT object_id, part_id, is_average, user_id, text, vector, payload"
        f" FROM {catalog.items_table(collection)} ORDER BY object_id, is_average, part_id"
    )


async def test_vector_parts_are_written_with_one_average_row_per_item(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool, "dot", "avg")
    rng = np.random.default_rng(1)
    items = [
        _vector_item("a", 3, rng, color="red"),
        _vector_item("b", 1, rng, tags=["x", "y"], nested={"k": 1.5}),
        _vector_item("c", 2, rng),
    ]
    progress = Recorder()
    result = await run_upsertion(pg_pool, collection, items, _unused_registry(), settings, progress)
    assert result == {"upserted_count": 3}
    assert [f for f, _ in progress.calls] == [1.0]

    rows = await _rows(pg_pool, collection)
    assert len(rows) == 3 + 1 + 2 + 3
    by_item: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        by_item.setdefault(r["object_id"], []).append(r)
    for item in items:
        item_rows = by_item[item.object_id]
        averages = [r for r in item_rows if r["is_average"]]
        parts = [r for r in item_rows if not r["is_average"]]
        assert len(averages) == 1 and averages[0]["part_id"] == ""
        assert sorted(r["part_id"] for r in parts) == sorted(p.part_id for p in item.parts)
        given = {p.part_id: np.array(p.vector, np.float32) for p in item.parts}
        for r in parts:
            np.testing.assert_array_equal(
                as_array(r["vector"]).astype(np.float32), given[r["part_id"]]
            )
            assert r["text"] is None and r["user_id"] is None
        # The payload is stored once, on the head row.
        assert averages[0]["payload"] == item.payload
        assert all(r["payload"] == {} for r in parts)
        # dot: the plain mean, not normalised.
        mean = np.stack(list(given.values())).mean(axis=0)
        np.testing.assert_allclose(as_array(averages[0]["vector"]), mean, atol=1e-6)
    assert await count_originals(pg_pool, collection) == 3

    stored = await get_items(pg_pool, collection, ["c", "missing", "a"], include_vectors=True)
    assert [s.object_id for s in stored] == ["c", "a"]
    assert [p.part_id for p in stored[1].parts] == ["part-0", "part-1", "part-2"]
    assert stored[1].payload == {"color": "red"}


async def test_a_large_payload_is_stored_once_however_many_parts_the_item_has(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    """An item of 80 parts with a 100 KB payload (random, so not compressible) stores about
    100 KB of payload, not 80 copies of it."""
    collection = await new_collection(pg_pool, "cosine", "min")
    rng = np.random.default_rng(11)
    blob = rng.bytes(75_000).hex()[:100_000]
    item = _vector_item("big", 80, rng, blob=blob)
    await run_upsertion(pg_pool, collection, [item], _unused_registry(), settings, Recorder())
    stored = await pg_pool.fetchval(
        f"SELECT sum(pg_column_size(payload)) FROM {catalog.items_table(collection)}"
    )
    assert 50_000 < stored < 150_000
    (read,) = await get_items(pg_pool, collection, ["big"], include_vectors=False)
    assert read.payload == {"blob": blob} and len(read.parts) == 80


async def test_a_part_with_text_and_vector_keeps_both_and_is_not_encoded(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool, "cosine", "min")
    vector = _vec(np.random.default_rng(5))
    item = ItemInput(object_id="tv", parts=[PartInput("0", text="kept text", vector=vector)])
    # The registry cannot encode anything: the given vector must be used as it is.
    await run_upsertion(pg_pool, collection, [item], _unused_registry(), settings, Recorder())
    [part] = [r for r in await _rows(pg_pool, collection) if not r["is_average"]]
    assert part["text"] == "kept text"
    np.testing.assert_array_equal(
        as_array(part["vector"]).astype(np.float32), np.asarray(vector, np.float32)
    )


@pytest.mark.parametrize("drop_copies", [True, False])
async def test_reupsert_with_fewer_parts_leaves_no_leftovers(
    pg_pool: asyncpg.Pool, settings: Settings, drop_copies: bool
) -> None:
    settings = settings.model_copy(update={"delete_user_copies_on_upsert": drop_copies})
    collection = await new_collection(pg_pool, "euclidean", "min")
    rng = np.random.default_rng(2)
    registry = _unused_registry()
    await run_upsertion(
        pg_pool,
        collection,
        [_vector_item("x", 4, rng, v=1), _vector_item("keep", 2, rng, v=1)],
        registry,
        settings,
        Recorder(),
    )
    # A user's improved copy of "x": dropped by a re-upsert of the original unless configured.
    await pg_pool.execute(
        f"INSERT INTO {catalog.items_table(collection)}"
        " (object_id, part_id, is_average, user_id, vector)"
        " VALUES ('x', 'part-0', false, 'user-1', $1)",
        np.ones(DIMS, np.float32),
    )
    replacement = ItemInput(
        object_id="x", payload={"v": 2}, parts=[PartInput("only", vector=_vec(rng))]
    )
    result = await run_upsertion(pg_pool, collection, [replacement], registry, settings, Recorder())
    assert result == {"upserted_count": 1}

    rows = [r for r in await _rows(pg_pool, collection) if r["object_id"] == "x"]
    originals = [r for r in rows if r["user_id"] is None]
    assert sorted((r["part_id"], r["is_average"]) for r in originals) == [
        ("", True),
        ("only", False),
    ]
    assert [r["payload"] for r in originals] == [{}, {"v": 2}]  # the part, then the head
    # Euclidean: the average of one part is that part.
    np.testing.assert_allclose(
        as_array(originals[0]["vector"]), as_array(originals[1]["vector"]), atol=1e-6
    )
    copies = [r["user_id"] for r in rows if r["user_id"] is not None]
    assert copies == ([] if drop_copies else ["user-1"])
    keep = [r for r in await _rows(pg_pool, collection) if r["object_id"] == "keep"]
    assert len(keep) == 3  # untouched
    assert await count_originals(pg_pool, collection) == 2

    # Re-running the same upsertion writes the same rows again.
    before = await _rows(pg_pool, collection)
    await run_upsertion(pg_pool, collection, [replacement], registry, settings, Recorder())
    after = await _rows(pg_pool, collection)
    assert [repr(tuple(r.values())) for r in before] == [repr(tuple(r.values())) for r in after]


async def test_average_row_is_the_normalised_mean_under_cosine(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool, "cosine", "min")
    rng = np.random.default_rng(3)
    items = [_vector_item(f"o{i}", n, rng) for i, n in enumerate([1, 2, 5])]
    # Parts of very different lengths: the mean is still taken over the raw vectors.
    items.append(
        ItemInput(
            object_id="scaled",
            parts=[
                PartInput("a", vector=[10.0] + [0.0] * (DIMS - 1)),
                PartInput("b", vector=[0.0, 1.0] + [0.0] * (DIMS - 2)),
            ],
        )
    )
    await run_upsertion(pg_pool, collection, items, _unused_registry(), settings, Recorder())
    for item in items:
        vector = await pg_pool.fetchval(
            f"SELECT vector FROM {catalog.items_table(collection)}"
            " WHERE object_id = $1 AND is_average",
            item.object_id,
        )
        mean = np.array([p.vector for p in item.parts], np.float64).mean(axis=0)
        got = as_array(vector)
        assert abs(np.linalg.norm(got) - 1.0) < 1e-5
        np.testing.assert_allclose(got, mean / np.linalg.norm(mean), atol=1e-5)


async def test_progress_false_stops_after_the_first_batch(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    small_batches = settings.model_copy(update={"upsert_db_batch_size": 2})
    collection = await new_collection(pg_pool, "cosine", "avg")
    rng = np.random.default_rng(4)
    items = [_vector_item(f"o{i}", 2, rng) for i in range(5)]

    stopper = Recorder(keep_going=False)
    result = await run_upsertion(
        pg_pool, collection, items, _unused_registry(), small_batches, stopper
    )
    assert result == {"upserted_count": 2, "stopped": True}
    assert len(stopper.calls) == 1
    assert stopper.calls[0][0] == pytest.approx(0.4)
    assert "2 of 5" in stopper.calls[0][1]
    ids = {r["object_id"] for r in await _rows(pg_pool, collection)}
    assert ids == {"o0", "o1"}

    going = Recorder()
    result = await run_upsertion(
        pg_pool, collection, items, _unused_registry(), small_batches, going
    )
    assert result == {"upserted_count": 5}
    assert [f for f, _ in going.calls] == pytest.approx([0.4, 0.8, 1.0])
    assert await count_originals(pg_pool, collection) == 5


async def test_run_deletion_removes_items_and_counts_missing(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool, "euclidean", "avg")
    rng = np.random.default_rng(5)
    items = [_vector_item(f"o{i}", 3, rng) for i in range(4)]
    await run_upsertion(pg_pool, collection, items, _unused_registry(), settings, Recorder())
    await pg_pool.execute(
        f"INSERT INTO {catalog.items_table(collection)}"
        " (object_id, part_id, is_average, user_id, vector)"
        " VALUES ('o1', '', true, 'user-9', $1)",
        np.ones(DIMS, np.float32),
    )
    result = await run_deletion(pg_pool, collection, ["o1", "o3", "nope"])
    assert result == {"deleted_count": 2, "missing_count": 1}
    remaining = {(r["object_id"], r["user_id"]) for r in await _rows(pg_pool, collection)}
    assert remaining == {("o0", None), ("o2", None)}  # user copies of o1 went too
    assert await count_originals(pg_pool, collection) == 2
    assert await run_deletion(pg_pool, collection, ["o1"]) == {
        "deleted_count": 0,
        "missing_count": 1,
    }


async def test_base_encoder_splits_and_encodes_text(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    base = TextMiniLMPlugin(settings).upload_initial_model()
    async with pg_pool.acquire() as conn, conn.transaction():
        exists = await conn.fetchval(
            "SELECT count(*) FROM models WHERE model_id = $1", base.model_id
        )
        if not exists:
            await catalog.insert_model(conn, base)
    collection = await new_collection(pg_pool, model=base)
    assert collection.model.dimensions == 384
    small_parts = settings.model_copy(update={"splitter_max_words": 6, "splitter_overlap_words": 2})
    texts = {
        "t1": "The cat sat on the mat. It was warm and sunny outside today.",
        "t2": "Vectors of short texts.",
        "t3": "one two three four five six seven eight nine ten eleven twelve thirteen",
    }
    rng = np.random.default_rng(6)
    given = rng.normal(size=384).astype(np.float32)
    items = [ItemInput(object_id=k, text=v, payload={"k": k}) for k, v in texts.items()]
    # Text parts and a ready vector in one item: encoded vectors must land on their parts.
    items.append(
        ItemInput(
            object_id="mixed",
            parts=[
                PartInput("first", text="A sentence about dogs."),
                PartInput("given", vector=[float(v) for v in given]),
                PartInput("last", text="Another one about the weather."),
            ],
        )
    )
    registry = EncoderRegistry()
    result = await run_upsertion(pg_pool, collection, items, registry, small_parts, Recorder())
    assert result == {"upserted_count": 4}

    stored = {
        s.object_id: s
        for s in await get_items(pg_pool, collection, list(texts) + ["mixed"], include_vectors=True)
    }
    encoder = registry.get(base)
    for object_id, text in texts.items():
        chunks = split_text(text, max_words=6, overlap_words=2)
        parts = stored[object_id].parts
        assert [p.part_id for p in parts] == [str(i) for i in range(len(chunks))]
        assert [p.text for p in parts] == chunks
        assert len(chunks) >= (1 if object_id == "t2" else 2)
        expected = encoder.encode_items(chunks)
        for part, want in zip(parts, expected, strict=True):
            v = np.asarray(part.vector, np.float64)
            assert v.shape == (384,)
            assert abs(np.linalg.norm(v) - 1.0) < 1e-3
            np.testing.assert_allclose(v, want, atol=1e-3)
        # Different chunks get different vectors.
        if len(parts) > 1:
            assert not np.allclose(parts[0].vector, parts[1].vector)

    mixed = {p.part_id: p for p in stored["mixed"].parts}
    np.testing.assert_allclose(mixed["given"].vector, given, atol=1e-6)
    for part_id, text in [
        ("first", "A sentence about dogs."),
        ("last", "Another one about the weather."),
    ]:
        assert mixed[part_id].text == text
        np.testing.assert_allclose(
            mixed[part_id].vector, encoder.encode_items([text])[0], atol=1e-3
        )

    # Item search ranks the encoded text sensibly: the cat text is nearest to a cat query.
    query = encoder.encode_queries(["a cat on a mat"])[0]
    nearest = await pg_pool.fetchval(
        f"SELECT object_id FROM {catalog.items_table(collection)} WHERE NOT is_average"
        f" ORDER BY vector <=> $1 LIMIT 1",
        query,
    )
    assert nearest == "t1"
