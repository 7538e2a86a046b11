"""The categories target of a fine-tuning task: clicks in, a model that places queries nearer
the categories of what they led people to click, and (deploy_as_blue) PredictCategories
answering with it.

Steps, beside the items' (``es_core.fine_tuning.run``), reusing their parts: the batch's
sessions become category examples (``es_core.categories.examples``: a clicked item's category
is its payload's ``get_category_field()`` value); queries are split train / test by the same
seeded hash; every trial of the hyperparameter search trains the model that encodes the
categories now (the items' model, or a category-tuned one) on (query, category text, other
category text) rows with the plugin's builder, as items are trained on (query, clicked item,
passed-over item); trials are MLflow runs nested under the task's, the best is registered with
its metrics, lineage and the tag ``es.target=categories``, and the gate is the items' rule on
category MRR (``es_core.categories.evaluation``).

How PredictCategories reaches the new model: a prediction is addressed by an item collection,
whose model's ``categories_blue`` row names the categories collection to compare with, and the
query is encoded by *that collection's* model. With deploy_as_blue, a version that passed the
gate gets its own categories collection (``categories/<version>``, every category re-encoded by
it) and the blue item model's ``categories_blue`` row is pointed at it: predictions then encode
the query with the category-tuned model, and searches are untouched (the item collections and
their model do not change). That is a deploy_as_blue chain (``es_core.serving.deploy_as_blue``,
the result's ``promotion``, the task waiting meanwhile): the version is deployed first (served
through Triton, nothing can encode with it before), then a ``categories_switch`` task
(``es_core.categories.switch``) copies and points, holding ``lock_for_change`` so no category
write is lost between the copy and the switch; the previous categories collection is kept.
A later reindex of the items into another model re-encodes these categories with that model,
as it does any model's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import asyncpg

from es_core.categories.evaluation import (
    JUDGED,
    Scores,
    candidate_rankings,
    in_service_rankings,
    judge,
    score_rankings,
    summary,
)
from es_core.categories.examples import (
    CategoryExampleReport,
    build_category_examples,
    item_categories,
)
from es_core.categories.store import blue_categories, list_heads
from es_core.categories.switch import copy_and_point
from es_core.clickstream.store import batch_sessions
from es_core.config import Settings
from es_core.domain import Collection, Model, Progress
from es_core.encoders.base import Encoder
from es_core.encoders.registry import EncoderRegistry
from es_core.errors import FailedPrecondition
from es_core.fine_tuning.backend_guard import guard_registered_version
from es_core.fine_tuning.examples import Example, split_by_query
from es_core.fine_tuning.experiments import MLFLOW_SOURCE_PREFIX, models_uri
from es_core.fine_tuning.run import TrialOutcome, run_trials, work_dir
from es_core.fine_tuning.search_space import trials
from es_core.plugins.protocol import CategoriesFineTuningMethod, DataLoader, FineTuningMethod
from es_core.serving.deploy_as_blue import Promotion
from es_core.storage import catalog
from es_core.tasks.model import Task

log = logging.getLogger(__name__)

TARGET = "categories"
_BEFORE_TRIALS, _AFTER_TRIALS = 0.1, 0.9


async def run_category_fine_tuning(
    pool: asyncpg.Pool,
    settings: Settings,
    plugin: FineTuningMethod,
    categories_plugin: CategoriesFineTuningMethod,
    encoders: EncoderRegistry,
    task: Task,
    progress: Progress,
) -> dict[str, Any]:
    batch_id = str(task.params.get("resolved_batch_id") or task.params.get("batch_id") or "")
    if not batch_id:
        raise FailedPrecondition("the task names no session batch")
    field = categories_plugin.get_category_field()
    async with pool.acquire() as conn:
        blue = await catalog.get_blue_collection(conn)
        categories = await blue_categories(conn, blue.model)
        if categories is None:
            raise FailedPrecondition(
                f"model {blue.model.model_id!r} has no categories collection yet;"
                " add categories with CategoryService.UpsertCategories"
            )
        gathered = await category_examples(
            conn,
            blue,
            categories,
            batch_id,
            field,
            plugin.get_data_loader(),
            plugin.get_query_retriever().query_of,
            settings,
        )
    examples, report, category_parts = gathered
    known = [c for c, parts in category_parts.items() if parts]
    if report.examples < settings.fine_tuning_min_examples:
        raise FailedPrecondition(
            f"batch {batch_id} gives {report.examples} category examples (clicked items whose"
            f" payload field {field!r} names one of the {len(known)} categories), fewer than the"
            f" {settings.fine_tuning_min_examples} needed (ES_FINE_TUNING_MIN_EXAMPLES):"
            f" {json.dumps(report.as_dict())}"
        )
    train, test = split_by_query(
        examples, settings.fine_tuning_test_fraction, settings.fine_tuning_seed
    )
    builder = plugin.get_fine_tuning_builder()
    plan = trials(
        builder.search_space(
            {
                **categories_plugin.get_fine_tuning_defaults(),
                **(task.params.get("hyperparameters") or {}),
            }
        ),
        settings.fine_tuning_max_trials,
        settings.fine_tuning_seed,
    )
    if not await progress(0.02, f"{len(train)} training and {len(test)} held-out queries"):
        return {"stopped": True}

    start = categories.model  # the model that places the categories now
    experiments = plugin.get_experiment_manager()
    factory = plugin.get_inference_client_factory()
    start_dir = await asyncio.to_thread(factory.model_path, start)
    parent_source = await asyncio.to_thread(_parent_source, plugin, start, start_dir)
    task_run_id = await asyncio.to_thread(
        experiments.start_task,
        task.task_id,
        {
            "target": TARGET,
            "batch_id": batch_id,
            "parent_model_id": start.model_id,
            "categories_collection_id": categories.collection_id,
            "category_field": field,
            "categories": len(known),
            "train_queries": len(train),
            "test_queries": len(test),
            "trials": len(plan),
            **{f"examples.{k}": v for k, v in report.as_dict().items()},
        },
    )
    confidence, seed = settings.fine_tuning_gate_confidence, settings.fine_tuning_seed
    try:
        baseline = score_rankings(
            await in_service_rankings(
                pool,
                categories,
                encoders.get(start),
                test,
                settings.categories_max_per_collection,
            ),
            test,
        )
        searched = await _search(
            settings,
            plugin,
            task,
            train,
            test,
            category_parts,
            plan,
            task_run_id,
            progress,
            start_dir,
        )
    except BaseException:
        await asyncio.to_thread(experiments.finish_task, task_run_id, {}, "FAILED")
        raise
    finally:
        shutil.rmtree(work_dir(settings, task.task_id), ignore_errors=True)
    if searched is None:
        await asyncio.to_thread(experiments.finish_task, task_run_id, {}, "KILLED")
        return {"stopped": True}
    best, best_scores, outcomes = searched
    verdict = judge(
        best_scores,
        baseline,
        margin=settings.fine_tuning_gate_margin,
        confidence=confidence,
        seed=seed,
    )
    in_service = summary(baseline, confidence, seed)
    name = plugin.meta.registered_model_name
    version = await asyncio.to_thread(
        experiments.register,
        name,
        best.run_id,
        best.metrics,
        {
            "es.target": TARGET,
            "es.parent_model_id": start.model_id,
            "es.parent_source": parent_source,
            "es.session_batch_id": batch_id,
            "es.task_id": task.task_id,
            "es.plugin": plugin.meta.name,
            "es.trial": str(best.trial),
            "es.hyperparameters": json.dumps(best.params, sort_keys=True),
            **{f"in_service.{k}": f"{v:.6f}" for k, v in in_service.items()},
        },
        verdict.deployable,
    )
    index = plugin.get_search_index_info()
    model = Model(
        model_id=f"{name}-v{version}",
        name=name,
        version=version,
        dimensions=index.dimensions,
        metric=index.metric,
        aggregation=index.aggregation,
        source=MLFLOW_SOURCE_PREFIX + models_uri(name, version),
        parent_model_id=start.model_id,
    )
    backend = await guard_registered_version(
        settings,
        plugin,
        model,
        best.run_id,
        best_scores,
        _scoring(test, category_parts),
        metric=JUDGED,
        summarise=lambda scores: summary(scores, confidence, seed),
    )
    async with pool.acquire() as conn:
        await catalog.insert_model(conn, model)
    await asyncio.to_thread(experiments.finish_task, task_run_id, verdict.figures, "FINISHED")
    deploy = bool(task.params.get("deploy_as_blue"))
    promotion = first_category_promotion(
        deploy_as_blue=deploy,
        deployable=verdict.deployable,
        model_id=model.model_id,
        items_model_id=blue.model.model_id,
        reason=verdict.reason,
    )
    await progress(1.0, f"registered {model.model_id}; deployable: {verdict.deployable}")
    return {
        "target": TARGET,
        "batch_id": batch_id,
        "model_id": model.model_id,
        "registered_model": name,
        "model_version": version,
        "mlflow_run_id": best.run_id,
        "mlflow_task_run_id": task_run_id,
        "metrics": best.metrics,
        "in_service_metrics": in_service,
        "gate": {
            "deployable": verdict.deployable,
            "reason": verdict.reason,
            **{k: v for k, v in verdict.figures.items() if k.startswith("gain.")},
        },
        **({} if backend is None else {"encoder_backend": backend}),
        "in_service_model_id": start.model_id,
        "deployable": verdict.deployable,
        "deploy_as_blue": deploy,
        "best_trial": best.trial,
        "trials": [asdict(o) for o in outcomes],
        "examples": {**report.as_dict(), "train": len(train), "test": len(test)},
        **({} if promotion is None else {"promotion": promotion.as_json()}),
    }


def first_category_promotion(
    *, deploy_as_blue: bool, deployable: bool, model_id: str, items_model_id: str, reason: str
) -> Promotion | None:
    """The chain a finished categories training starts with: None without deploy_as_blue;
    skipped when the gate refused the version; else deploy it, then switch the categories
    of ``items_model_id``'s predictions to it (``es_core.categories.switch``)."""
    if not deploy_as_blue:
        return None
    if not deployable:
        return Promotion("skipped", model_id, target=TARGET, reason=f"the deploy gate: {reason}")
    return Promotion("deploying", model_id, target=TARGET, items_model_id=items_model_id)


