"""What a fine-tuning method must provide: every part of a model's workflow, replaceable.

A plugin is a class registered under the entry-point group ``embedding_studio.plugins`` and
chosen by name with ``ES_PLUGIN``. It is built once per process with the settings, and each
``get_*`` method hands out one part of the workflow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import asyncpg

from es_core.categories.selectors import CategorySelector
from es_core.config import Settings
from es_core.domain import Aggregation, Metric, Model, Progress
from es_core.encoders.base import Encoder
from es_core.fine_tuning.examples import Example
from es_core.improvement.adjuster import VectorsAdjuster
from es_core.ingest.cleaning import ItemsCleaner


@dataclass(frozen=True)
class PluginMeta:
    """Who the plugin is and which model family it trains."""

    name: str
    description: str
    # The MLflow registered model its fine-tuned versions are registered under.
    registered_model_name: str
    # The catalogue id of the model it starts from on a new database.
    base_model_id: str


@dataclass(frozen=True)
class SearchIndexInfo:
    """How a collection of this plugin's vectors is laid out and indexed."""

    dimensions: int
    metric: Metric
    aggregation: Aggregation
    hnsw_m: int
    hnsw_ef_construction: int


class DataLoader(Protocol):
    """Reads the items examples refer to: object id -> its parts' texts, in part order."""

    async def load(
        self, conn: asyncpg.Connection, table: str, object_ids: Sequence[str]
    ) -> dict[str, list[str]]: ...


class ItemsSplitter(Protocol):
    """Cuts an item's text into the parts that are encoded one by one."""

    def split(self, text: str) -> list[str]: ...


class QueryRetriever(Protocol):
    """The text to train and evaluate a session's query with; empty when it has none."""

    def query_of(self, query_text: str) -> str: ...


class InferenceClientFactory(Protocol):
    """Builds the encoder for a catalogue model (in-process, MLflow-stored or served)."""

    def create(self, model: Model) -> Encoder: ...

    def model_path(self, model: Model) -> Path:
        """A local directory holding the model's weights (downloaded once when stored)."""
        ...


class ExperimentManager(Protocol):
    """Tracks fine-tuning tasks and their trials, and keeps the model registry."""

    def start_task(self, task_id: str, params: dict[str, Any]) -> str: ...

    def log_trial(
        self,
        task_run_id: str,
        trial: int,
        params: dict[str, Any],
        metrics: dict[str, float],
        model_dir: Path | None,
    ) -> str: ...

    def finish_task(self, task_run_id: str, metrics: dict[str, float], status: str) -> None: ...

    def register(
        self,
        name: str,
        run_id: str,
        metrics: dict[str, float],
        tags: dict[str, str],
        deployable: bool,
    ) -> str: ...

    def download(self, uri: str, destination: Path) -> Path: ...

    def log_encoder_backend(
        self, name: str, version: str, run_id: str, model_dir: Path, tags: dict[str, str]
    ) -> None:
        """Keeps a version's exported files and its backend quality record with it."""
        ...

    def upload_initial_model(self, name: str, model_dir: Path) -> str:
        """Registers the starting model's weights once, before its first fine-tuning; returns
        the registered version its fine-tuned versions name as their parent."""
        ...


@dataclass(frozen=True)
class TrialResult:
    model_dir: Path
    train_loss: float
    train_rows: int
    seconds: float


class FineTuningBuilder(Protocol):
    """Trains one trial: a copy of the starting model fitted to the training examples."""

    def search_space(self, overrides: Mapping[str, Any]) -> dict[str, list[Any]]:
        """The default space with ``overrides`` applied; InvalidArgument names a bad key or value
        as ``hyperparameters.<name>``."""
        ...

    def train(
        self,
        start_model_dir: Path,
        examples: Sequence[Example],
        item_texts: dict[str, list[str]],
        hyperparameters: dict[str, Any],
        output_dir: Path,
        on_step: Callable[[float], bool] | None = None,
    ) -> TrialResult:
        """Trains in the calling thread; ``on_step(fraction done)`` returning False stops."""
        ...

    def encoder_for(self, model_dir: Path) -> Encoder:
        """A trained model, loaded to be evaluated before it is registered."""
        ...


@runtime_checkable
class FineTuningMethod(Protocol):
    """Every part of one model family's workflow; the platform asks for each by name."""

    meta: PluginMeta

    def get_data_loader(self) -> DataLoader: ...

    def get_items_splitter(self) -> ItemsSplitter: ...

    def get_items_cleaner(self) -> ItemsCleaner: ...

    def get_query_retriever(self) -> QueryRetriever: ...

    def get_inference_client_factory(self) -> InferenceClientFactory: ...

    def get_experiment_manager(self) -> ExperimentManager: ...

    def get_search_index_info(self) -> SearchIndexInfo: ...

    def get_vectors_adjuster(self) -> VectorsAdjuster: ...

    def get_fine_tuning_builder(self) -> FineTuningBuilder: ...

    def upload_initial_model(self) -> Model:
        """The catalogue row of the model a new database starts from, once its weights are
        where the inference client factory finds them (storing them first if need be).

        Its id is ``meta.base_model_id`` and its dimensions, metric and aggregation are those
        of ``get_search_index_info()``; the first start checks both."""
        ...


@dataclass(frozen=True)
class CategoriesPluginMeta:
    """Who the categories plugin is."""

    name: str
    description: str


@runtime_checkable
class CategoriesFineTuningMethod(Protocol):
    """How categories are placed beside a model's items and chosen for a query.

    A plugin is a class registered under the entry-point group
    ``embedding_studio.categories_plugins`` and chosen by name with ``ES_CATEGORIES_PLUGIN``;
    it is built once per process with the settings. Categories are encoded by the items'
    model (``FineTuningMethod``'s encoders), into a categories collection per model: a query
    is encoded once, by the same query encoder as a search, and compared with them.
    Fine-tuning for categories (``es_core.categories.fine_tuning``) reads the clicked items'
    ``get_category_field()`` and trains with the items' ``FineTuningMethod`` parts (builder,
    experiment manager, data loader)."""

    meta: CategoriesPluginMeta

    def get_category_field(self) -> str:
        """The payload field of an item that holds the id of its category."""
        ...

    def get_default_selector(self) -> CategorySelector:
        """The selector of a prediction that sets none."""
        ...

    def get_calibrated_temperature(self) -> float:
        """The softmax temperature (> 0) probabilities use unless a request sets one."""
        ...

    def get_category_text(self, name: str, text: str) -> str:
        """What is encoded to place a category (its name and text as given; text may be
        empty)."""
        ...

    def get_fine_tuning_defaults(self) -> dict[str, list[Any]]:
        """Hyperparameter values a fine-tuning for categories tries unless the request sets
        them (over the builder's own search space)."""
        ...


__all__ = [
    "CategoriesFineTuningMethod",
    "CategoriesPluginMeta",
    "DataLoader",
    "ExperimentManager",
    "FineTuningBuilder",
    "FineTuningMethod",
    "InferenceClientFactory",
    "ItemsCleaner",
    "ItemsSplitter",
    "PluginMeta",
    "Progress",
    "QueryRetriever",
    "SearchIndexInfo",
    "Settings",
    "TrialResult",
    "VectorsAdjuster",
]
