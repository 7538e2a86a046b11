"""Items written by reference without their text (``ES_KEEP_REFERENCED_TEXT=false``) are read
again from their source by a reindex, re-split and encoded by the new model; one whose source
is gone fails the reindex, naming it, instead of being copied with the old model's vectors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.ingest.cleaning import TextCleaner
from es_core.ingest.prepare import Preparer
from es_core.item_input import ItemInput
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.model import Locator, SourceSpec
from es_core.loaders.registry import Loaders
from es_core.reindex.refetch import refetcher
from es_core.reindex.start import create_reindex
from es_core.storage import catalog
from es_core.storage.item_rows import get_items
from es_core.upsertion import run_upsertion, splitter
from tests.integration.blue_green import World, fresh_world, hash_model, keep_going, run_reindex

pytestmark = pytest.mark.integration

TEXTS = {
    f"doc-{i}": f"Sentence one of document {i}. Sentence two says {i * 7} things." for i in range(6)
}


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres, tmp_path: Path) -> AsyncIterator[World]:
    for object_id, text in TEXTS.items():
        (tmp_path / f"{object_id}.txt").write_text(text)
    settings = {
        "keep_referenced_text": False,
        "file_roots": [tmp_path],
        "splitter_max_words": 5,
        "splitter_overlap_words": 0,
    }
    async with fresh_world(pg_server.dsn, **settings) as w:
        yield w


def _preparer(world: World) -> Preparer:
    return Preparer(TextCleaner(()), splitter(world.settings, None), world.settings)


async def _write_by_reference(world: World, loader: AggregatedLoader) -> None:
    items = [
        ItemInput(object_id, {"n": i}, source=SourceSpec("file", Locator(path=f"{object_id}.txt")))
        for i, object_id in enumerate(TEXTS)
    ]
    result = await run_upsertion(
        world.pool, world.blue, items, world.registry, world.settings, keep_going, loader=loader
    )
    assert result == {"upserted_count": len(TEXTS)}


async def _reindex(world: World, loader: AggregatedLoader) -> tuple[str, catalog.Collection]:
    model = await world.add_model(hash_model())
    async with world.pool.acquire() as conn:
        started = await create_reindex(
            conn,
            world.settings,
            world.index,
            source_collection_id="",
            destination_model_id=model.model_id,
        )
    parent = await run_reindex(
        world, started.task.task_id, refetch=refetcher(loader, _preparer(world))
    )
    assert parent.status in ("done", "failed")
    return parent.error, await world.collection(started.destination_collection_id)


async def test_a_reindex_reads_the_text_again_and_keeps_only_vectors(world: World) -> None:
    loader = AggregatedLoader(Loaders(world.settings))
    await _write_by_reference(world, loader)
    stored = await get_items(world.pool, world.blue, list(TEXTS), include_vectors=False)
    assert all(p.text is None for item in stored for p in item.parts)  # not kept
    assert all(item.source is not None for item in stored)

    error, destination = await _reindex(world, loader)
    assert error == ""
    copies = await get_items(world.pool, destination, list(TEXTS), include_vectors=True)
    assert [c.object_id for c in copies] == list(TEXTS)
    encoder = world.registry.get(destination.model)
    split = splitter(world.settings, None)
    for copy in copies:
        chunks = split(TEXTS[copy.object_id])
        assert len(copy.parts) == len(chunks) == 2
        assert all(p.text is None for p in copy.parts)
        expected = encoder.encode_items(chunks)
        got = np.asarray([p.vector for p in copy.parts], dtype=np.float32)
        assert np.allclose(got, expected, atol=1e-6), copy.object_id
        assert copy.source == SourceSpec("file", Locator(path=f"{copy.object_id}.txt"))
        assert copy.payload["n"] == list(TEXTS).index(copy.object_id)


async def test_an_item_whose_source_is_gone_fails_the_reindex_naming_it(
    world: World, tmp_path: Path
) -> None:
    loader = AggregatedLoader(Loaders(world.settings))
    await _write_by_reference(world, loader)
    (tmp_path / "doc-3.txt").unlink()
    error, _ = await _reindex(world, loader)
    assert "'doc-3'" in error and "could not be read again" in error and "fetch" in error
