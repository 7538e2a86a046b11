"""A plugin unlike the built-in one, to prove that the plugin owns the layout: 4 dimensions,
the dot product, AVG over an item's parts, its own HNSW parameters. Its encoder counts four
words, so tests can work out every distance by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.base import Vectors
from es_core.errors import FailedPrecondition
from es_core.fine_tuning.experiments import MlflowExperiments
from es_core.improvement.adjuster import TorchAdjuster, adjuster_settings
from es_core.ingest.cleaning import TextCleaner
from es_core.plugins.protocol import FineTuningBuilder, PluginMeta, SearchIndexInfo
from es_core.plugins.text_minilm import QueryText, TableDataLoader

VOCABULARY = ("apple", "pear", "plum", "fig")
TINY_SOURCE = "test:word-counts"


class WordCountEncoder:
    """A text's vector: how often it says each word of ``VOCABULARY`` (others count nothing)."""

    dimensions = len(VOCABULARY)

    def _encode(self, texts: list[str]) -> Vectors:
        counts = [[text.split().count(word) for word in VOCABULARY] for text in texts]
        return np.asarray(counts, dtype=np.float32).reshape(len(texts), self.dimensions)

    def encode_queries(self, texts: list[str]) -> Vectors:
        return self._encode(texts)

    def encode_items(self, texts: list[str]) -> Vectors:
        return self._encode(texts)


class PipeSplitter:
    """Parts are the pieces between " | "."""

    def split(self, text: str) -> list[str]:
        return [part.strip() for part in text.split(" | ")]


class WordCountFactory:
    def create(self, model: Model) -> WordCountEncoder:
        if model.source != TINY_SOURCE:
            raise FailedPrecondition(f"model {model.model_id!r} is not a word-count model")
        return WordCountEncoder()

    def model_path(self, model: Model) -> Path:
        raise FailedPrecondition("word-count models have no weights")


class TinyDotPlugin:
    """Tests register it by handing ``load_plugin`` an entry point naming this class."""

    meta = PluginMeta(
        name="tiny-dot",
        description="word counts over four words, dot product, AVG over parts",
        registered_model_name="tiny-dot-ft",
        base_model_id="tiny-dot-base",
    )

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def get_data_loader(self) -> TableDataLoader:
        return TableDataLoader()

    def get_items_splitter(self) -> PipeSplitter:
        return PipeSplitter()

    def get_items_cleaner(self) -> TextCleaner:
        return TextCleaner(())  # its texts are laid out by hand, with " | " between parts

    def get_query_retriever(self) -> QueryText:
        return QueryText()

    def get_inference_client_factory(self) -> WordCountFactory:
        return WordCountFactory()

    def get_experiment_manager(self) -> MlflowExperiments:
        return MlflowExperiments(self._settings)

    def get_search_index_info(self) -> SearchIndexInfo:
        return SearchIndexInfo(
            dimensions=len(VOCABULARY),
            metric="dot",
            aggregation="avg",
            hnsw_m=8,
            hnsw_ef_construction=24,
        )

    def get_vectors_adjuster(self) -> TorchAdjuster:
        return TorchAdjuster(adjuster_settings(self._settings))

    def get_fine_tuning_builder(self) -> FineTuningBuilder:
        raise FailedPrecondition("the tiny-dot test plugin does not fine-tune")

    def upload_initial_model(self) -> Model:
        index = self.get_search_index_info()
        return Model(
            model_id=self.meta.base_model_id,
            name="word counts",
            version="1",
            dimensions=index.dimensions,
            metric=index.metric,
            aggregation=index.aggregation,
            source=TINY_SOURCE,
        )
