"""Which runtime encodes with a model, and building its encoder: one place for the in-process
encoders and the Triton process alike.

``ES_ENCODER_BACKEND`` says what is wanted. A model directory may carry a quality record
(``encoder_backend.json``, written when a fine-tuned version is registered:
``es_core.fine_tuning.backend_guard``); a model that carries one runs a non-torch backend only
if the record says that backend kept its quality, and torch otherwise. A model without one
(the built-in base model, versions registered before records existed) runs what is set.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from es_core.config import Settings
from es_core.encoders.base import Encoder
from es_core.encoders.local import SentenceTransformerEncoder
from es_core.encoders.onnx_encoder import OnnxEncoder
from es_core.encoders.onnx_export import FLOAT_FILE, INT8_FILE, onnx_files

log = logging.getLogger("es.encoders")

Backend = Literal["torch", "onnx", "onnx-int8", "openvino"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
#: The quality record a model directory may carry (``BackendChoice`` as JSON).
RECORD_FILE = "encoder_backend.json"


def exports_cache_dir(settings: Settings) -> Path:
    """Where exports of models that ship none are kept (one directory per model directory)."""
    return settings.exports_dir or settings.models_cache_dir / "exports"


def check_backend(value: str) -> Backend:
    """``value`` as a backend; ValueError naming ES_ENCODER_BACKEND otherwise."""
    if value not in BACKENDS:
        raise ValueError(
            f"ES_ENCODER_BACKEND is {value!r}; it must be one of {', '.join(BACKENDS)}"
        )
    return value


@dataclass(frozen=True)
class BackendChoice:
    """The backend a model runs and why."""

    backend: Backend
    reason: str


def read_record(model_dir: Path) -> dict[str, object] | None:
    path = model_dir / RECORD_FILE
    return json.loads(path.read_text()) if path.exists() else None


def choose_backend(model_dir: Path, wanted: Backend) -> BackendChoice:
    """``wanted``, unless the model's quality record says it did not keep quality (or was
    not measured for it)."""
    if wanted == "torch":
        return BackendChoice("torch", "ES_ENCODER_BACKEND is torch")
    record = read_record(model_dir)
    if record is None:
        return BackendChoice(wanted, "no quality record with this model: used as set")
    measured = record.get("backend")
    if measured != wanted:
        return BackendChoice(
            "torch", f"the model's quality record measured {measured!r}, not {wanted!r}"
        )
    if not record.get("passed"):
        return BackendChoice("torch", str(record.get("reason", "its quality check failed")))
    return BackendChoice(wanted, str(record.get("reason", "its quality check passed")))


def build_encoder(
    model_dir: Path, backend: Backend, settings: Settings, *, batch_size: int
) -> Encoder:
    """``model_dir`` run by ``backend`` (exporting it first when it ships no ONNX files)."""
    if backend == "torch":
        return SentenceTransformerEncoder(model_dir, batch_size=batch_size)
    files = onnx_files(model_dir, exports_cache_dir(settings))
    return OnnxEncoder(
        model_dir,
        files / (INT8_FILE if backend == "onnx-int8" else FLOAT_FILE),
        runtime="openvino" if backend == "openvino" else "onnxruntime",
        threads=settings.encoder_threads,
        batch_size=batch_size,
    )


def model_encoder(model_dir: Path, settings: Settings, *, batch_size: int) -> Encoder:
    """The encoder of ``model_dir`` as ES_ENCODER_BACKEND and the model's record say."""
    choice = choose_backend(model_dir, check_backend(settings.encoder_backend))
    log.info("encoding with %s from %s: %s", choice.backend, model_dir, choice.reason)
    return build_encoder(model_dir, choice.backend, settings, batch_size=batch_size)
