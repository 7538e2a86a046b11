"""Categories collections on real PostgreSQL: created with the first upsert, written and read
through the items' own upsertion code and worker handlers, listed by page token, predicted
from with each selector, and never mistaken for an item collection.

The model encodes word counts over four words (tests/integration/tiny_plugin.py), under the
cosine metric, so every distance is worked out by hand."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import numpy as np
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres
from es_core.categories.model import Category
from es_core.categories.predict import PredictCategoriesInput, predict_categories
from es_core.categories.selectors import DistanceSelector, ProbabilitySelector, UnsetSelector
from es_core.categories.use_case import (
    DeleteCategoriesInput,
    UpsertCategoriesInput,
    delete_categories,
    list_categories,
    upsert_categories,
)
from es_core.collections import blue as blue_switch
from es_core.collections.lifecycle import delete_collection
from es_core.collections.listing import list_collections
from es_core.collections.write_targets import kept_in_step, write_targets
from es_core.config import Settings
from es_core.context import Context
from es_core.domain import Collection, Model
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition, InvalidArgument, NotFound
from es_core.interleaving.pair import interleaving_pair
from es_core.item_input import ItemInput
from es_core.items_use_case import UpsertItemsInput, upsert_items
from es_core.pagination import PageRequest
from es_core.plugins.protocol import SearchIndexInfo
from es_core.plugins.text_categories import TextCategoriesPlugin
from es_core.search.use_case import SearchContext
from es_core.storage import catalog
from es_core.storage.db import create_pool
from es_core.storage.migrations import migrate
from es_core.tasks.model import Task
from es_core.tasks.store import get_task
from es_workers import upsertion as worker
from es_workers.runtime import WorkerContext
from tests.integration.helpers import RecordingSender, fresh_database
from tests.integration.tiny_plugin import TINY_SOURCE, TinyDotPlugin, WordCountFactory
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

INDEX = SearchIndexInfo(4, "cosine", "min", hnsw_m=8, hnsw_ef_construction=32)
MODEL = Model("words-v1", "word counts", "1", 4, "cosine", "min", TINY_SOURCE, deployed=True)
FRUIT = [
    Category("apples", "Apples", "apple apple"),
    Category("pears", "Pears", "pear", {"aisle": 3}),
    Category("plums", "Plums", "plum"),
    Category("figs", "Figs", ""),  # no text: its name is encoded... "Figs" counts no word
    Category("mixed", "Apples and pears", "apple pear"),
]


@dataclass
class World:
    settings: Settings
    pool: asyncpg.Pool
    items: Collection
    sender: RecordingSender
    registry: EncoderRegistry
    plugin: TextCategoriesPlugin

    @property
    def ctx(self) -> Context:
        return Context(self.settings, self.pool, self.sender, INDEX, TOKENS)

    @property
    def search(self) -> SearchContext:
        return SearchContext(self.settings, self.pool, self.registry, TOKENS)

    async def run(self, task: Task) -> Task:
        """The task through the upsertion worker's own handler, as a worker runs it."""
        context = WorkerContext(
            self.settings, self.pool, self.registry, TinyDotPlugin(self.settings)
        )
        handler = worker._upsert if task.kind == "upsertion" else worker._delete

        async def progress(fraction: float, message: str) -> bool:
            return True

        result = await handler(context, task, progress)
        await self.pool.execute(
            "UPDATE tasks SET status = 'done', result = $2 WHERE task_id = $1::uuid",
            task.task_id,
            result,
        )
        return await get_task(self.pool, task.task_id)

    async def upsert(self, categories: list[Category], collection_id: str = "") -> Task:
        task = await upsert_categories(
            self.ctx, self.plugin, UpsertCategoriesInput(categories, collection_id)
        )
        return await self.run(task)


@pytest_asyncio.fixture
async def world(pg_server: EmbeddedPostgres) -> AsyncIterator[World]:
    """A fresh database whose blue item collection is the word-count model's."""
    settings = Settings(categories_max_per_collection=8)
    async with fresh_database(pg_server.dsn) as dsn:
        pool = await create_pool(settings, dsn)
        try:
            async with pool.acquire() as conn:
                await migrate(conn)
                await catalog.insert_model(conn, MODEL)
                items = await catalog.create_collection(
                    conn, MODEL.model_id, MODEL, state="green", hnsw_m=8, hnsw_ef_construction=32
                )
                await catalog.set_blue_collection(conn, items.collection_id)
            registry = EncoderRegistry(WordCountFactory().create)
            yield World(
                settings, pool, items, RecordingSender(), registry, TextCategoriesPlugin(settings)
            )
        finally:
            await pool.close()


