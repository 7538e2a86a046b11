"""Finds the encoder for a model row, loading each model once per process."""

from __future__ import annotations

import threading

from es_core.encoders.base import Encoder
from es_core.encoders.local import BASE_MODEL_SOURCE, SentenceTransformerEncoder, base_model_path
from es_core.errors import FailedPrecondition
from es_core.storage.catalog import Model


class EncoderRegistry:
    """Caches encoders by model id; later issues add Triton-served and fine-tuned sources."""

    def __init__(self, *, batch_size: int = 64) -> None:
        self._batch_size = batch_size
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    def get(self, model: Model) -> Encoder:
        with self._lock:
            encoder = self._encoders.get(model.model_id)
            if encoder is None:
                encoder = self._load(model)
                self._encoders[model.model_id] = encoder
            return encoder

    def _load(self, model: Model) -> Encoder:
        if model.source == BASE_MODEL_SOURCE:
            encoder = SentenceTransformerEncoder(base_model_path(), batch_size=self._batch_size)
        else:
            raise FailedPrecondition(
                f"model {model.model_id!r} comes from {model.source!r}, which this process"
                " cannot load (only the built-in base model is served before Triton)"
            )
        if encoder.dimensions != model.dimensions:
            raise FailedPrecondition(
                f"model {model.model_id!r} encodes {encoder.dimensions} dims, catalogue says"
                f" {model.dimensions}"
            )
        return encoder
