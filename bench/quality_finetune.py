"""Fine-tuning quality on SciFact: the base and the fine-tuned model on claims training never saw.

    .venv/bin/python -m bench.quality_finetune [--quick] [--users N] [--hyperparameters JSON]
        [--batch N] [--split] [--no-wrecked] [--json out.json]

On the full SciFact data (5,183 abstracts; the 809 judged claims of qrels/train.tsv):

* dev split by query id: claims whose integer id % 5 == 0 (171) are never searched nor clicked;
  the others (638) are the training claims;
* each abstract (title and text) is one part, as the SciFact baselines encode them (``--split``:
  parts cut exactly as the worker cuts text), encoded in-process by the base model; the vectors
  are cached under ``.bench-cache/`` (keyed by the model path, the parts' layout and the corpus
  file size), so reruns skip the encoding;
* a throwaway stack; the corpus goes in through UpsertItems as parts carrying both the text
  (which fine-tuning reads) and the base model's vector (so the worker does not encode again);
* ``--users`` simulated users (``ClickSimulator``, seed 0, ``CascadeClickModel()`` defaults)
  search every training claim through the API and click what the judgements make them click;
* StartFineTuning on that batch of sessions (the plugin's search space unless
  ``--hyperparameters`` overrides it, e.g. ``{"corpus_pairs": [0.5]}``; the stack inherits the
  environment, so ``ES_FINE_TUNING_MINED_NEGATIVES=0`` etc. set the task's settings); progress
  is polled with TaskService.GetTask;
* the built-in shop catalogue (``es_cli.demo_catalogue``, seed 0: 400 products, 200 judged
  queries) is loaded into the same collection and never searched nor clicked: out-of-domain
  items whose own queries must not pay for a SciFact-trained model;
* the fine-tuned model is deployed and the blue collection reindexed into a green one with it
  (as deploy_as_blue would, without the switch); dev claims, training claims (for context) and
  the shop's judged queries go through Search on both collections (NDCG@10, Recall@10,
  MRR@10), dev and shop under vector and under hybrid ranking (the server's default fusion),
  and how much of the fine-tuned model's dev top 10 lies in the base model's top
  ``ES_FINE_TUNING_GATE_POOL_PER_QUERY`` (the deploy gate's pool on a large collection);
* unless ``--no-wrecked``, a second training on the same batch with a trial that wrecks the
  model (learning rate 1.0): the deploy gate must refuse it.

``--quick``: 190 random judged claims with their judged abstracts plus filler up to 600
abstracts (``bench.quality_personalization.choose``, seed 0), the same dev rule, and one trial
(``{"learning_rate": [5e-5], "frozen_layers": [0]}``) unless ``--hyperparameters`` is given.
The task's own figures on held-out *queries* (trained vs in service, with intervals, and the
deploy gate's verdict) are printed too: they judge by clicks (an item nobody was shown counts
as not relevant), so they are not comparable with the dev figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import Row, base_parser, report, running_stack
from bench.quality_personalization import choose
from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, deployment_pb2, ranking_pb2
from es_cli.demo_catalogue import generate_catalogue
from es_core.config import Settings
from es_core.encoders.base import Encoder, Vectors
from es_core.encoders.local import SentenceTransformerEncoder, base_model_path
from es_core.fine_tuning.gate import JUDGED
from es_core.plugins.text_minilm import SentenceSplitter
from es_harness.beir import Dataset, load_dataset, scifact_dir
from es_harness.click_simulator import SimulationReport, rankings_for
from es_harness.lifecycle import (
    METRICS,
    NAMES,
    K,
    follow,
    get_task,
    judged_query_ids,
    relative_change,
    search_quality,
    simulate_clicks,
    split_dev,
    status_name,
    upsert_and_wait,
)
from es_server.convert import struct_to_dict

# What the deploy gate reports, the metric it decides on last.
GATE_NAMES = {**NAMES, JUDGED: "judged NDCG@10 (deciding)"}
CACHE_DIR = Path(__file__).resolve().parents[1] / ".bench-cache"
QUICK_QUERIES, QUICK_DOCS = 190, 600
QUICK_HYPERPARAMETERS = {"learning_rate": [5e-5], "frozen_layers": [0]}
ENCODE_CHUNK = 2048
SEED = 0
POLL_SECONDS = 10.0
FINE_TUNING_TIMEOUT_S = 3 * 3600.0
IDEMPOTENCY_KEY = "bench-quality-finetune"
# A second training on the same batch whose learning rate wrecks the top layer: the gate must
# refuse it (tests/e2e/test_fine_tuning.py trains the same trial).
WRECKING_TRIAL = {"learning_rate": [1.0], "frozen_layers": [5], "epochs": [1]}

Parts = dict[str, list[str]]  # doc id -> its parts' texts, in part order
PartVectors = dict[str, Vectors]  # doc id -> its parts' vectors, one row per part


@dataclass
class Split:
    doc_ids: list[str]
    train: dict[str, str]  # query id -> text
    dev: dict[str, str]
    rule: str


def split_queries(data: Dataset, quick: bool) -> Split:
    """All judged claims and abstracts (quick: a seeded sample), claims split by ``split_dev``
    (SciFact's ids are integers: id % 5 == 0 is dev)."""
    if quick:
        query_ids, _, doc_ids = choose(data, QUICK_QUERIES, 0, QUICK_DOCS, SEED)
    else:
        query_ids = judged_query_ids(data)
        doc_ids = sorted(data.corpus)
    split = split_dev({q: data.queries[q] for q in query_ids})
    return Split(doc_ids, split.train, split.dev, split.rule)


# ---- base part vectors, cached on disk ----


def cache_path(settings: Settings, corpus_file: Path, split: bool) -> Path:
    layout = [settings.splitter_max_words, settings.splitter_overlap_words] if split else "whole"
    key = json.dumps([str(base_model_path()), layout, corpus_file.stat().st_size])
    return CACHE_DIR / f"scifact-base-parts-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def by_doc(ids: Sequence[str], counts: Sequence[int], vectors: Vectors) -> PartVectors:
    """Consecutive rows of ``vectors``: ``counts[i]`` of them belong to ``ids[i]``."""
    return dict(zip(ids, np.split(vectors, np.cumsum(counts)[:-1]), strict=True))


def load_cache(path: Path) -> PartVectors:
    if not path.exists():
        return {}
    with np.load(path) as stored:
        ids, counts, vectors = stored["doc_ids"], stored["counts"], stored["vectors"]
    return by_doc([str(d) for d in ids], counts.tolist(), vectors)


def save_cache(path: Path, vectors: PartVectors) -> None:
    """Atomically: a run killed while writing leaves the previous cache in place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ids = sorted(vectors)
    staging = path.with_suffix(".tmp.npz")
    np.savez(
        staging,
        doc_ids=np.array(ids),
        counts=np.array([len(vectors[d]) for d in ids]),
        vectors=np.concatenate([vectors[d] for d in ids]),
    )
    staging.replace(path)


def encode_parts(encoder: Encoder, parts: Parts, label: str) -> PartVectors:
    """Every part of ``parts`` encoded (in chunks, reporting progress and the rate)."""
    ids = sorted(parts)
    texts = [text for d in ids for text in parts[d]]
    started = time.perf_counter()
    chunks = []
    for i in range(0, len(texts), ENCODE_CHUNK):
        chunks.append(encoder.encode_items(texts[i : i + ENCODE_CHUNK]))
        print(f"  {label}: {min(i + ENCODE_CHUNK, len(texts))}/{len(texts)} parts", flush=True)
    seconds = time.perf_counter() - started
    print(
        f"{label}: encoded {len(texts)} parts of {len(ids)} docs in {seconds:.0f} s"
        f" = {len(texts) / seconds:.1f} parts/s"
    )
    vectors = np.concatenate(chunks)
    return by_doc(ids, [len(parts[d]) for d in ids], vectors)


def base_part_vectors(parts: Parts, encoder: Encoder, path: Path) -> PartVectors:
    """The base model's part vectors: from the cache, encoding (and caching) what is missing."""
    cached = load_cache(path)
    missing = {d: p for d, p in parts.items() if len(cached.get(d, ())) != len(p)}
    if missing:
        cached.update(encode_parts(encoder, missing, "base model"))
        save_cache(path, cached)
        print(f"base part vectors cached in {path}")
    else:
        print(f"base part vectors of {len(parts)} docs read from {path}")
    return {d: cached[d] for d in parts}


# ---- the API: upsert, simulate, fine-tune ----


def upsert_item(object_id: str, texts: Sequence[str], vectors: Vectors) -> dict[str, Any]:
    """An item as pre-split parts "0", "1", ... (the worker's ids), with their vectors if given."""
    return {
        "object_id": object_id,
        "parts": [
            {"part_id": str(i), "text": text, "vector": vectors[i].tolist()}
            for i, text in enumerate(texts)
        ],
    }


def upsert(client: Client, parts: Parts, vectors: PartVectors, batch: int) -> float:
    """Every doc through UpsertItems (``batch`` items per request), parts with their text and
    vector, then every task waited for; returns seconds."""
    items = [upsert_item(d, parts[d], vectors[d]) for d in sorted(parts)]
    return upsert_and_wait(client, items, batch=batch)


class ChangePrinter:
    """Prints a followed task's line each time its status, progress or message changes."""

    def __init__(self) -> None:
        self.last: tuple[int, float, str] | None = None

    def __call__(self, task: common_pb2.Task, elapsed: float) -> None:
        state = (task.status, task.progress, task.progress_message)
        if state != self.last:
            self.last = state
            print(
                f"  {elapsed:6.0f} s  {task.progress:6.1%}  {status_name(task)}"
                f"  {task.progress_message}"
            )


def fine_tune(
    client: Client,
    hyperparameters: dict[str, Any] | None,
    batch_id: str = "",
    idempotency_key: str = IDEMPOTENCY_KEY,
) -> dict[str, Any]:
    """StartFineTuning on ``batch_id`` (empty: the current batch of sessions), followed until
    done; its result."""
    started = client.start_fine_tuning(
        batch_id=batch_id,
        idempotency_key=idempotency_key,
        hyperparameters=hyperparameters,
        timeout=60,
    )
    task_id = started.task.task_id
    print(f"fine-tuning task {task_id} on batch {started.batch_id}")
    task = follow(
        lambda t: get_task(client, t),
        task_id,
        timeout_s=FINE_TUNING_TIMEOUT_S,
        poll_seconds=POLL_SECONDS,
        on_poll=ChangePrinter(),
    )
    if task.status != common_pb2.TASK_STATUS_DONE:
        raise RuntimeError(f"fine-tuning task {task_id} ended {status_name(task)}: {task.error}")
    result = struct_to_dict(task.result, "result")  # whole numbers back as ints
    result["task_seconds"] = (
        task.finish_time.ToDatetime() - task.start_time.ToDatetime()
    ).total_seconds()
    return result


def print_fine_tuning(result: Mapping[str, Any]) -> None:
    print(
        f"fine-tuning produced {result['model_id']} in {result['task_seconds']:.0f} s"
        f" (task start to finish); examples {json.dumps(result['examples'])}"
    )
    tuned, live = result["metrics"], result["in_service_metrics"]
    gate = result.get("gate") or {}

    def figure(values: Mapping[str, Any], name: str, sign: str = "") -> str:
        nan = float("nan")
        low, high = values.get(name + ".low", nan), values.get(name + ".high", nan)
        return f"{values.get(name, nan):{sign}.4f} [{low:{sign}.4f}, {high:{sign}.4f}]"

    print(f"  the deploy gate ranks {gate.get('pool_items', '?')} items for each held-out query")
    for m, name in GATE_NAMES.items():
        print(
            f"  held-out queries {name}: trained {figure(tuned, m)}, in service"
            f" {figure(live, m)}; gain {figure(gate, 'gain.' + m, '+')}"
        )
    print(f"  {gate.get('reason', '')}")
    print(f"  deployable: {result['deployable']}; best trial {int(result['best_trial'])}")
    for trial in result["trials"]:
        print(
            f"  trial {int(trial['trial'])}: {json.dumps(trial['params'], sort_keys=True)}"
            f" judged ndcg@10 {trial['metrics'][JUDGED]:.4f}, {int(trial['train_rows'])} rows,"
            f" {trial['seconds']:.0f} s"
        )


def finished(client: Client, task_id: str, what: str) -> None:
    task = client.wait_for_task(task_id, timeout_seconds=FINE_TUNING_TIMEOUT_S)
    if task.status != common_pb2.TASK_STATUS_DONE:
        raise RuntimeError(f"{what} task {task_id} ended {status_name(task)}: {task.error}")


RANKINGS = {
    "vector": ranking_pb2.RankingSpec(method=ranking_pb2.RANKING_METHOD_VECTOR),
    # The server's default fusion and weights.
    "hybrid": ranking_pb2.RankingSpec(method=ranking_pb2.RANKING_METHOD_HYBRID),
}


@dataclass(frozen=True)
class QuerySet:
    queries: Mapping[str, str]
    qrels: Mapping[str, Mapping[str, int]]
    rankings: tuple[str, ...]  # the RANKINGS each set is measured under


Served = dict[str, dict[str, dict[str, float]]]  # "dev hybrid" -> model -> metric -> value


def served_quality(client: Client, sets: Mapping[str, QuerySet], model_id: str) -> Served:
    """Each query set through Search, under its rankings, on the blue collection (the base
    model) and on a green one the fine-tuned model was deployed and reindexed into."""
    blue = client.get_blue_collection(timeout=30).collection_id
    deployed = client.deployment.DeployModel(
        deployment_pb2.DeployModelRequest(model_id=model_id), timeout=60
    )
    finished(client, deployed.task.task_id, "deploy")
    started = client.start_reindex(
        model_id, source_collection_id=blue, idempotency_key=IDEMPOTENCY_KEY + "-reindex"
    )
    finished(client, started.task.task_id, "reindex")
    collections = {"base": blue, "fine-tuned": started.destination_collection_id}
    served: Served = {
        f"{name} {method}": {
            label: search_quality(
                client,
                query_set.queries,
                query_set.qrels,
                collection_id=collection,
                ranking=RANKINGS[method],
            )
            for label, collection in collections.items()
        }
        for name, query_set in sets.items()
        for method in query_set.rankings
    }
    served["gate pool"] = {
        "fine-tuned": {"coverage": gate_pool_coverage(client, sets["dev"].queries, collections)}
    }
    return served


def gate_pool_coverage(
    client: Client, queries: Mapping[str, str], collections: Mapping[str, str]
) -> float:
    """Share of the fine-tuned model's top 10 that lies in the base model's top
    ``ES_FINE_TUNING_GATE_POOL_PER_QUERY`` (the pool the deploy gate ranks past
    ``ES_FINE_TUNING_GATE_MAX_ITEMS``), over ``queries``: how much of the candidate's answer the
    gate sees."""
    depth = Settings().fine_tuning_gate_pool_per_query
    vector = RANKINGS["vector"]
    wide = rankings_for(
        client, queries, limit=depth, collection_id=collections["base"], ranking=vector
    )
    top = rankings_for(
        client, queries, limit=K, collection_id=collections["fine-tuned"], ranking=vector
    )
    inside = sum(len(set(top[q]) & set(wide[q])) for q in queries)
    return inside / max(1, sum(len(top[q]) for q in queries))


def result_rows(
    served: Served,
    result: Mapping[str, Any],
    sim: SimulationReport,
    phases: Mapping[str, float],
) -> list[Row]:
    rows = []
    for key, figures in served.items():
        if key == "gate pool":
            continue
        base, tuned = figures["base"], figures["fine-tuned"]
        rows += [Row(f"{key} {NAMES[m]}", tuned[m], base[m], "base model") for m in METRICS]
        if key.startswith("dev"):
            rows += [
                Row(f"{key} {NAMES[m]} change (%)", relative_change(tuned[m], base[m]))
                for m in METRICS
            ]
        if key.startswith("shop"):
            rows.append(Row(f"{key} NDCG@10 change (absolute)", tuned["ndcg@10"] - base["ndcg@10"]))
    rows.append(
        Row(
            "gate pool: share of the fine-tuned dev top 10 in the base top"
            f" {Settings().fine_tuning_gate_pool_per_query}",
            served["gate pool"]["fine-tuned"]["coverage"],
        )
    )
    rows += [
        Row(
            f"gate: held-out queries {name}",
            result["metrics"][m],
            result["in_service_metrics"][m],
            "in service",
        )
        for m, name in GATE_NAMES.items()
    ]
    if "wrecked" in result:
        rows.append(
            Row("gate: wrecked model deployable", int(bool(result["wrecked"]["deployable"])))
        )
    rows += [
        Row("sessions", len(sim.session_ids)),
        Row("clicks accepted", sim.accepted_count, sim.events_sent, "clicks sent"),
        *(Row(f"time: {phase} (s)", seconds) for phase, seconds in phases.items()),
    ]
    return rows


def print_served(served: Served) -> None:
    for key, figures in served.items():
        if key == "gate pool":
            continue
        old, new = figures["base"], figures["fine-tuned"]
        print(
            f"{key} through Search: "
            + ", ".join(
                f"{NAMES[m]} base {old[m]:.4f}, fine-tuned {new[m]:.4f}"
                f" ({relative_change(new[m], old[m]):+.1f}%)"
                for m in METRICS
            )
        )
    print(
        f"the gate's pool: {served['gate pool']['fine-tuned']['coverage']:.1%} of the fine-tuned"
        " model's top 10 for the dev claims lie in the base model's top"
        f" {Settings().fine_tuning_gate_pool_per_query}"
    )


def main_run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    phases: dict[str, float] = {}
    settings = Settings()
    data = load_dataset(scifact_dir())
    split = split_queries(data, args.quick)
    print(
        f"SciFact: {len(split.doc_ids)} docs, {len(split.train) + len(split.dev)} judged queries:"
        f" {len(split.train)} training, {len(split.dev)} dev ({split.rule}; dev queries are"
        " never searched nor clicked)"
    )
    splitter = SentenceSplitter(settings)
    parts = {
        d: splitter.split(data.corpus[d].full_text) if args.split else [data.corpus[d].full_text]
        for d in split.doc_ids
    }
    # The built-in shop catalogue sits in the same collection: out-of-domain items whose own
    # judged queries must not pay for a SciFact-trained model (its ids "p0001"... are not
    # SciFact's). Nobody searches or clicks them in training.
    shop = generate_catalogue(SEED)
    shop_parts = {d: [shop.corpus[d].full_text] for d in sorted(shop.corpus)}
    print(f"shop catalogue beside it: {len(shop_parts)} items, {len(shop.queries)} judged queries")
    base = SentenceTransformerEncoder(base_model_path(), batch_size=settings.encode_batch_size)

    phase = time.perf_counter()
    base_vectors = base_part_vectors(
        parts, base, cache_path(settings, scifact_dir() / "corpus.jsonl", args.split)
    )
    base_vectors.update(encode_parts(base, shop_parts, "base model, shop catalogue"))
    parts = {**parts, **shop_parts}
    phases["encode base"] = time.perf_counter() - phase
    users = [f"user-{i}" for i in range(args.users)]
    with running_stack() as stack, Client(stack.grpc_address) as client:
        phases["upsert"] = upsert(client, parts, base_vectors, args.batch)
        print(
            f"upserted {len(parts)} docs ({sum(map(len, parts.values()))} parts) in"
            f" {phases['upsert']:.0f} s = {len(parts) / phases['upsert']:.1f} items/s"
        )
        phase = time.perf_counter()
        sim = simulate_clicks(client, split.train, data.qrels, users, seed=SEED, limit=K)
        phases["simulate"] = time.perf_counter() - phase
        print(
            f"simulated {len(sim.session_ids)} sessions ({len(users)} users x {len(split.train)}"
            f" training queries) in {phases['simulate']:.0f} s: {sim.events_sent} clicks sent,"
            f" {sim.accepted_count} accepted"
        )
        phase = time.perf_counter()
        result = fine_tune(client, args.hyperparameters)
        phases["fine-tune"] = time.perf_counter() - phase
        print_fine_tuning(result)
        phase = time.perf_counter()
        sets = {
            "dev": QuerySet(split.dev, data.qrels, ("vector", "hybrid")),
            "train": QuerySet(split.train, data.qrels, ("vector",)),
            "shop": QuerySet(shop.queries, shop.qrels, ("vector", "hybrid")),
        }
        served = served_quality(client, sets, str(result["model_id"]))
        phases["deploy, reindex, search"] = time.perf_counter() - phase
        print_served(served)
        if args.wrecked:
            phase = time.perf_counter()
            print(f"the same batch again, with a trial that wrecks the model: {WRECKING_TRIAL}")
            wrecked = fine_tune(
                client, WRECKING_TRIAL, str(result["batch_id"]), IDEMPOTENCY_KEY + "-wrecked"
            )
            phases["wrecked model"] = time.perf_counter() - phase
            print(f"  wrecked model deployable: {wrecked['deployable']}")
            print(f"  {(wrecked.get('gate') or {}).get('reason', '')}")
            result["wrecked"] = {"deployable": wrecked["deployable"], "gate": wrecked.get("gate")}

    phases["total"] = time.perf_counter() - started
    trials = len(result["trials"])
    report(
        f"fine-tuning on SciFact: {len(parts)} docs, {len(split.train)} training /"
        f" {len(split.dev)} dev queries (dev: {split.rule}), {len(users)} users,"
        f" {trials} trial(s); deployable {result['deployable']}",
        result_rows(served, result, sim, phases),
        args.json,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "dev_rule": split.rule,
            "sizes": {
                "docs": len(parts),
                "train": len(split.train),
                "dev": len(split.dev),
                "shop_items": len(shop_parts),
                "shop_queries": len(shop.queries),
            },
            "served": served,
            "fine_tuning": result,
            "phases_seconds": phases,
        },
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "fine-tuning quality")
    parser.add_argument("--users", type=int, default=4, help="simulated users who click")
    parser.add_argument(
        "--hyperparameters",
        type=json.loads,
        help="search-space overrides as JSON, e.g. '{\"learning_rate\": [5e-5]}'"
        " (default: the plugin's space; --quick: one trial)",
    )
    parser.add_argument("--batch", type=int, default=200, help="items per UpsertItems request")
    parser.add_argument(
        "--split", action="store_true", help="cut abstracts into parts like the worker does"
    )
    parser.add_argument(
        "--no-wrecked",
        dest="wrecked",
        action="store_false",
        help="skip the second training (a wrecked model the gate must refuse)",
    )
    args = parser.parse_args()
    if args.quick and args.hyperparameters is None:
        args.hyperparameters = QUICK_HYPERPARAMETERS
    main_run(args)


if __name__ == "__main__":
    main()