async def test_the_first_upsert_creates_the_models_blue_categories_collection(
    world: World,
) -> None:
    assert await world.pool.fetchval("SELECT count(*) FROM categories_blue") == 0
    task = await upsert_categories(world.ctx, world.plugin, UpsertCategoriesInput(FRUIT[:2]))
    assert task.kind == "upsertion" and task.params["collection_id"] == "categories/words-v1"
    assert task.params["version"] > 0  # ordered like any other write
    assert world.sender.sent == [task.task_id]
    row = await world.pool.fetchrow(
        "SELECT kind, state, model_id FROM collections WHERE collection_id = $1",
        "categories/words-v1",
    )
    assert dict(row) == {"kind": "categories", "state": "blue", "model_id": "words-v1"}
    assert await world.pool.fetchval(
        "SELECT collection_id FROM categories_blue WHERE model_id = 'words-v1'"
    ) == ("categories/words-v1")
    # The items' blue alias is untouched.
    assert await world.pool.fetchval("SELECT collection_id FROM blue_collection") == "words-v1"
    # A second upsert writes to the same collection.
    again = await upsert_categories(world.ctx, world.plugin, UpsertCategoriesInput(FRUIT[2:]))
    assert again.params["collection_id"] == "categories/words-v1"
    assert await world.pool.fetchval("SELECT count(*) FROM collections") == 2


async def test_categories_are_written_listed_by_page_and_deleted(world: World) -> None:
    done = await world.upsert(FRUIT)
    assert done.result == {"upserted_count": 5}
    pages, token = [], ""
    while True:
        page = await list_categories(world.ctx, "words-v1", PageRequest(2, token))
        assert page.categories_collection_id == "categories/words-v1"
        pages.append([c.category_id for c in page.categories])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["apples", "figs"], ["mixed", "pears"], ["plums"]]
    first = await list_categories(world.ctx, "", PageRequest(10))
    assert [c for c in first.categories if c.category_id == "pears"] == [FRUIT[1]]
    # What was encoded: the text, or the name when the text is empty.
    texts = dict(
        await world.pool.fetch(
            f"SELECT object_id, text FROM {catalog.items_table(await _categories(world))}"
            " WHERE NOT is_average"
        )
    )
    assert texts["figs"] == "Figs" and texts["apples"] == "apple apple"

    deleted = await world.run(
        await delete_categories(world.ctx, DeleteCategoriesInput(["pears", "nope"]))
    )
    assert deleted.result == {"deleted_count": 1, "missing_count": 1}
    left = await list_categories(world.ctx, "", PageRequest(10))
    assert [c.category_id for c in left.categories] == ["apples", "figs", "mixed", "plums"]


async def test_an_upsert_replaces_a_category(world: World) -> None:
    await world.upsert(FRUIT[:1])
    await world.upsert([Category("apples", "Green apples", "apple plum", {"v": 2})])
    page = await list_categories(world.ctx, "", PageRequest(10))
    assert page.categories == [Category("apples", "Green apples", "apple plum", {"v": 2})]


async def test_listing_refuses_foreign_and_forged_page_tokens(world: World) -> None:
    await world.upsert(FRUIT)
    page = await list_categories(world.ctx, "", PageRequest(2))
    other = TOKENS.encode({"id": "a"}, {"list": "collections"})
    for bad in (other, "not-a-token", page.next_page_token + "x"):
        with pytest.raises(InvalidArgument) as info:
            await list_categories(world.ctx, "", PageRequest(2, bad))
        assert info.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument) as info:
        await list_categories(world.ctx, "", PageRequest(-1))
    assert info.value.violations[0].field == "page_size"


async def test_a_model_without_categories_lists_none_and_refuses_deletes_and_predictions(
    world: World,
) -> None:
    page = await list_categories(world.ctx, "", PageRequest(10))
    assert (page.categories, page.next_page_token, page.categories_collection_id) == ([], "", "")
    with pytest.raises(FailedPrecondition, match="no categories collection"):
        await delete_categories(world.ctx, DeleteCategoriesInput(["apples"]))
    with pytest.raises(FailedPrecondition, match="UpsertCategories"):
        await predict_categories(world.search, world.plugin, PredictCategoriesInput("apple"))
    assert world.sender.sent == []


