"""A sentence-transformers model as ONNX files: the whole pipeline (transformer, pooling,
normalisation as the model's modules say) in one graph, so a runtime that runs the file
gives the vectors sentence-transformers gives.

Exported with torch's TorchScript exporter (``dynamo=False``: no ``onnxscript``, and no
``optimum``, which pins transformers 4). The int8 file is ONNX Runtime's dynamic quantization
of the float file (weights per channel, activations per batch).

Files are kept in ``<model dir>/onnx/`` when shipped with a model (MLflow versions carry them as
artifacts) and otherwise in an export cache, one directory per model directory
(``export_dir``); ``ensure_export`` writes them once, atomically.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

#: The sub-directory of a model directory that holds its exported files.
ONNX_DIR = "onnx"
FLOAT_FILE = "model.onnx"
INT8_FILE = "model_int8.onnx"
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
OPSET = 17


def shipped_dir(model_dir: Path) -> Path:
    return model_dir / ONNX_DIR


def export_dir(model_dir: Path, cache_dir: Path) -> Path:
    """Where the export of ``model_dir`` lives in the cache: named for the model directory's
    path and its weights' size and time, so new weights under the same path export anew."""
    weights = sorted(model_dir.glob("*.safetensors")) or sorted(model_dir.glob("*.bin"))
    stamp = "|".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in weights)
    key = hashlib.sha256(f"{model_dir.resolve()}|{stamp}".encode()).hexdigest()[:16]
    return cache_dir / f"{model_dir.name}-{key}"


def onnx_files(model_dir: Path, cache_dir: Path) -> Path:
    """The directory holding ``model_dir``'s ONNX files: shipped with it, else the cache's
    (exported now when missing)."""
    shipped = shipped_dir(model_dir)
    if (shipped / FLOAT_FILE).exists() and (shipped / INT8_FILE).exists():
        return shipped
    target = export_dir(model_dir, cache_dir)
    ensure_export(model_dir, target)
    return target


def ensure_export(model_dir: Path, target: Path) -> Path:
    """Writes the float and int8 files of ``model_dir`` into ``target`` unless it has them.
    A half-written export is never left under ``target``'s name."""
    if (target / FLOAT_FILE).exists() and (target / INT8_FILE).exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        export_float(model_dir, staging / FLOAT_FILE)
        quantize_int8(staging / FLOAT_FILE, staging / INT8_FILE)
        try:
            os.rename(staging, target)
        except OSError:
            if not (target / FLOAT_FILE).exists():  # not a lost race with another process
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def export_float(model_dir: Path, destination: Path) -> None:
    """``model_dir``'s sentence-transformers pipeline as one float32 ONNX graph:
    (input_ids, attention_mask, token_type_ids) -> sentence_embedding, batch and length
    dynamic."""
    import torch
    from sentence_transformers import SentenceTransformer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True).eval()

    class Pipeline(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            features = {
                "input_ids": input_ids,
                "attention_mask": attention_mask,
                "token_type_ids": token_type_ids,
            }
            return self.model(features)[OUTPUT_NAME]

    sample = torch.ones((2, 8), dtype=torch.int64)
    axes = {name: {0: "batch", 1: "tokens"} for name in INPUT_NAMES}
    with torch.inference_mode():
        torch.onnx.export(
            Pipeline(),
            (sample, sample, torch.zeros_like(sample)),
            str(destination),
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            dynamic_axes={**axes, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def quantize_int8(source: Path, destination: Path) -> None:
    """Dynamic int8 quantization of the matrix products (weights per channel)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(source),
        str(destination),
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul", "Gemm"],
    )
