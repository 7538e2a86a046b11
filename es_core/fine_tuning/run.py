"""The fine-tuning task: a released batch of sessions in, a registered model version out.

Steps: build examples from the batch; split train / test by query; evaluate the model in
service on the test side, its queries ranking the whole collection (``gate``); train each
trial of the hyperparameter search (an MLflow run each, nested under the task's run) and
evaluate it the same way; register the best trial with its metrics and lineage; the gate marks
it deployable only if the lower bound of its paired NDCG@10 gain is above the margin; with a
non-torch ES_ENCODER_BACKEND, that backend is measured on the same held-out queries and kept
with the version (``backend_guard``); the version enters the catalogue as a model (not yet
deployed or searched). With deploy_as_blue, a version that passed the gate is then promoted
(``es_core.serving.deploy_as_blue``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

from es_core.clickstream.store import batch_sessions
from es_core.config import Settings
from es_core.domain import Collection, Model, Progress
from es_core.encoders.base import Encoder
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition
from es_core.fine_tuning.backend_guard import guard_registered_version
from es_core.fine_tuning.examples import Example, build_examples, split_by_query
from es_core.fine_tuning.experiments import MLFLOW_SOURCE_PREFIX, models_uri
from es_core.fine_tuning.gate import (
    JUDGED,
    Scores,
    Verdict,
    evaluation_pool,
    in_service_scores,
    judge,
    score_queries,
    summary,
)
from es_core.fine_tuning.mining import mine_collection
from es_core.fine_tuning.search_space import trials
from es_core.plugins.protocol import FineTuningMethod
from es_core.serving.deploy_as_blue import DEPLOY_PROGRESS, first_promotion
from es_core.storage import catalog
from es_core.tasks.model import Task

log = logging.getLogger(__name__)

# Share of the progress bar before the trials (examples, baseline) and after them (registry).
_BEFORE_TRIALS, _AFTER_TRIALS = 0.1, 0.95


@dataclass(frozen=True)
class Searched:
    """The hyperparameter search's outcome: the gate's verdict on the best trial, its scores,
    every trial, how many items the held-out queries ranked, and the gate's scoring (to score
    other encoders of the best model the same way)."""

    verdict: Verdict
    best: TrialOutcome
    best_scores: Scores
    outcomes: list[TrialOutcome]
    pool_items: int
    score: Callable[[Encoder], Scores]


@dataclass
class TrialOutcome:
    trial: int
    params: dict[str, Any]
    metrics: dict[str, float]
    run_id: str
    train_rows: int
    seconds: float


class _ThreadProgress:
    """Reports training progress from the training thread to the task row (every 2 s at most);
    returns False once the task was canceled, which stops the training."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        progress: Progress,
        start: float,
        width: float,
        label: str,
    ) -> None:
        self._loop, self._progress = loop, progress
        self._start, self._width, self._label = start, width, label
        self._last = 0.0

    def __call__(self, fraction: float) -> bool:
        now = time.monotonic()
        if now - self._last < 2.0 and fraction < 1.0:
            return True
        self._last = now

        async def report() -> bool:
            return await self._progress(
                self._start + self._width * fraction, f"{self._label} {fraction:.0%}"
            )

        return asyncio.run_coroutine_threadsafe(report(), self._loop).result()


S = TypeVar("S")  # a trial's scores on the held-out queries, as its caller's gate reads them


def work_dir(settings: Settings, task_id: str) -> Path:
    return settings.data_dir / "fine_tuning" / task_id


