"""Finds the encoder for a model row, loading each model once per process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from es_core.domain import Model
from es_core.encoders.base import Encoder
from es_core.encoders.local import BASE_MODEL_SOURCE, SentenceTransformerEncoder, base_model_path
from es_core.errors import FailedPrecondition

EncoderFactory = Callable[[Model], Encoder]


class EncoderRegistry:
    """Caches encoders by model id. ``factory`` builds them (the plugin's inference client
    factory in the server and workers); the default knows only the built-in base model."""

    def __init__(self, factory: EncoderFactory | None = None, *, batch_size: int = 64) -> None:
        self._batch_size = batch_size
        self._factory = factory or self._base_only
        self._encoders: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    def get(self, model: Model) -> Encoder:
        with self._lock:
            encoder = self._encoders.get(model.model_id)
            if encoder is None:
                encoder = self._factory(model)
                if encoder.dimensions != model.dimensions:
                    raise FailedPrecondition(
                        f"model {model.model_id!r} encodes {encoder.dimensions} dims, catalogue"
                        f" says {model.dimensions}"
                    )
                self._encoders[model.model_id] = encoder
            return encoder

    def _base_only(self, model: Model) -> Encoder:
        if model.source != BASE_MODEL_SOURCE:
            raise FailedPrecondition(
                f"model {model.model_id!r} comes from {model.source!r}, which this process"
                " cannot load without a plugin's inference client factory"
            )
        return SentenceTransformerEncoder(base_model_path(), batch_size=self._batch_size)
