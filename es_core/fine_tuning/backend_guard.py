"""The quality guard of a faster encoder backend: a registered version runs ES_ENCODER_BACKEND
only when, on the deploy gate's own evaluation (the same held-out queries and scoring that
judged the version: ``gate.score_queries`` for items, category MRR for categories), the
backend's figure the gate decides on (judged NDCG@10; MRR for categories) is at most
ES_ENCODER_BACKEND_MAX_NDCG_DROP below the float (torch) model's.

The outcome is measured, never assumed, and kept with the version: ``encoder_backend.json`` in
its model directory (read by ``es_core.encoders.backends.choose_backend`` wherever it loads), its
ONNX files beside it, and ``es.encoder_backend.*`` tags on the MLflow version.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.backends import RECORD_FILE, Backend, build_encoder, check_backend
from es_core.encoders.base import Encoder
from es_core.encoders.onnx_export import ensure_export, shipped_dir
from es_core.plugins.protocol import FineTuningMethod

Scores = dict[str, list[float]]  # metric name -> one figure per held-out query
Summarise = Callable[[Scores], dict[str, float]]  # the gate's means of ``Scores``

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendCheck:
    backend: Backend
    passed: bool
    metric: str
    float_value: float
    backend_value: float
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
    metric: str,
    summarise: Summarise,
    max_drop: float,
) -> BackendCheck:
    """Passed when the backend's mean ``metric`` is at most ``max_drop`` below the float
    model's on the same queries."""
    before = summarise(float_scores)[metric]
    after = summarise(backend_scores)[metric]
    drop = before - after
    passed = not math.isnan(drop) and drop <= max_drop
    queries = len(float_scores.get(metric, []))
    reason = (
        f"{backend}: {metric} {after:.4f} against {before:.4f} with torch on"
        f" {queries} held-out queries, a drop of {drop:+.4f}:"
        f" {'within' if passed else 'beyond'} {max_drop} (ES_ENCODER_BACKEND_MAX_NDCG_DROP)"
        f"{'' if passed else '; the model runs torch'}"
    )
    return BackendCheck(backend, passed, metric, before, after, drop, max_drop, queries, reason)


def failed(backend: Backend, metric: str, max_drop: float, error: Exception) -> BackendCheck:
    nan = float("nan")
    reason = (
        f"{backend}: could not be measured ({type(error).__name__}: {error}); the model runs torch"
    )
    return BackendCheck(backend, False, metric, nan, nan, nan, max_drop, 0, reason)


def guard_backend(
    model_dir: Path,
    settings: Settings,
    float_scores: Scores,
    score: Callable[[Encoder], Scores],
    *,
    metric: str,
    summarise: Summarise,
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
        check = failed(backend, metric, settings.encoder_backend_max_ndcg_drop, error)
    else:
        check = compare(
            backend,
            float_scores,
            backend_scores,
            metric=metric,
            summarise=summarise,
            max_drop=settings.encoder_backend_max_ndcg_drop,
        )
    (model_dir / RECORD_FILE).write_text(json.dumps(asdict(check), indent=2, sort_keys=True))
    return check


async def guard_registered_version(
    settings: Settings,
    plugin: FineTuningMethod,
    model: Model,
    run_id: str,
    float_scores: Scores,
    score: Callable[[Encoder], Scores],
    *,
    metric: str,
    summarise: Summarise,
) -> dict[str, Any] | None:
    """With a non-torch ES_ENCODER_BACKEND: the registered version's files (downloaded once,
    where every later load finds them) exported, the backend measured against the version's
    own float scores (``float_scores``, of the trial ``run_id``), and the export and its record
    logged as artifacts of the version. The check as JSON for the task's result; None with
    torch."""
    if settings.encoder_backend == "torch":
        return None
    model_dir = await asyncio.to_thread(plugin.get_inference_client_factory().model_path, model)
    check = await asyncio.to_thread(
        guard_backend, model_dir, settings, float_scores, score, metric=metric, summarise=summarise
    )
    assert check is not None
    log.info("model %s: %s", model.model_id, check.reason)
    await asyncio.to_thread(
        plugin.get_experiment_manager().log_encoder_backend,
        model.name,
        model.version,
        run_id,
        model_dir,
        check.tags(),
    )
    return asdict(check)
