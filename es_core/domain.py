"""The types every layer shares: embedding models, their collections, and a progress callback.

Defined here once, apart from storage, so search, improvement, fine-tuning, the servicers and the
workers speak of a model or a collection without reaching into the SQL that stores them
(``es_core/storage/catalog.py`` reads and writes them).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Metric = Literal["cosine", "dot", "euclidean"]
"""How a query vector is compared with a part vector."""
Aggregation = Literal["min", "avg"]
"""How an item's part distances become the item's one distance."""
CollectionKind = Literal["items", "categories"]
"""items: what searches return; categories: what PredictCategories returns (one per model)."""
CollectionState = Literal["green", "blue", "retired"]
"""green: being built or waiting; blue: the one searches use; retired: kept for a rollback."""
IndexState = Literal["building", "ready", "failed"]
"""Whether a collection's HNSW vector index exists: bulk fills build it once, at their end."""

FilterableType = Literal["keyword", "number"]
"""keyword: a field filtered by its string values; number: by its numeric values."""

Progress = Callable[[float, str], Awaitable[bool]]
"""Reports a long job's progress (fraction done from 0 to 1, what it is doing); returns False once
its task was canceled or taken over by another worker, and the job then stops."""


@dataclass(frozen=True)
class FilterableField:
    """A payload field a collection declares as filterable: its heads have an index on the
    field's values of that type, which filters on the field use (es_core/collections/filterable.py).
    """

    field: str
    type: FilterableType


@dataclass(frozen=True)
class Model:
    """One embedding model version the platform can encode with."""

    model_id: str
    name: str
    version: str
    dimensions: int
    metric: Metric
    aggregation: Aggregation
    source: str
    parent_model_id: str | None = None
    deployed: bool = False
    create_time: datetime | None = None


@dataclass(frozen=True)
class Collection:
    """The vectors of every item under one model version, in one table."""

    collection_id: str
    model: Model
    table_name: str
    state: CollectionState
    hnsw_m: int
    hnsw_ef_construction: int
    create_time: datetime | None = None
    # The reindex task that fills this collection from another; None when nothing does.
    reindex_task_id: str | None = None
    # PostgreSQL text search configuration of the lexical index ("english", "simple", ...).
    text_search_config: str = "english"
    # The ranking spec searches use by default, as stored (None: vector ranking), its version.
    ranking_spec: dict[str, Any] | None = field(default=None, hash=False)
    ranking_version: int | None = None
    # Payload fields ranking may boost on: [{"field": ..., "kind": "number" | "timestamp"}].
    signal_fields: tuple[dict[str, str], ...] = field(default=(), hash=False)
    # What the collection holds: items, or the categories of its model (es_core/categories).
    kind: CollectionKind = "items"
    # "ready" once its vector index exists; "building" while a bulk fill loads its rows first.
    index_state: IndexState = "ready"
    # Payload fields declared filterable, each with a btree expression index on the heads.
    filterable_fields: tuple[FilterableField, ...] = ()