async def run_fine_tuning(
    pool: asyncpg.Pool,
    settings: Settings,
    plugin: FineTuningMethod,
    encoders: EncoderRegistry,
    task: Task,
    progress: Progress,
) -> dict[str, Any]:
    batch_id = str(task.params.get("resolved_batch_id") or task.params.get("batch_id") or "")
    if not batch_id:
        raise FailedPrecondition("the task names no session batch")
    async with pool.acquire() as conn:
        blue = await catalog.get_blue_collection(conn)
        sessions = await batch_sessions(conn, batch_id)
        examples, report = build_examples(
            sessions, settings.event_weights, plugin.get_query_retriever().query_of
        )
        if settings.fine_tuning_mined_negatives:
            examples = await mine_collection(
                conn, blue, settings, encoders.get(blue.model), examples
            )
        wanted = sorted(
            {o for e in examples for o in (*e.positives, *e.negatives, *e.shown, *e.mined)}
        )
        item_parts = await plugin.get_data_loader().load(conn, blue.table_name, wanted)
    # Clicks on items no longer in the collection teach nothing.
    usable = [e for e in examples if any(item_parts.get(o) for o in e.positives)]
    report.without_items, report.examples = len(examples) - len(usable), len(usable)
    examples = usable
    if report.examples < settings.fine_tuning_min_examples:
        raise FailedPrecondition(
            f"batch {batch_id} gives {report.examples} examples, fewer than the"
            f" {settings.fine_tuning_min_examples} needed (ES_FINE_TUNING_MIN_EXAMPLES):"
            f" {json.dumps(report.as_dict())}"
        )
    train, test = split_by_query(
        examples, settings.fine_tuning_test_fraction, settings.fine_tuning_seed
    )
    builder = plugin.get_fine_tuning_builder()
    space = builder.search_space(task.params.get("hyperparameters") or {})
    plan = trials(space, settings.fine_tuning_max_trials, settings.fine_tuning_seed)
    if not await progress(0.02, f"{len(train)} training and {len(test)} held-out queries"):
        return {"stopped": True}

    experiments = plugin.get_experiment_manager()
    factory = plugin.get_inference_client_factory()
    start_dir = await asyncio.to_thread(factory.model_path, blue.model)
    parent_source = await asyncio.to_thread(_parent_source, plugin, blue, start_dir)
    task_run_id = await asyncio.to_thread(
        experiments.start_task,
        task.task_id,
        {
            "batch_id": batch_id,
            "parent_model_id": blue.model.model_id,
            "train_queries": len(train),
            "test_queries": len(test),
            "trials": len(plan),
            **{f"examples.{k}": v for k, v in report.as_dict().items()},
        },
    )
    try:
        outcome = await _search(
            pool,
            settings,
            plugin,
            encoders,
            task,
            blue,
            train,
            test,
            item_parts,
            plan,
            start_dir,
            task_run_id,
            progress,
        )
    except BaseException:
        await asyncio.to_thread(experiments.finish_task, task_run_id, {}, "FAILED")
        raise
    finally:
        shutil.rmtree(work_dir(settings, task.task_id), ignore_errors=True)
    if outcome is None:
        await asyncio.to_thread(experiments.finish_task, task_run_id, {}, "KILLED")
        return {"stopped": True}
    verdict, best, outcomes, pool_size = (
        outcome.verdict,
        outcome.best,
        outcome.outcomes,
        outcome.pool_items,
    )
    deployable = verdict.deployable
    baseline = {
        k[len("in_service.") :]: v
        for k, v in verdict.figures.items()
        if k.startswith("in_service.")
    }
    gate = {
        "deployable": deployable,
        "reason": verdict.reason,
        "pool_items": pool_size,
        **{k: v for k, v in verdict.figures.items() if k.startswith("gain.")},
    }
    name = plugin.meta.registered_model_name
    version = await asyncio.to_thread(
        experiments.register,
        name,
        best.run_id,
        best.metrics,
        {
            "es.parent_model_id": blue.model.model_id,
            "es.parent_source": parent_source,
            "es.session_batch_id": batch_id,
            "es.task_id": task.task_id,
            "es.plugin": plugin.meta.name,
            "es.trial": str(best.trial),
            "es.hyperparameters": json.dumps(best.params, sort_keys=True),
            **{f"in_service.{k}": f"{v:.6f}" for k, v in baseline.items()},
        },
        deployable,
    )
    # A trained model is the plugin's: laid out and ranked as its search index says.
    index = plugin.get_search_index_info()
    model = Model(
        model_id=f"{name}-v{version}",
        name=name,
        version=version,
        dimensions=index.dimensions,
        metric=index.metric,
        aggregation=index.aggregation,
        source=MLFLOW_SOURCE_PREFIX + models_uri(name, version),
        parent_model_id=blue.model.model_id,
    )
    confidence, seed = settings.fine_tuning_gate_confidence, settings.fine_tuning_seed
    backend = await guard_registered_version(
        settings,
        plugin,
        model,
        best.run_id,
        outcome.best_scores,
        outcome.score,
        metric=JUDGED,
        summarise=lambda scores: summary(scores, confidence, seed),
    )
    async with pool.acquire() as conn:
        await catalog.insert_model(conn, model)
    await asyncio.to_thread(
        experiments.finish_task,
        task_run_id,
        verdict.figures,
        "FINISHED",
    )
    promotion = first_promotion(
        deploy_as_blue=bool(task.params.get("deploy_as_blue")),
        deployable=deployable,
        model_id=model.model_id,
        margin=settings.fine_tuning_gate_margin,
    )
    if promotion is not None and promotion.waiting:
        await progress(DEPLOY_PROGRESS, f"registered {model.model_id}; deploying it as blue")
    else:
        await progress(1.0, f"registered {model.model_id}; deployable: {deployable}")
    return {
        "batch_id": batch_id,
        "model_id": model.model_id,
        "registered_model": name,
        "model_version": version,
        "mlflow_run_id": best.run_id,
        "mlflow_task_run_id": task_run_id,
        "metrics": best.metrics,
        "in_service_metrics": baseline,
        "gate": gate,
        **({} if backend is None else {"encoder_backend": backend}),
        "in_service_model_id": blue.model.model_id,
        "deployable": deployable,
        "deploy_as_blue": bool(task.params.get("deploy_as_blue")),
        "best_trial": best.trial,
        "trials": [asdict(o) for o in outcomes],
        "examples": {**report.as_dict(), "train": len(train), "test": len(test)},
        **({} if promotion is None else {"promotion": promotion.as_json()}),
    }


