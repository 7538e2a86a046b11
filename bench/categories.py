"""Category prediction before and after fine-tuning for categories, on the built-in shop catalogue.

    .venv/bin/python -m bench.categories [--quick] [--users N] [--hyperparameters JSON]
        [--json out.json]

* the shop catalogue (``es_cli.demo_catalogue``, seed 0: 8 kinds x 50 products, 25 nickname
  queries per kind; ``--quick``: 20 products and 12 queries per kind) goes into a throwaway
  stack through UpsertItems, each product with payload ``{"category": <its kind's noun>}``
  (``ES_CATEGORIES_FIELD``'s default);
* its 8 kinds go in through UpsertCategories as categories (id, name and text: the noun);
* queries are split by a seeded hash of their text: about 30 % are *measured* and are never
  searched nor clicked; the others are the training queries. A query names its kind only by
  the shop's nickname ("vorta red waterproof" = red waterproof headphones), a word the base
  model has never seen, so its category is what clicks must teach;
* before: PredictCategories (every category returned: a distance selector of 2) on each
  measured query; top-1 accuracy (the nearest category is the query's kind) and MRR;
* ``--users`` simulated users (``ClickSimulator``, ``CascadeClickModel()`` defaults) search
  every training query and click products the judgements make them click (the right kind);
* StartFineTuning with target CATEGORIES and deploy_as_blue on that batch: the task trains on
  the clicked products' categories, gates on its own held-out training queries, and when the
  gate passes, PredictCategories of the blue item collection answers with the new model;
* after: the same measured queries again. The baseline of each figure is the base model's,
  measured in the same run; the blue item collection is checked to be the same one.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import Row, base_parser, report
from embedding_studio.client import Client, from_struct, to_struct
from embedding_studio.v1 import (
    categories_pb2,
    common_pb2,
    fine_tune_pb2,
    search_pb2,
)
from es_cli.demo_catalogue import KINDS, generate_catalogue
from es_core.evaluation.click_model import CascadeClickModel
from es_harness.beir import Dataset
from es_harness.click_simulator import ClickSimulator
from es_harness.lifecycle import follow, get_task, status_name, upsert_and_wait
from es_harness.throwaway import ThrowawayStack

SEED = 0
NO_TRITON = {"ES_SERVE_WITH_TRITON": "false"}
MEASURED_SHARE = 0.3
FINE_TUNING_TIMEOUT_S = 3 * 3600
QUICK_TRIAL = {"learning_rate": [1e-4], "frozen_layers": [0], "epochs": [1]}


def kind_of_product(title: str) -> str:
    """The noun of a product's kind: its title ends with it."""
    return next(k.noun for k in KINDS if title.endswith(k.noun))


def kind_of_query(text: str) -> str:
    """The noun of the kind a query's nickname names."""
    words = set(text.replace(",", " ").split())
    return next(k.noun for k in KINDS if k.nickname in words)


