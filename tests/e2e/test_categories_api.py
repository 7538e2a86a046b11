"""Categories through gRPC on a real stack: CategoryService writes (tasks a worker runs) and
lists them, SearchService.PredictCategories predicts them from text with each selector, and
bad requests are refused naming their field.

Categories go into the categories collection of the blue collection's model, named
explicitly (the session's stack is shared: another test may switch blue later); their ids
start with "e2e-"."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.protobuf.struct_pb2 import Struct

from embedding_studio.client import Client
from embedding_studio.v1 import categories_pb2, common_pb2, fine_tune_pb2, search_pb2
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

BAD = grpc.StatusCode.INVALID_ARGUMENT
CATEGORIES = {
    "e2e-headphones": ("Headphones", "headphones, earphones and wireless earbuds for music"),
    "e2e-tents": ("Tents", "camping tents and shelters for sleeping outdoors"),
    "e2e-shoes": ("Running shoes", "running shoes, sneakers and trainers for jogging"),
    "e2e-laptops": ("Laptops", "laptop computers and notebooks"),
    "e2e-coffee": ("Coffee", "coffee beans, espresso and ground coffee"),
    "e2e-books": ("Books", "novels, paperback books and ebooks to read"),
    "e2e-bicycles": ("Bicycles", "bicycles, bikes and cycling gear"),
    "e2e-cookware": ("Cookware", "pots, frying pans and kitchen cookware"),
}
OBVIOUS = {
    "wireless earbuds": "e2e-headphones",
    "a tent for camping": "e2e-tents",
    "sneakers for a marathon": "e2e-shoes",
    "a notebook computer": "e2e-laptops",
    "espresso beans": "e2e-coffee",
    "a paperback novel": "e2e-books",
    "a mountain bike": "e2e-bicycles",
    "a frying pan": "e2e-cookware",
}


def _category(category_id: str) -> categories_pb2.Category:
    name, text = CATEGORIES[category_id]
    payload = Struct()
    payload.update({"suite": "categories"})
    return categories_pb2.Category(category_id=category_id, name=name, text=text, payload=payload)


def _predict(
    client: Client, collection_id: str, **fields: object
) -> search_pb2.PredictCategoriesResponse:
    request = search_pb2.PredictCategoriesRequest(collection_id=collection_id, **fields)  # type: ignore[arg-type]
    response: search_pb2.PredictCategoriesResponse = client.search.PredictCategories(
        request, timeout=60
    )
    return response


@pytest.fixture(scope="module")
def items_collection(client: Client) -> Iterator[str]:
    """The blue item collection, its model's categories upserted (through a worker's task)."""
    collection_id = client.get_blue_collection(timeout=30).collection_id
    if not client.categories.ListCategories(
        categories_pb2.ListCategoriesRequest(collection_id=collection_id), timeout=30
    ).categories_collection_id:
        error = expect_error(
            lambda: _predict(client, collection_id, query_text="anything"),
            grpc.StatusCode.FAILED_PRECONDITION,
        )
        assert "UpsertCategories" in (error.details() or "")
        # A categories fine-tuning has nothing to train for yet.
        error = expect_error(
            lambda: client.start_fine_tuning(
                target=fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES, timeout=30
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "target",
        )
        assert "UpsertCategories" in (error.details() or "")
    response = client.categories.UpsertCategories(
        categories_pb2.UpsertCategoriesRequest(
            categories=[_category(c) for c in CATEGORIES], collection_id=collection_id
        ),
        timeout=60,
    )
    assert response.task.kind == common_pb2.TASK_KIND_UPSERTION
    final = client.wait_for_task(response.task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    assert final.result["upserted_count"] == len(CATEGORIES)
    yield collection_id


def test_categories_are_listed_by_page(client: Client, items_collection: str) -> None:
    seen: list[categories_pb2.Category] = []
    token = ""
    while True:
        page = client.categories.ListCategories(
            categories_pb2.ListCategoriesRequest(
                collection_id=items_collection, page_size=3, page_token=token
            ),
            timeout=30,
        )
        assert len(page.categories) <= 3
        assert page.categories_collection_id.startswith("categories/")
        seen += page.categories
        token = page.next_page_token
        if not token:
            break
    mine = [c for c in seen if c.category_id.startswith("e2e-")]
    assert [c.category_id for c in mine] == sorted(CATEGORIES)
    shoes = next(c for c in mine if c.category_id == "e2e-shoes")
    assert (shoes.name, shoes.text) == CATEGORIES["e2e-shoes"]
    assert dict(shoes.payload) == {"suite": "categories"}
    # Categories collections are not item collections.
    listed = client.list_collections(timeout=30)
    assert not [c for c in listed if c.collection_id.startswith("categories/")]


def test_obvious_queries_get_their_category_first(client: Client, items_collection: str) -> None:
    for query, expected in OBVIOUS.items():
        found = _predict(client, items_collection, query_text=query, limit=3)
        assert found.predictions, query
        top = found.predictions[0]
        assert top.category_id == expected, (query, [p.category_id for p in found.predictions])
        assert top.category == top.category_id and top.name == CATEGORIES[expected][0]
        assert 0 < top.probability <= 1 and top.score == pytest.approx(1 - top.distance)
        assert found.categories_collection_id.startswith("categories/")


def test_each_selector(client: Client, items_collection: str) -> None:
    query = "wireless earbuds"
    everything = _predict(
        client,
        items_collection,
        query_text=query,
        limit=100,
        selector=search_pb2.CategorySelector(
            probability=search_pb2.ProbabilitySelector(min_probability=0.0)
        ),
    )
    assert len(everything.predictions) >= len(CATEGORIES)
    # A softmax over every category: the probabilities add up to one.
    assert sum(p.probability for p in everything.predictions) == pytest.approx(1.0, abs=1e-6)
    distances = [p.distance for p in everything.predictions]
    assert distances == sorted(distances)

    cut = everything.predictions[1].distance
    near = _predict(
        client,
        items_collection,
        query_text=query,
        limit=100,
        selector=search_pb2.CategorySelector(
            distance=search_pb2.DistanceSelector(max_distance=cut)
        ),
    )
    assert [p.category_id for p in near.predictions] == [
        p.category_id for p in everything.predictions if p.distance <= cut
    ]
    none = _predict(
        client,
        items_collection,
        query_text=query,
        selector=search_pb2.CategorySelector(distance=search_pb2.DistanceSelector(max_distance=0)),
    )
    assert list(none.predictions) == []

    # A high temperature flattens the probabilities; a high minimum keeps only the top one.
    flat = _predict(
        client,
        items_collection,
        query_text=query,
        limit=100,
        selector=search_pb2.CategorySelector(
            probability=search_pb2.ProbabilitySelector(temperature=100.0)
        ),
    )
    assert max(p.probability for p in flat.predictions) < 2 / len(everything.predictions)
    sure = _predict(
        client,
        items_collection,
        query_text=query,
        selector=search_pb2.CategorySelector(
            probability=search_pb2.ProbabilitySelector(min_probability=0.5)
        ),
    )
    assert [p.category_id for p in sure.predictions] == ["e2e-headphones"]
    # No selector: the plugin's (probability >= 0.05 at the calibrated temperature).
    default = _predict(client, items_collection, query_text=query)
    assert default.predictions[0].category_id == "e2e-headphones"
    assert all(p.probability >= 0.05 for p in default.predictions)


def test_a_query_vector_is_compared_as_given(client: Client, items_collection: str) -> None:
    vector = common_pb2.Vector(values=[1.0] + [0.0] * 383)
    found = _predict(
        client,
        items_collection,
        query_vector=vector,
        limit=100,
        selector=search_pb2.CategorySelector(
            probability=search_pb2.ProbabilitySelector(min_probability=0.0)
        ),
    )
    assert len(found.predictions) >= len(CATEGORIES)
    assert sum(p.probability for p in found.predictions) == pytest.approx(1.0, abs=1e-6)


def test_a_deleted_category_is_predicted_no_more(client: Client, items_collection: str) -> None:
    deletion = client.categories.DeleteCategories(
        categories_pb2.DeleteCategoriesRequest(
            category_ids=["e2e-cookware", "e2e-never-was"], collection_id=items_collection
        ),
        timeout=30,
    )
    final = client.wait_for_task(deletion.task.task_id, timeout_seconds=120)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    assert (final.result["deleted_count"], final.result["missing_count"]) == (1, 1)
    found = _predict(client, items_collection, query_text="a frying pan", limit=100)
    assert "e2e-cookware" not in [p.category_id for p in found.predictions]
    again = client.categories.UpsertCategories(
        categories_pb2.UpsertCategoriesRequest(
            categories=[_category("e2e-cookware")], collection_id=items_collection
        ),
        timeout=30,
    )
    assert client.wait_for_task(again.task.task_id, 120).status == common_pb2.TASK_STATUS_DONE
    found = _predict(client, items_collection, query_text="a frying pan", limit=1)
    assert [p.category_id for p in found.predictions] == ["e2e-cookware"]


PROBABILITY = search_pb2.ProbabilitySelector
BAD_PREDICTIONS = [
    ({}, "query_text"),
    ({"query_text": "   "}, "query_text"),
    ({"query_text": "x", "query_vector": common_pb2.Vector(values=[1.0] * 384)}, "query_vector"),
    ({"query_vector": common_pb2.Vector(values=[1.0, 2.0])}, "query_vector.values"),
    ({"query_text": "x", "limit": -1}, "limit"),
    ({"query_text": "x", "limit": 101}, "limit"),
    ({"query_text": "x", "selector": search_pb2.CategorySelector()}, "selector"),
    (
        {
            "query_text": "x",
            "selector": search_pb2.CategorySelector(
                distance=search_pb2.DistanceSelector(max_distance=2.5)
            ),
        },
        "selector.distance.max_distance",
    ),
    (
        {
            "query_text": "x",
            "selector": search_pb2.CategorySelector(probability=PROBABILITY(temperature=-1)),
        },
        "selector.probability.temperature",
    ),
    (
        {
            "query_text": "x",
            "selector": search_pb2.CategorySelector(probability=PROBABILITY(min_probability=1.0)),
        },
        "selector.probability.min_probability",
    ),
    ({"query_text": "x", "category_field": "kind"}, "category_field"),
]


@pytest.mark.parametrize(("fields", "field"), BAD_PREDICTIONS, ids=[f for _, f in BAD_PREDICTIONS])
def test_bad_predictions_are_refused_naming_the_field(
    client: Client, items_collection: str, fields: dict[str, object], field: str
) -> None:
    expect_error(lambda: _predict(client, items_collection, **fields), BAD, field)


def test_bad_category_requests_are_refused(client: Client, items_collection: str) -> None:
    expect_error(
        lambda: _predict(client, "no-such-collection", query_text="x"),
        grpc.StatusCode.NOT_FOUND,
        "collection_id",
    )
    upsert = client.categories.UpsertCategories
    expect_error(
        lambda: upsert(categories_pb2.UpsertCategoriesRequest(), timeout=30), BAD, "categories"
    )
    expect_error(
        lambda: upsert(
            categories_pb2.UpsertCategoriesRequest(
                categories=[categories_pb2.Category(category_id="e2e-x")]
            ),
            timeout=30,
        ),
        BAD,
        "categories[0].name",
    )
    expect_error(
        lambda: client.categories.DeleteCategories(
            categories_pb2.DeleteCategoriesRequest(), timeout=30
        ),
        BAD,
        "category_ids",
    )
    expect_error(
        lambda: client.categories.ListCategories(
            categories_pb2.ListCategoriesRequest(page_token="forged"), timeout=30
        ),
        BAD,
        "page_token",
    )