def _parent_source(plugin: FineTuningMethod, blue: Collection, start_dir: Path) -> str:
    """Where the starting model lives in the registry: a fine-tuned one is there already; the
    plugin's initial model is registered from its weights (``start_dir``) the first time."""
    if blue.model.source.startswith(MLFLOW_SOURCE_PREFIX):
        return blue.model.source[len(MLFLOW_SOURCE_PREFIX) :]
    name = plugin.meta.base_model_id
    return models_uri(name, plugin.get_experiment_manager().upload_initial_model(name, start_dir))


async def _search(
    db: asyncpg.Pool,
    settings: Settings,
    plugin: FineTuningMethod,
    encoders: EncoderRegistry,
    task: Task,
    blue: Collection,
    train: list[Example],
    test: list[Example],
    item_parts: dict[str, list[str]],
    plan: list[dict[str, Any]],
    start_dir: Path,
    task_run_id: str,
    progress: Progress,
) -> Searched | None:
    """Baseline, then every trial, then the gate's verdict on the best (and how many items
    the held-out queries ranked); None when the task was canceled on the way."""
    # Trials are ranked as the model they would register will rank (the plugin's index info).
    index = plugin.get_search_index_info()
    metric, aggregation = index.metric, index.aggregation
    confidence, seed = settings.fine_tuning_gate_confidence, settings.fine_tuning_seed
    in_service = encoders.get(blue.model)
    async with db.acquire() as conn:
        gate_pool = await evaluation_pool(
            conn, blue, test, in_service, plugin.get_data_loader(), settings
        )
    bias = settings.ranking_fit_position_bias
    baseline = in_service_scores(test, gate_pool, bias)
    in_service_ndcg = summary(baseline, confidence, seed)[JUDGED]
    if not await progress(
        _BEFORE_TRIALS,
        f"model in service: judged ndcg@10 {in_service_ndcg:.4f} on {len(test)} held-out queries"
        f" over {len(gate_pool.object_ids)} items",
    ):
        return None

    def score(trained: Encoder) -> Scores:
        return score_queries(
            trained, test, gate_pool, metric=metric, aggregation=aggregation, position_bias=bias
        )

    searched = await run_trials(
        settings,
        plugin,
        task,
        plan,
        start_dir,
        train,
        item_parts,
        task_run_id,
        progress,
        score=score,
        summarise=lambda scores: summary(scores, confidence, seed),
        judged=JUDGED,
        label="judged ndcg@10",
    )
    if searched is None:
        return None
    best, best_scores, outcomes = searched
    verdict = judge(
        best_scores,
        baseline,
        margin=settings.fine_tuning_gate_margin,
        confidence=confidence,
        seed=seed,
    )
    return Searched(verdict, best, best_scores, outcomes, len(gate_pool.object_ids), score)


