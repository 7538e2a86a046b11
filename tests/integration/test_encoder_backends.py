"""Encoder backends on real SciFact texts: the ONNX export encodes as sentence-transformers
does, the Triton process loads the backend that is set, and the quality guard measures the
backend on the gate's own scoring and falls back to torch when it loses too much."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.backends import (
    RECORD_FILE,
    build_encoder,
    choose_backend,
    exports_cache_dir,
    model_encoder,
)
from es_core.encoders.base import Encoder, Vectors
from es_core.encoders.local import (
    BASE_MODEL_ID,
    BASE_MODEL_SOURCE,
    SentenceTransformerEncoder,
    base_model_path,
)
from es_core.encoders.onnx_encoder import OnnxEncoder
from es_core.encoders.onnx_export import FLOAT_FILE, ONNX_DIR, onnx_files
from es_core.fine_tuning.backend_guard import guard_backend
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.gate import JUDGED, EvaluationPool, Scores, score_queries, summary
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_harness.beir import load_dataset, scifact_dir
from es_harness.lifecycle import split_dev
from es_triton.server import ServingTriton

pytestmark = pytest.mark.integration

QUERIES = 8
ITEMS = 24
# The items' deploy gate decides on judged NDCG@10; the guard compares the same figure.
GATE: dict[str, Any] = {"metric": JUDGED, "summarise": lambda scores: summary(scores, 0.95, 0)}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("backends"), encoder_threads=2)


@pytest.fixture(scope="module")
def exported(settings: Settings) -> Path:
    """The base model's ONNX files in the settings' export cache (exported once here)."""
    return onnx_files(base_model_path(), exports_cache_dir(settings))


@pytest.fixture(scope="module")
def scifact() -> tuple[list[Example], EvaluationPool]:
    """Dev claims with their relevant abstracts, in a pool with other abstracts."""
    data = load_dataset(scifact_dir())
    dev = split_dev({q: data.queries[q] for q in data.qrels}).dev
    examples, wanted = [], []
    for query_id in sorted(dev, key=int)[:QUERIES]:
        relevant = sorted(data.qrels[query_id])
        examples.append(Example(dev[query_id], {d: 1.0 for d in relevant}, shown=tuple(relevant)))
        wanted += relevant
    others = [d for d in sorted(data.corpus) if d not in wanted]
    ids = sorted(set(wanted) | set(others[: ITEMS - len(set(wanted))]))
    parts = {d: [data.corpus[d].full_text] for d in ids}
    return examples, EvaluationPool(ids, parts, True, [[] for _ in examples])


@pytest.fixture(scope="module")
def torch_encoder() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(base_model_path(), batch_size=16)


@pytest.fixture(scope="module")
def texts(scifact: tuple[list[Example], EvaluationPool]) -> list[str]:
    examples, pool = scifact
    items = [t for d in pool.object_ids for t in pool.item_parts[d]]
    return [e.query for e in examples] + items + ["", "  padded by spaces  "]


@pytest.fixture(scope="module")
def expected(texts: list[str], torch_encoder: SentenceTransformerEncoder) -> Vectors:
    return torch_encoder.encode_items(texts)


@pytest.fixture(scope="module")
def float_scores(
    scifact: tuple[list[Example], EvaluationPool], torch_encoder: SentenceTransformerEncoder
) -> Scores:
    return _gate_scoring(scifact)(torch_encoder)


def _cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    return np.asarray(np.sum(a.astype(np.float64) * b, axis=1))


def test_the_float_export_encodes_as_sentence_transformers_does(
    exported: Path, texts: list[str], expected: Vectors
) -> None:
    for runtime in ("onnxruntime", "openvino"):
        encoder = OnnxEncoder(
            base_model_path(), exported / FLOAT_FILE, runtime=runtime, threads=2, batch_size=7
        )
        got = encoder.encode_items(texts)
        assert got.shape == expected.shape and got.dtype == np.float32
        assert _cosines(got, expected).min() >= 0.9999, runtime
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
        assert encoder.encode_queries([]).shape == (0, 384)


def test_int8_vectors_stay_close_and_the_export_is_reused(
    settings: Settings, exported: Path, texts: list[str], expected: Vectors
) -> None:
    before = (exported / FLOAT_FILE).stat().st_mtime_ns
    encoder = build_encoder(base_model_path(), "onnx-int8", settings, batch_size=16)
    assert (exported / FLOAT_FILE).stat().st_mtime_ns == before
    cosines = _cosines(encoder.encode_items(texts), expected)
    assert cosines.min() >= 0.9 and cosines.mean() >= 0.97


def test_the_triton_process_loads_the_backend_that_is_set(
    settings: Settings, exported: Path, torch_encoder: SentenceTransformerEncoder
) -> None:
    onnx = settings.model_copy(update={"encoder_backend": "onnx"})
    triton = ServingTriton(onnx, TextMiniLMPlugin(onnx))
    model = Model(BASE_MODEL_ID, "all-MiniLM-L6-v2", "1", 384, "cosine", "min", BASE_MODEL_SOURCE)
    encoder = triton.load(model)
    assert isinstance(encoder, OnnxEncoder)
    texts = ["Vitamin D deficiency increases fracture risk.", "short"]
    assert _cosines(encoder.encode_queries(texts), torch_encoder.encode_queries(texts)).min() > (
        0.9999
    )


def _version_dir(tmp_path: Path, exported: Path) -> Path:
    """A registered version's directory as a download leaves it: the base weights, with the
    export shipped beside them (linked, not exported again)."""
    model_dir = tmp_path / "version"
    shutil.copytree(base_model_path(), model_dir, copy_function=lambda s, d: Path(d).symlink_to(s))
    (model_dir / ONNX_DIR).symlink_to(exported)
    return model_dir


def _gate_scoring(
    scifact: tuple[list[Example], EvaluationPool],
) -> Callable[[Encoder], Scores]:
    examples, pool = scifact

    def score(encoder: Encoder) -> Scores:
        return score_queries(
            encoder, examples, pool, metric="cosine", aggregation="min", position_bias=1.0
        )

    return score


def test_the_guard_keeps_a_backend_within_the_margin(
    settings: Settings,
    exported: Path,
    scifact: tuple[list[Example], EvaluationPool],
    float_scores: Scores,
    tmp_path: Path,
) -> None:
    model_dir = _version_dir(tmp_path, exported)
    score = _gate_scoring(scifact)
    wanted = settings.model_copy(update={"encoder_backend": "onnx"})
    check = guard_backend(model_dir, wanted, float_scores, score, **GATE)
    assert check is not None and check.passed, check
    assert check.queries == QUERIES and abs(check.drop) <= 0.005
    assert json.loads((model_dir / RECORD_FILE).read_text())["passed"] is True
    assert isinstance(model_encoder(model_dir, wanted, batch_size=8), OnnxEncoder)


def test_the_guard_falls_back_to_torch_when_quality_drops_past_the_margin(
    settings: Settings,
    exported: Path,
    scifact: tuple[list[Example], EvaluationPool],
    float_scores: Scores,
    tmp_path: Path,
) -> None:
    model_dir = _version_dir(tmp_path, exported)
    score = _gate_scoring(scifact)
    # A negative margin asks the backend to gain a whole point of NDCG: no backend can.
    strict = settings.model_copy(
        update={"encoder_backend": "onnx-int8", "encoder_backend_max_ndcg_drop": -1.0}
    )
    check = guard_backend(model_dir, strict, float_scores, score, **GATE)
    assert check is not None and not check.passed
    assert check.tags()["es.encoder_backend"] == "torch"
    assert "beyond -1.0 (ES_ENCODER_BACKEND_MAX_NDCG_DROP)" in check.reason
    choice = choose_backend(model_dir, "onnx-int8")
    assert choice.backend == "torch" and choice.reason == check.reason
    assert isinstance(model_encoder(model_dir, strict, batch_size=8), SentenceTransformerEncoder)


def test_a_backend_that_cannot_run_the_model_is_recorded_as_failed(
    settings: Settings,
    scifact: tuple[list[Example], EvaluationPool],
    float_scores: Scores,
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken-export"
    broken.mkdir()
    for name in ("model.onnx", "model_int8.onnx"):
        (broken / name).write_bytes(b"not an onnx graph")
    model_dir = _version_dir(tmp_path, broken)
    score = _gate_scoring(scifact)
    wanted = settings.model_copy(update={"encoder_backend": "onnx"})
    check = guard_backend(model_dir, wanted, float_scores, score, **GATE)
    assert check is not None and not check.passed
    assert "could not be measured" in check.reason
    assert choose_backend(model_dir, "onnx").backend == "torch"


def test_with_torch_set_there_is_nothing_to_guard(settings: Settings, tmp_path: Path) -> None:
    torch_set = settings.model_copy(update={"encoder_backend": "torch"})
    assert guard_backend(tmp_path, torch_set, {}, lambda encoder: {}, **GATE) is None
    assert not (tmp_path / RECORD_FILE).exists()
