"""The plugin owns the layout: a new database starts from the plugin's initial model, and every
collection made for its models is laid out and indexed as its search index info says; searches
then rank by its metric and aggregation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from importlib.metadata import EntryPoint

import asyncpg
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.encoders.registry import EncoderRegistry
from es_core.item_input import ItemInput
from es_core.plugins.protocol import FineTuningMethod
from es_core.plugins.registry import ENTRY_POINT_GROUP, PluginError, load_plugin
from es_core.reindex.start import create_reindex
from es_core.search.use_case import SearchContext, SearchInput, page_options, search
from es_core.storage import catalog
from es_core.storage.bootstrap import prepare_database
from es_core.storage.bulk_index import build_vector_index
from es_core.storage.db import create_pool
from es_core.upsertion import run_upsertion
from tests.integration.blue_green import keep_going
from tests.integration.helpers import fresh_database
from tests.integration.tiny_plugin import TinyDotPlugin
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

SETTINGS = Settings(plugin="tiny-dot")


def tiny_plugin() -> FineTuningMethod:
    """The test plugin found as an installed one would be: by name, through an entry point."""
    point = EntryPoint(
        name="tiny-dot",
        value="tests.integration.tiny_plugin:TinyDotPlugin",
        group=ENTRY_POINT_GROUP,
    )
    return load_plugin(SETTINGS, [point])


@pytest_asyncio.fixture
async def pool(pg_server: EmbeddedPostgres) -> AsyncIterator[asyncpg.Pool]:
    """A new, empty database."""
    async with fresh_database(pg_server.dsn) as dsn:
        pool = await create_pool(SETTINGS, dsn, max_size=2)
        try:
            yield pool
        finally:
            await pool.close()


async def _hnsw_index(pool: asyncpg.Pool, collection: Collection) -> str:
    return str(
        await pool.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE tablename = $1 AND indexdef LIKE '%hnsw%'",
            collection.table_name,
        )
    )


async def test_a_new_database_starts_from_the_plugins_model_and_ranks_by_its_metric(
    pool: asyncpg.Pool,
) -> None:
    plugin = tiny_plugin()
    assert isinstance(plugin, TinyDotPlugin)
    blue = await prepare_database(pool, SETTINGS, plugin)

    assert blue.collection_id == blue.model.model_id == "tiny-dot-base"
    assert blue.state == "blue"
    assert (blue.model.dimensions, blue.model.metric, blue.model.aggregation) == (4, "dot", "avg")
    assert (blue.hnsw_m, blue.hnsw_ef_construction) == (8, 24)
    assert catalog.DISTANCE_OPERATORS[blue.model.metric] == "<#>"
    vector_type = await pool.fetchval(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
        " WHERE attrelid = $1::regclass AND attname = 'vector'",
        blue.table_name,
    )
    assert vector_type == "vector(4)"
    index = await _hnsw_index(pool, blue)
    assert "vector_ip_ops" in index and "m='8'" in index and "ef_construction='24'" in index

    # Written and searched through the plugin's splitter and encoder (word counts).
    registry = EncoderRegistry(plugin.get_inference_client_factory().create)
    texts = {
        "a": "apple apple apple | pear",
        "b": "apple | apple",
        "c": "apple apple pear pear pear | apple apple",
        "d": "fig | plum plum",
    }
    items = [ItemInput(object_id=k, text=v) for k, v in texts.items()]
    split = plugin.get_items_splitter().split
    await run_upsertion(pool, blue, items, registry, SETTINGS, keep_going, split)
    found = await search(
        SearchContext(SETTINGS, pool, registry, TOKENS),
        SearchInput(
            options=page_options(
                SETTINGS, limit=10, max_distance=None, filter=None, page_token="", user_id=""
            ),
            query_text="apple",
            query_vector=None,
            lexical_query="",
            collection_id="",
            sort=None,
            ranking=None,
            create_session=False,
            interleave=False,
        ),
    )
    # The query is (1, 0, 0, 0): a part's distance is minus its apple count, and an item's the
    # mean over its parts. Under the dot product with MIN, "a" (-3) would lead; under cosine no
    # distance is negative.
    assert [(h.object_id, h.distance) for h in found.hits] == [
        ("c", -2.0),
        ("a", -1.5),
        ("b", -1.0),
        ("d", 0.0),
    ]


async def test_a_reindex_destination_is_indexed_as_the_plugin_says(pool: asyncpg.Pool) -> None:
    plugin = tiny_plugin()
    await prepare_database(pool, SETTINGS, plugin)
    fine_tuned = replace(
        plugin.upload_initial_model(), model_id="tiny-dot-ft-v1", version="v1", deployed=True
    )
    async with pool.acquire() as conn:
        await catalog.insert_model(conn, fine_tuned)
        started = await create_reindex(
            conn,
            SETTINGS,
            plugin.get_search_index_info(),
            source_collection_id="",
            destination_model_id=fine_tuned.model_id,
        )
        destination = await catalog.get_collection(conn, started.destination_collection_id)
    assert (destination.hnsw_m, destination.hnsw_ef_construction) == (8, 24)
    assert (destination.model.metric, destination.model.aggregation) == ("dot", "avg")
    # A green collection's vector index is built once its rows are in (the bulk path).
    assert destination.index_state == "building"
    await build_vector_index(pool, SETTINGS, destination.collection_id)
    index = await _hnsw_index(pool, destination)
    assert "vector_ip_ops" in index and "m='8'" in index and "ef_construction='24'" in index


class ContradictingPlugin(TinyDotPlugin):
    """Its initial model says cosine while its index says dot."""

    def upload_initial_model(self) -> Model:
        return replace(super().upload_initial_model(), metric="cosine")


async def test_an_initial_model_that_contradicts_the_index_stops_the_first_start(
    pool: asyncpg.Pool,
) -> None:
    with pytest.raises(PluginError, match=r"'tiny-dot'.*metric 'cosine' \(expected 'dot'\)"):
        await prepare_database(pool, SETTINGS, ContradictingPlugin(SETTINGS))
    assert await pool.fetchval("SELECT count(*) FROM models") == 0
    assert await pool.fetchval("SELECT count(*) FROM collections") == 0