async def run_trials(
    settings: Settings,
    plugin: FineTuningMethod,
    task: Task,
    plan: list[dict[str, Any]],
    start_dir: Path,
    train: Sequence[Example],
    texts: dict[str, list[str]],
    task_run_id: str,
    progress: Progress,
    *,
    score: Callable[[Encoder], S],
    summarise: Callable[[S], dict[str, float]],
    judged: str,
    label: str,
    logged: Mapping[str, Any] | None = None,
) -> tuple[TrialOutcome, S, list[TrialOutcome]] | None:
    """Train every trial of ``plan`` from ``start_dir`` on ``train`` (``texts`` by id), score
    it on the held-out queries (``score``, in a thread) and log it in MLflow (with ``logged``
    beside its hyperparameters); the best by the metric ``judged``, its scores and every
    outcome. None when the task was canceled on the way."""
    builder = plugin.get_fine_tuning_builder()
    experiments = plugin.get_experiment_manager()
    loop = asyncio.get_running_loop()
    share = (_AFTER_TRIALS - _BEFORE_TRIALS) / len(plan)
    outcomes: list[TrialOutcome] = []
    best: tuple[TrialOutcome, S] | None = None

    def rank(metrics: dict[str, float]) -> float:
        value = metrics.get(judged, float("nan"))
        return -math.inf if math.isnan(value) else value

    for i, params in enumerate(plan):
        base = _BEFORE_TRIALS + i * share
        on_step = _ThreadProgress(
            loop, progress, base, 0.8 * share, f"trial {i + 1}/{len(plan)}: training"
        )
        trial_dir = work_dir(settings, task.task_id) / f"trial-{i}"
        result = await asyncio.to_thread(
            builder.train, start_dir, train, texts, params, trial_dir, on_step
        )
        if not await progress(base + 0.8 * share, f"trial {i + 1}/{len(plan)}: evaluating"):
            return None
        trained = await asyncio.to_thread(builder.encoder_for, result.model_dir)
        scores = await asyncio.to_thread(score, trained)
        metrics = summarise(scores)
        run_id = await asyncio.to_thread(
            experiments.log_trial,
            task_run_id,
            i,
            {**params, **(logged or {})},
            {**metrics, "train_loss": result.train_loss, "train_seconds": result.seconds},
            result.model_dir,
        )
        outcome = TrialOutcome(i, params, metrics, run_id, result.train_rows, result.seconds)
        outcomes.append(outcome)
        if best is None or rank(metrics) > rank(best[0].metrics):
            best = (outcome, scores)
        shutil.rmtree(trial_dir, ignore_errors=True)
        log.info("fine-tuning %s trial %d: %s %s", task.task_id, i, params, metrics)
        if not await progress(
            base + share, f"trial {i + 1}/{len(plan)}: {label} {metrics[judged]:.4f}"
        ):
            return None
    assert best is not None
    return best[0], best[1], outcomes
