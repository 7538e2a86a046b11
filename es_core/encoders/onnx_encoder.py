"""Encoding with an exported ONNX graph (``onnx_export``), run by ONNX Runtime or OpenVINO.

Texts are tokenized as sentence-transformers does (the model's own tokenizer, its
``max_seq_length``), sorted by length so each batch pads little, and put back in order.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from es_core.encoders.base import Vectors
from es_core.encoders.onnx_export import INPUT_NAMES

Runtime = Literal["onnxruntime", "openvino"]
RunBatch = Callable[[dict[str, Any]], Any]


def max_seq_length(model_dir: Path) -> int | None:
    config = model_dir / "sentence_bert_config.json"
    if not config.exists():
        return None
    value = json.loads(config.read_text()).get("max_seq_length")
    return int(value) if value else None


def onnxruntime_runner(onnx_file: Path, threads: int) -> RunBatch:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = ort.InferenceSession(
        str(onnx_file), sess_options=options, providers=["CPUExecutionProvider"]
    )
    names = {i.name for i in session.get_inputs()}

    def run(feeds: dict[str, Any]) -> Any:
        return session.run(None, {k: v for k, v in feeds.items() if k in names})[0]

    return run


def openvino_runner(onnx_file: Path, threads: int) -> RunBatch:
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(str(onnx_file), "CPU", config)
    names = {i.get_any_name() for i in compiled.inputs}
    request = compiled.create_infer_request()

    def run(feeds: dict[str, Any]) -> Any:
        return request.infer({k: v for k, v in feeds.items() if k in names})[0].copy()

    return run


class OnnxEncoder:
    """One exported model; the same Encoder as ``SentenceTransformerEncoder``."""

    def __init__(
        self,
        model_dir: Path,
        onnx_file: Path,
        *,
        runtime: Runtime = "onnxruntime",
        threads: int = 0,
        batch_size: int = 64,
        normalize: bool = True,
    ) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        self._tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        limit = max_seq_length(model_dir)
        self._max_length = min(limit or self._tokenizer.model_max_length, 100_000)
        make = openvino_runner if runtime == "openvino" else onnxruntime_runner
        self._run = make(onnx_file, threads)
        self._pad = int(self._tokenizer.pad_token_id or 0)
        self._batch_size = batch_size
        self._normalize = normalize
        # An OpenVINO infer request serves one call at a time; ORT sessions are cheap to guard.
        self._lock = threading.Lock()
        self._dimensions = int(self._encode(["dimensions"]).shape[1])

    @property
    def dimensions(self) -> int:
        return self._dimensions

    def _encode(self, texts: list[str]) -> Vectors:
        ids = self._tokenizer(
            [t.strip() for t in texts],
            truncation=True,
            max_length=self._max_length,
            add_special_tokens=True,
        )["input_ids"]
        order = sorted(range(len(texts)), key=lambda i: -len(ids[i]))
        out: Vectors | None = None
        for start in range(0, len(order), self._batch_size):
            chunk = order[start : start + self._batch_size]
            width = max(len(ids[i]) for i in chunk)
            input_ids = np.full((len(chunk), width), self._pad, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                input_ids[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1
            feeds = {
                INPUT_NAMES[0]: input_ids,
                INPUT_NAMES[1]: mask,
                INPUT_NAMES[2]: np.zeros_like(input_ids),
            }
            with self._lock:
                vectors = np.asarray(self._run(feeds), dtype=np.float32)
            if out is None:
                out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float32)
            out[chunk] = vectors
        assert out is not None
        if self._normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out = out / np.maximum(norms, 1e-12)
        return out

    def encode_queries(self, texts: list[str]) -> Vectors:
        return self._encode(texts) if texts else np.zeros((0, self._dimensions), np.float32)

    def encode_items(self, texts: list[str]) -> Vectors:
        return self.encode_queries(texts)