def is_measured(text: str, seed: int = SEED) -> bool:
    digest = hashlib.sha256(f"{seed}:{text.lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64 < MEASURED_SHARE


def upsert_catalogue(client: Client, data: Dataset) -> float:
    items = [
        {
            "object_id": doc.doc_id,
            "text": doc.full_text,
            "payload": {"category": kind_of_product(doc.title)},
        }
        for doc in data.corpus.values()
    ]
    return upsert_and_wait(client, items, batch=200)


def upsert_categories(client: Client) -> None:
    request = categories_pb2.UpsertCategoriesRequest(
        categories=[
            categories_pb2.Category(category_id=k.noun, name=k.noun, text=k.noun) for k in KINDS
        ]
    )
    response: categories_pb2.UpsertCategoriesResponse = client.categories.UpsertCategories(
        request, timeout=60
    )
    done = client.wait_for_task(response.task.task_id, timeout_seconds=600)
    if done.status != common_pb2.TASK_STATUS_DONE:
        raise RuntimeError(f"UpsertCategories task ended {status_name(done)}: {done.error}")


def predict(client: Client, text: str) -> tuple[list[str], str]:
    """Every category, nearest first, and the categories collection that answered."""
    request = search_pb2.PredictCategoriesRequest(
        query_text=text,
        limit=len(KINDS),
        selector=search_pb2.CategorySelector(
            distance=search_pb2.DistanceSelector(max_distance=2.0)
        ),
    )
    response: search_pb2.PredictCategoriesResponse = client.search.PredictCategories(
        request, timeout=30
    )
    return [p.category_id for p in response.predictions], response.categories_collection_id


def measure(client: Client, queries: Mapping[str, str]) -> tuple[float, float, str]:
    """(top-1 accuracy, MRR, answering categories collection) over ``queries``."""
    hits, reciprocal, collection = 0.0, 0.0, ""
    for text in queries.values():
        ranked, collection = predict(client, text)
        kind = kind_of_query(text)
        if ranked and ranked[0] == kind:
            hits += 1
        if kind in ranked:
            reciprocal += 1.0 / (ranked.index(kind) + 1)
    n = max(1, len(queries))
    return hits / n, reciprocal / n, collection


def fine_tune(client: Client, hyperparameters: dict[str, Any] | None) -> dict[str, Any]:
    request = fine_tune_pb2.StartFineTuningRequest(
        idempotency_key="bench-categories",
        deploy_as_blue=True,
        target=fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES,
    )
    if hyperparameters is not None:
        request.hyperparameters.CopyFrom(to_struct(hyperparameters))
    started: fine_tune_pb2.StartFineTuningResponse = client.fine_tune.StartFineTuning(
        request, timeout=60
    )
    task_id = started.task.task.task_id
    print(f"category fine-tuning task {task_id} on batch {started.task.batch_id}")
    last: list[str] = [""]

    def show(task: common_pb2.Task, elapsed: float) -> None:
        line = f"{task.progress:6.1%}  {status_name(task)}  {task.progress_message}"
        if line != last[0]:
            last[0] = line
            print(f"  {elapsed:6.0f} s  {line}")

    task = follow(
        lambda t: get_task(client, t),
        task_id,
        timeout_s=FINE_TUNING_TIMEOUT_S,
        poll_seconds=2.0,
        on_poll=show,
    )
    if task.status != common_pb2.TASK_STATUS_DONE:
        raise RuntimeError(f"fine-tuning task {task_id} ended {status_name(task)}: {task.error}")
    result: dict[str, Any] = from_struct(task.result)
    return result


def print_task(result: Mapping[str, Any]) -> None:
    metrics, before = result["metrics"], result["in_service_metrics"]
    print(f"task examples: {json.dumps(result['examples'])}")
    for name in ("accuracy@1", "mrr"):
        print(
            f"  task held-out {name}: {metrics[name]:.3f} [{metrics[name + '.low']:.3f},"
            f" {metrics[name + '.high']:.3f}] against {before[name]:.3f} in service"
        )
    print(f"  gate: {result['gate']['reason']}")
    print(f"  switch: {json.dumps(result.get('promotion'))}")


def main_run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    sizes = {"items_per_kind": 20, "queries_per_kind": 12} if args.quick else {}
    data = generate_catalogue(SEED, **sizes)
    measured = {q: t for q, t in data.queries.items() if is_measured(t)}
    training = {q: t for q, t in data.queries.items() if q not in measured}
    users = [f"user-{i}" for i in range(args.users)]
    hyperparameters = args.hyperparameters
    if hyperparameters is None and args.quick:
        hyperparameters = QUICK_TRIAL
    print(
        f"shop catalogue: {len(data.corpus)} products of {len(KINDS)} kinds, {len(data.queries)}"
        f" queries: {len(training)} training (clicked by {len(users)} users), {len(measured)}"
        " measured (never searched nor clicked)"
    )
    with (
        tempfile.TemporaryDirectory(prefix="es-bench-") as tmp,
        # In-process encoders: quicker to start, and the promotion chain is the same one (its
        # deployment step has no Triton to load; tests/e2e/test_category_fine_tuning_triton.py
        # runs it through Triton).
        ThrowawayStack(Path(tmp) / "stack", extra_env=NO_TRITON) as stack,
        Client(stack.grpc_address) as client,
    ):
        print(f"stack up at {stack.grpc_address} (models served in-process)")
        seconds = upsert_catalogue(client, data)
        print(f"upserted {len(data.corpus)} products in {seconds:.0f} s")
        upsert_categories(client)
        blue_before = client.get_blue_collection(timeout=30).collection_id
        accuracy_before, mrr_before, answered_before = measure(client, measured)
        print(f"before: top-1 {accuracy_before:.3f}, MRR {mrr_before:.3f} ({answered_before})")
        simulator = ClickSimulator(client, CascadeClickModel(), seed=SEED)
        clicks = simulator.run(training, data.qrels, users=users)
        print(f"simulated {len(clicks.session_ids)} sessions, {clicks.accepted_count} clicks")
        phase = time.perf_counter()
        result = fine_tune(client, hyperparameters)
        tuning_seconds = time.perf_counter() - phase
        print_task(result)
        accuracy_after, mrr_after, answered_after = measure(client, measured)
        blue_after = client.get_blue_collection(timeout=30).collection_id
        print(f"after: top-1 {accuracy_after:.3f}, MRR {mrr_after:.3f} ({answered_after})")
    if blue_after != blue_before:
        raise RuntimeError(f"the blue item collection changed: {blue_before} -> {blue_after}")
    rows = [
        Row("top-1 accuracy, measured queries", accuracy_after, accuracy_before, "base model"),
        Row("MRR, measured queries", mrr_after, mrr_before, "base model"),
        Row("gate passed (predictions switched)", int(bool(result["deployable"]))),
        Row("fine-tuning task seconds", tuning_seconds),
    ]
    report(
        "category prediction before / after fine-tuning for categories (shop catalogue)",
        rows,
        args.json,
        {
            "products": len(data.corpus),
            "training_queries": len(training),
            "measured_queries": len(measured),
            "users": len(users),
            "hyperparameters": hyperparameters,
            "model_id": result["model_id"],
            "task_metrics": result["metrics"],
            "task_in_service_metrics": result["in_service_metrics"],
            "gate": result["gate"],
            "categories_collection_before": answered_before,
            "categories_collection_after": answered_after,
            "seconds": time.perf_counter() - started,
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=3, help="simulated users (default 3)")
    parser.add_argument(
        "--hyperparameters",
        type=json.loads,
        default=None,
        help="search space overrides as JSON (default: the plugin's; --quick: one trial)",
    )
    main_run(parser.parse_args(argv))


if __name__ == "__main__":
    main()