async def test_bad_category_writes_name_their_field_and_write_nothing(world: World) -> None:
    cases = [
        ([], "categories"),
        ([Category("", "x")], "categories[0].category_id"),
        ([Category("a" * 257, "x")], "categories[0].category_id"),
        ([Category("a", "")], "categories[0].name"),
        ([Category("a", "n" * 257)], "categories[0].name"),
        ([Category("a", "x", "t\x00")], "categories[0].text"),
        ([Category("a", "x"), Category("a", "y")], "categories[1].category_id"),
        ([Category("a", "x", payload={"k": "v" * 70_000})], "categories[0].payload"),
    ]
    for categories, field in cases:
        with pytest.raises(InvalidArgument) as info:
            await upsert_categories(world.ctx, world.plugin, UpsertCategoriesInput(categories))
        assert info.value.violations[0].field == field
    with pytest.raises(NotFound) as missing:
        await upsert_categories(
            world.ctx, world.plugin, UpsertCategoriesInput(FRUIT[:1], "no-such-collection")
        )
    assert missing.value.violations[0].field == "collection_id"
    with pytest.raises(InvalidArgument) as info:
        await delete_categories(world.ctx, DeleteCategoriesInput([]))
    assert info.value.violations[0].field == "category_ids"
    assert world.sender.sent == []
    assert await world.pool.fetchval("SELECT count(*) FROM collections") == 1


async def test_a_collection_holds_at_most_the_configured_number_of_categories(
    world: World,
) -> None:
    many = [Category(f"c{i}", f"C {i}", "apple") for i in range(9)]  # the cap is 8
    with pytest.raises(FailedPrecondition, match="at most 8"):
        await upsert_categories(world.ctx, world.plugin, UpsertCategoriesInput(many))
    # The refusal rolled back the collection it would have created.
    assert await world.pool.fetchval("SELECT count(*) FROM categories_blue") == 0
    await world.upsert(many[:8])
    # Replacing the ones held is fine; one more is not.
    await world.upsert(many[:8])
    with pytest.raises(FailedPrecondition):
        await upsert_categories(world.ctx, world.plugin, UpsertCategoriesInput([many[8]]))


async def test_item_collection_paths_never_see_a_categories_collection(world: World) -> None:
    await world.upsert(FRUIT)
    categories_id = "categories/words-v1"
    async with world.pool.acquire() as conn:
        listed, _ = await list_collections(conn, TOKENS, page_size=50, page_token="")
        assert [i.collection.collection_id for i in listed] == ["words-v1"]
        with pytest.raises(NotFound):
            await catalog.get_collection(conn, categories_id)
        assert (await catalog.get_collection(conn, categories_id, kind=None)).kind == "categories"
        with pytest.raises(NotFound):
            await catalog.resolve_collection(conn, categories_id)
        assert [c.collection_id for c in await kept_in_step(conn)] == ["words-v1"]
        assert [c.collection_id for c in await write_targets(conn, world.items)] == ["words-v1"]
        with pytest.raises(NotFound):
            await blue_switch.switch_blue(conn, categories_id)
        with pytest.raises(FailedPrecondition, match="no previous blue"):
            await blue_switch.rollback_blue(conn)
        with pytest.raises(NotFound):
            await delete_collection(conn, world.settings, categories_id)
        with pytest.raises(FailedPrecondition, match="no green collection"):
            await interleaving_pair(conn)
    with pytest.raises(NotFound):
        await upsert_items(
            world.ctx, UpsertItemsInput(categories_id, [ItemInput("x", text="apple")])
        )
    # Items written to the blue collection do not reach the categories.
    task = await upsert_items(world.ctx, UpsertItemsInput("", [ItemInput("x", text="apple")]))
    assert (await world.run(task)).result == {"upserted_count": 1}
    page = await list_categories(world.ctx, "", PageRequest(10))
    assert "x" not in [c.category_id for c in page.categories]


async def _categories(world: World) -> Collection:
    async with world.pool.acquire() as conn:
        return await catalog.get_collection(conn, "categories/words-v1", kind="categories")


def _cosine(a: list[float], b: list[float]) -> float:
    return 1 - float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# Word counts over (apple, pear, plum, fig).
VECTORS = {
    "apples": [2.0, 0, 0, 0],
    "pears": [0, 1.0, 0, 0],
    "plums": [0, 0, 1.0, 0],
    "mixed": [1.0, 1.0, 0, 0],
}
FRUIT_WITH_WORDS = [c for c in FRUIT if c.category_id != "figs"]  # "Figs" counts no word


