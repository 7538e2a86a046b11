"""The quality guard of a faster encoder backend: a registered version runs ES_ENCODER_BACKEND
only when, on the deploy gate's own evaluation (its held-out queries ranking its pool,
``gate.score_queries``), the backend's judged NDCG@10 is at most
ES_ENCODER_BACKEND_MAX_NDCG_DROP below the float (torch) model's.

The outcome is measured, never assumed, and kept with the version: ``encoder_backend.json`` in
its model directory (read by ``es_core.encoders.backends.choose_backend`` wherever it loads), its
ONNX files beside it, and ``es.encoder_backend.*`` tags on the MLflow version.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from es_core.config import Settings
from es_core.encoders.backends import RECORD_FILE, Backend, build_encoder, check_backend
from es_core.encoders.base import Encoder
from es_core.encoders.onnx_export import ensure_export, shipped_dir
from es_core.fine_tuning.gate import JUDGED, Scores, summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendCheck:
    backend: Backend
    passed: bool
    float_ndcg: float
    backend_ndcg: float
    drop: float
    max_drop: float
    queries: int
    reason: str

    def tags(self) -> dict[str, str]:
        """The check as MLflow model-version tags."""
        return {
            "es.encoder_backend": self.backend if self.passed else "torch",
            "es.encoder_backend.measured": self.backend,
            "es.encoder_backend.passed": str(self.passed).lower(),
            "es.encoder_backend.ndcg_drop": f"{self.drop:.6f}",
            "es.encoder_backend.reason": self.reason[:5000],
        }


def compare(
    backend: Backend,
    float_scores: Scores,
    backend_scores: Scores,
    *,
    max_drop: float,
    confidence: float,
    seed: int,
) -> BackendCheck:
    """Passed when the backend's mean judged NDCG@10 is at most ``max_drop`` below the float
    model's on the same queries."""
    before = summary(float_scores, confidence, seed)[JUDGED]
    after = summary(backend_scores, confidence, seed)[JUDGED]
    drop = before - after
    passed = not math.isnan(drop) and drop <= max_drop
    reason = (
        f"{backend}: judged NDCG@10 {after:.4f} against {before:.4f} with torch on"
        f" {len(float_scores.get(JUDGED, []))} held-out queries, a drop of {drop:+.4f}:"
        f" {'within' if passed else 'beyond'} {max_drop} (ES_ENCODER_BACKEND_MAX_NDCG_DROP)"
        f"{'' if passed else '; the model runs torch'}"
    )
    return BackendCheck(
        backend, passed, before, after, drop, max_drop, len(float_scores.get(JUDGED, [])), reason
    )


def failed(backend: Backend, max_drop: float, error: Exception) -> BackendCheck:
    nan = float("nan")
    reason = (
        f"{backend}: could not be measured ({type(error).__name__}: {error}); the model runs torch"
    )
    return BackendCheck(backend, False, nan, nan, nan, max_drop, 0, reason)


def guard_backend(
    model_dir: Path,
    settings: Settings,
    float_scores: Scores,
    score: Callable[[Encoder], Scores],
) -> BackendCheck | None:
    """Exports ``model_dir`` into its ``onnx/`` directory, scores the wanted backend with
    ``score`` (the gate's evaluation) and writes the record beside the weights. None when
    ES_ENCODER_BACKEND is torch (nothing to guard)."""
    backend = check_backend(settings.encoder_backend)
    if backend == "torch":
        return None
    try:
        ensure_export(model_dir, shipped_dir(model_dir))
        encoder = build_encoder(model_dir, backend, settings, batch_size=settings.encode_batch_size)
        backend_scores = score(encoder)
    except Exception as error:  # a model the backend cannot run keeps running torch
        log.exception("could not measure %s on %s", backend, model_dir)
        check = failed(backend, settings.encoder_backend_max_ndcg_drop, error)
    else:
        check = compare(
            backend,
            float_scores,
            backend_scores,
            max_drop=settings.encoder_backend_max_ndcg_drop,
            confidence=settings.fine_tuning_gate_confidence,
            seed=settings.fine_tuning_seed,
        )
    (model_dir / RECORD_FILE).write_text(json.dumps(asdict(check), indent=2, sort_keys=True))
    return check