async def category_examples(
    conn: asyncpg.Connection,
    items: Collection,
    categories: Collection,
    batch_id: str,
    category_field: str,
    loader: DataLoader,
    query_of: Callable[[str], str],
    settings: Settings,
) -> tuple[list[Example], CategoryExampleReport, dict[str, list[str]]]:
    """The batch's category examples, their report, and every category's encoded text (by
    id; categories without text are left out: no model can place them)."""
    heads = await list_heads(conn, categories, None, settings.categories_max_per_collection)
    category_parts = await loader.load(conn, categories.table_name, [c for c, _ in heads])
    category_parts = {c: parts for c, parts in category_parts.items() if parts}
    sessions = await batch_sessions(conn, batch_id)
    clicked = sorted({e.object_id for s in sessions for e in s.events})
    of_items = await item_categories(conn, items, clicked, category_field)
    examples, report = build_category_examples(
        sessions, settings.event_weights, of_items, category_parts, query_of
    )
    return examples, report, category_parts


def _parent_source(plugin: FineTuningMethod, start: Model, start_dir: Path) -> str:
    if start.source.startswith(MLFLOW_SOURCE_PREFIX):
        return start.source[len(MLFLOW_SOURCE_PREFIX) :]
    name = plugin.meta.base_model_id
    return models_uri(name, plugin.get_experiment_manager().upload_initial_model(name, start_dir))