async def test_predict_by_probability_is_an_exact_softmax_over_all_categories(
    world: World,
) -> None:
    await world.upsert(FRUIT_WITH_WORDS)
    query = [1.0, 0.2, 0, 0]
    distances = {k: _cosine(query, v) for k, v in VECTORS.items()}
    found = await predict_categories(
        world.search,
        world.plugin,
        PredictCategoriesInput(
            query_vector=query, selector=ProbabilitySelector(0.1, 0.0), limit=10
        ),
    )
    assert found.categories_collection_id == "categories/words-v1"
    ids = [p.category_id for p in found.predictions]
    assert ids == sorted(distances, key=distances.get)  # type: ignore[arg-type]
    z = {k: math.exp(-d / 0.1) for k, d in distances.items()}
    for p in found.predictions:
        assert p.probability == pytest.approx(z[p.category_id] / sum(z.values()), rel=1e-5)
        assert p.distance == pytest.approx(distances[p.category_id], abs=1e-6)
        assert p.score == pytest.approx(1 - p.distance)
    assert sum(p.probability for p in found.predictions) == pytest.approx(1.0)
    assert found.predictions[0].name == "Apples"
    # min_probability drops the improbable ones; limit cuts the rest.
    some = await predict_categories(
        world.search,
        world.plugin,
        PredictCategoriesInput(
            query_vector=query, selector=ProbabilitySelector(0.1, 0.2), limit=10
        ),
    )
    assert [p.category_id for p in some.predictions] == [
        i for i in ids if z[i] / sum(z.values()) >= 0.2
    ]
    one = await predict_categories(
        world.search, world.plugin, PredictCategoriesInput(query_vector=query, limit=1)
    )
    assert [p.category_id for p in one.predictions] == ids[:1]


async def test_predict_from_text_by_distance_and_by_default(world: World) -> None:
    await world.upsert(FRUIT_WITH_WORDS)
    # "pear" is (0, 1, 0, 0): pears at 0, mixed at 1 - 1/sqrt(2), the others at 1.
    near = await predict_categories(
        world.search,
        world.plugin,
        PredictCategoriesInput("pear", selector=DistanceSelector(0.3)),
    )
    assert [(p.category_id, round(p.distance, 4)) for p in near.predictions] == [
        ("pears", 0.0),
        ("mixed", round(1 - 1 / math.sqrt(2), 4)),
    ]
    # Probabilities there are the calibrated ones (T = 0.05) over all four.
    z = [math.exp(-d / 0.05) for d in (0.0, 1 - 1 / math.sqrt(2), 1.0, 1.0)]
    assert near.predictions[0].probability == pytest.approx(z[0] / sum(z), rel=1e-5)
    # The default selector: probability >= 0.05 at the calibrated temperature.
    default = await predict_categories(world.search, world.plugin, PredictCategoriesInput("pear"))
    assert [p.category_id for p in default.predictions] == ["pears"]
    nothing = await predict_categories(
        world.search, world.plugin, PredictCategoriesInput("plum", selector=DistanceSelector(0))
    )
    assert [p.category_id for p in nothing.predictions] == ["plums"]


async def test_bad_predictions_name_their_field(world: World) -> None:
    await world.upsert(FRUIT_WITH_WORDS)
    cases = [
        (PredictCategoriesInput(), "query_text"),
        (PredictCategoriesInput("   "), "query_text"),
        (PredictCategoriesInput("a" * 5000), "query_text"),
        (PredictCategoriesInput("apple", [1.0, 0, 0, 0]), "query_vector"),
        (PredictCategoriesInput(query_vector=[1.0, 0]), "query_vector.values"),
        (PredictCategoriesInput(query_vector=[0.0] * 4), "query_vector.values"),
        (PredictCategoriesInput("apple", limit=-1), "limit"),
        (PredictCategoriesInput("apple", limit=101), "limit"),
        (PredictCategoriesInput("apple", selector=UnsetSelector()), "selector"),
        (
            PredictCategoriesInput("apple", selector=DistanceSelector(3.0)),
            "selector.distance.max_distance",
        ),
        (
            PredictCategoriesInput("apple", selector=ProbabilitySelector(-1.0)),
            "selector.probability.temperature",
        ),
        (
            PredictCategoriesInput("apple", selector=ProbabilitySelector(0.1, 1.0)),
            "selector.probability.min_probability",
        ),
        (PredictCategoriesInput("apple", category_field="kind"), "category_field"),
    ]
    for request, field in cases:
        with pytest.raises(InvalidArgument) as info:
            await predict_categories(world.search, world.plugin, request)
        assert info.value.violations[0].field == field, request
    ok = await predict_categories(
        world.search, world.plugin, PredictCategoriesInput("apple", category_field="category")
    )
    assert ok.predictions[0].category_id == "apples"
    with pytest.raises(NotFound) as missing:
        await predict_categories(
            world.search, world.plugin, PredictCategoriesInput("apple", collection_id="nope")
        )
    assert missing.value.violations[0].field == "collection_id"
