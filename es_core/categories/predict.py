"""The PredictCategories use case: a query (text or vector) to the categories a selector keeps.

The request names an item collection (empty = the blue one); the query is encoded by that
collection's model's query encoder (the one its searches use) and compared with every
category of the model's blue categories collection. Distances become probabilities by a
softmax over all of them (``es_core.categories.selectors``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from es_core.categories.model import from_head_payload
from es_core.categories.selectors import (
    RequestedSelector,
    check_selector,
    select,
)
from es_core.categories.store import blue_categories, nearest_categories
from es_core.errors import FailedPrecondition, InvalidArgument
from es_core.item_input import check_vector
from es_core.plugins.protocol import CategoriesFineTuningMethod
from es_core.search.query import check_query_text
from es_core.search.use_case import SearchContext
from es_core.storage.catalog import resolve_collection

DEFAULT_LIMIT = 10
MAX_LIMIT = 100


@dataclass(frozen=True)
class PredictCategoriesInput:
    query_text: str | None = None
    query_vector: list[float] | None = None
    limit: int = 0  # 0 = 10
    collection_id: str = ""  # the item collection whose model answers; "" = blue
    selector: RequestedSelector | None = None  # None = the plugin's default
    category_field: str = ""  # deprecated: refused unless it is the plugin's field


@dataclass(frozen=True)
class Prediction:
    category_id: str
    name: str
    distance: float
    score: float  # higher is closer: 1 - distance under cosine, else -distance
    probability: float


@dataclass(frozen=True)
class PredictCategoriesOutput:
    predictions: list[Prediction]
    categories_collection_id: str


def check_limit(limit: int) -> int:
    if limit < 0:
        raise InvalidArgument.field_error("limit", "must not be negative")
    if limit > MAX_LIMIT:
        raise InvalidArgument.field_error("limit", f"must be at most {MAX_LIMIT}")
    return limit or DEFAULT_LIMIT


def check_query(request: PredictCategoriesInput, max_chars: int) -> str | None:
    """The query text (None for a vector query); exactly one kind must be set."""
    if request.query_text is not None and request.query_vector is not None:
        raise InvalidArgument.field_error(
            "query_vector", "set only one of query_text and query_vector"
        )
    if request.query_vector is not None:
        return None
    return check_query_text(request.query_text, max_chars)


async def predict_categories(
    ctx: SearchContext, plugin: CategoriesFineTuningMethod, request: PredictCategoriesInput
) -> PredictCategoriesOutput:
    text = check_query(request, ctx.settings.max_query_chars)
    limit = check_limit(request.limit)
    if request.category_field and request.category_field != plugin.get_category_field():
        raise InvalidArgument.field_error(
            "category_field",
            f"is deprecated; the categories plugin reads {plugin.get_category_field()!r}"
            " (leave it empty)",
        )
    async with ctx.pool.acquire() as conn:
        items = await resolve_collection(conn, request.collection_id)
        # The request is checked in full before what the database holds is.
        metric = items.model.metric
        selector = check_selector(
            plugin.get_default_selector() if request.selector is None else request.selector,
            metric,
        )
        if request.query_vector is not None:
            check_vector(request.query_vector, "query_vector.values", items)
        categories = await blue_categories(conn, items.model)
    if categories is None:
        raise FailedPrecondition(
            f"model {items.model.model_id!r} (collection {items.collection_id!r}) has no"
            " categories collection yet; add categories with CategoryService.UpsertCategories"
        )
    if request.query_vector is not None:
        vector = np.asarray(request.query_vector, dtype=np.float32)
    else:
        assert text is not None
        # The categories collection's model is the items' model: the search's query encoder.
        vector = await ctx.encode_query(categories, text)
    found = await nearest_categories(
        ctx.pool, categories, vector, ctx.settings.categories_max_per_collection
    )
    chosen = select(
        [f.distance for f in found], selector, plugin.get_calibrated_temperature(), limit
    )
    predictions = []
    for pick in chosen:
        category = from_head_payload(found[pick.index].category_id, found[pick.index].payload)
        predictions.append(
            Prediction(
                category_id=category.category_id,
                name=category.name,
                distance=pick.distance,
                score=1.0 - pick.distance if metric == "cosine" else -pick.distance,
                probability=pick.probability,
            )
        )
    return PredictCategoriesOutput(predictions, categories.collection_id)