def _scoring(
    test: list[Example], category_parts: dict[str, list[str]]
) -> Callable[[Encoder], Scores]:
    """How a trained model is scored on the held-out queries (and a faster backend of it)."""

    def score(trained: Encoder) -> Scores:
        return score_rankings(candidate_rankings(trained, test, category_parts), test)

    return score


async def _search(
    settings: Settings,
    plugin: FineTuningMethod,
    task: Task,
    train: list[Example],
    test: list[Example],
    category_parts: dict[str, list[str]],
    plan: list[dict[str, Any]],
    task_run_id: str,
    progress: Progress,
    start_dir: Path,
) -> tuple[TrialOutcome, Scores, list[TrialOutcome]] | None:
    """Every trial trained and scored on the held-out queries; the best by MRR, its scores and
    all outcomes; None when the task was canceled on the way."""
    confidence, seed = settings.fine_tuning_gate_confidence, settings.fine_tuning_seed
    return await run_trials(
        settings,
        plugin,
        task,
        plan,
        start_dir,
        train,
        category_parts,
        task_run_id,
        progress,
        score=_scoring(test, category_parts),
        summarise=lambda scores: summary(scores, confidence, seed),
        judged=JUDGED,
        label="mrr",
        logged={"target": TARGET},
    )


async def switch_categories(
    pool: asyncpg.Pool,
    settings: Settings,
    plugin: FineTuningMethod,
    encoders: EncoderRegistry,
    items: Collection,
    model: Model,
    progress: Progress,
) -> dict[str, Any] | None:
    """The categories switch (``es_core.categories.switch.copy_and_point``) from what
    ``items``' model's predictions read now, run at once: for callers that encode in-process
    (the chain runs it as a task of its own)."""
    async with pool.acquire() as conn:
        source = await blue_categories(conn, items.model)
    if source is None:
        raise FailedPrecondition(f"model {items.model.model_id!r} lost its categories")
    return await copy_and_point(
        pool,
        settings,
        plugin.get_search_index_info(),
        encoders,
        items.model,
        source,
        model,
        lambda _, message: progress(_AFTER_TRIALS, message),
    )
