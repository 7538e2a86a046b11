"""Hybrid ranking quality on SciFact, with the shop catalogue loaded beside it: vector, BM25,
the fused defaults, and the fusion weights a ranking fit learns from simulated clicks.

    .venv/bin/python -m bench.quality_hybrid [--quick] [--users N] [--seed N] [--window N]
        [--start vector|weighted|rrf] [--variants SPEC,...] [--sweep]
        [--click-model cascade|examine-all] [--json out.json]

One throwaway stack, one collection (blue) holding both corpora, told apart by the payload
field ``corpus`` ("scifact" / "shop"); every search below filters on it.

* SciFact: the 5,183 abstracts (``full_text`` = title and abstract), cut into parts exactly as
  the worker cuts a text (``SentenceSplitter``), each part sent with its text (which the BM25
  index reads) and the base model's vector, encoded in this process and cached under
  ``.bench-cache/`` (the cache ``bench.quality_finetune --split`` uses); the judged claims of
  qrels/train.tsv split by ``split_dev`` (integer id % 5 == 0 is dev);
* the built-in shop catalogue (``es_cli.demo_catalogue``, seed 0) as text items the worker
  encodes, its queries split by the same rule;
* dev NDCG / Recall / MRR @10 through Search, per corpus, for: vector; lexical (BM25); hybrid
  weighted fusion at its defaults (no weights set); hybrid reciprocal-rank fusion at its
  defaults;
* ``--users`` simulated users (``simulate_clicks``, cascade click model) search every training
  query of both corpora with sessions, ranked by the live spec (vector), and click;
* one StartRankingFit over all the collection's sessions (both corpora: the realistic case),
  followed to its end; its result (learned spec, held-out session figures, gate verdict) is
  printed; the dev queries are measured again with the learned spec: as the live spec (a
  Search with no ranking) when the gate let it go live, else given explicitly in the request.

The fit builds each query's candidate pool without the session's filter (it does not read
session filters): a shop query's pool may hold SciFact abstracts that share its words, which
move the per-query z-scores of weighted fusion. Search in service filters both sides.

``--start weighted|rrf`` makes a hybrid spec of that fusion live just before the fit (sessions
are still recorded under vector ranking), so the fit searches weights for that fusion and the
gate compares with that spec; ``--window N`` sets the window of every hybrid spec measured and
of the spec the fit starts from (0 = the server's default, 50). ``--variants`` runs further
fits after the main one, e.g. ``vector:100,rrf:50,rrf:100`` (start:window), each measured with
its learned spec given explicitly; ``--sweep`` also measures weighted fusion over a grid of
lexical shares on the dev queries (an oracle: it peeks at dev, for context only).
``--click-model examine-all`` is a diagnostic: users who look at every rank and go on after a
click, so clicks carry no position bias from the live (vector) ranking that showed them.

``--quick``: 190 judged claims with their judged abstracts plus filler up to 600 abstracts
(``bench.quality_personalization.choose``, seed 0), the whole shop catalogue.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import Row, base_parser, report, running_stack
from bench.quality_finetune import ChangePrinter, base_part_vectors, cache_path
from bench.quality_personalization import choose
from embedding_studio.client import Client, ItemInput, to_value
from embedding_studio.v1 import common_pb2, ranking_pb2, ranking_pb2_grpc
from es_cli.demo_catalogue import generate_catalogue
from es_core.config import Settings
from es_core.encoders.local import SentenceTransformerEncoder, base_model_path
from es_core.evaluation.click_model import CascadeClickModel
from es_core.plugins.text_minilm import SentenceSplitter
from es_harness.beir import Dataset, load_dataset, scifact_dir
from es_harness.click_simulator import search
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

QUICK_QUERIES, QUICK_DOCS = 190, 600
CHOOSE_SEED = 0
CATALOGUE_SEED = 0
CORPUS_FIELD = "corpus"
SCIFACT, SHOP = "scifact", "shop"
UPSERT_BATCH = 200
POLL_SECONDS = 2.0
FIT_TIMEOUT_S = 3600.0
NDCG = f"ndcg@{K}"
SWEEP_SHARES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
START_SPECS = ("vector", "weighted", "rrf")
#: "examine-all" is a diagnostic, not a realistic user: every rank is looked at and a click does
#: not end the scan, so clicks follow relevance and not the position the live ranking gave.
CLICK_MODELS = {
    "cascade": CascadeClickModel(),
    "examine-all": CascadeClickModel(eta=0.0, stop_after_click=0.0),
}
BOOST_FUNCTIONS = {
    "log": ranking_pb2.BOOST_FUNCTION_LOG,
    "linear": ranking_pb2.BOOST_FUNCTION_LINEAR,
    "decay": ranking_pb2.BOOST_FUNCTION_DECAY,
}

VECTOR = "vector"
LEXICAL = "lexical"
WEIGHTED = "hybrid weighted (default)"
RRF = "hybrid rrf (default)"
LEARNED = "hybrid learned"

Scores = dict[str, float]  # metric -> value


@dataclass
class Corpus:
    """One corpus of the shared collection: its queries split, its judgements, its filter."""

    name: str
    data: Dataset
    train: dict[str, str]
    dev: dict[str, str]
    rule: str
    doc_ids: list[str]

    @property
    def filter(self) -> common_pb2.Filter:
        return corpus_filter(self.name)


@dataclass
class FitRun:
    """One ranking fit: the spec it started from, its task result, the dev figures it gave."""

    start: str
    window: int
    result: dict[str, Any]
    seconds: float
    dev: dict[str, Scores] = field(default_factory=dict)  # corpus -> scores
    measured_as: str = ""
    ranking_version: int = -1  # of a Search with no ranking after the fit; -1: not probed


def corpus_filter(name: str) -> common_pb2.Filter:
    return common_pb2.Filter(term=common_pb2.TermFilter(field=CORPUS_FIELD, value=to_value(name)))


# ---- ranking specs ----


def spec_proto(
    method: str,
    fusion: str = "weighted",
    window: int = 0,
    vector_weight: float | None = None,
    lexical_weight: float | None = None,
    rrf_k: float = 0.0,
) -> ranking_pb2.RankingSpec:
    """A RankingSpec message; unset weights are left for the server's defaults."""
    spec = ranking_pb2.RankingSpec(
        method={
            "vector": ranking_pb2.RANKING_METHOD_VECTOR,
            "lexical": ranking_pb2.RANKING_METHOD_LEXICAL,
            "hybrid": ranking_pb2.RANKING_METHOD_HYBRID,
        }[method],
        fusion=ranking_pb2.FUSION_METHOD_RECIPROCAL_RANK
        if fusion == "rrf"
        else ranking_pb2.FUSION_METHOD_WEIGHTED,
        window=window,
        rrf_k=rrf_k,
    )
    if vector_weight is not None:
        spec.vector_weight = vector_weight
    if lexical_weight is not None:
        spec.lexical_weight = lexical_weight
    return spec


def spec_from_result(data: Mapping[str, Any]) -> ranking_pb2.RankingSpec:
    """The learned spec of a ranking fit's result (``RankingSpec.to_json``) as a message."""
    spec = spec_proto(
        str(data["method"]),
        str(data["fusion"]),
        int(data.get("window", 0)),
        float(data["vector_weight"]),
        float(data["lexical_weight"]),
        float(data.get("rrf_k", 0.0)),
    )
    for b in data.get("boosts", []):
        spec.boosts.append(
            ranking_pb2.Boost(
                field=str(b["field"]),
                function=BOOST_FUNCTIONS[str(b["function"])],
                weight=float(b["weight"]),
                half_life_seconds=float(b["half_life_seconds"]),
            )
        )
    return spec


def start_spec(start: str, window: int) -> ranking_pb2.RankingSpec:
    return (
        spec_proto("vector", window=window)
        if start == "vector"
        else spec_proto("hybrid", start, window)
    )


def describe(spec: Mapping[str, Any]) -> str:
    boosts = ", ".join(f"{b['field']}:{b['function']}x{b['weight']}" for b in spec["boosts"])
    return (
        f"{spec['method']} {spec['fusion']} vector {spec['vector_weight']:.2f} / lexical"
        f" {spec['lexical_weight']:.2f}, window {spec['window'] or 'default'}, rrf_k"
        f" {spec['rrf_k']:g}{', boosts ' + boosts if boosts else ''}"
    )


# ---- the corpora ----


def load_scifact(quick: bool) -> Corpus:
    data = load_dataset(scifact_dir())
    if quick:
        query_ids, _, doc_ids = choose(data, QUICK_QUERIES, 0, QUICK_DOCS, CHOOSE_SEED)
    else:
        query_ids, doc_ids = judged_query_ids(data), sorted(data.corpus)
    split = split_dev({q: data.queries[q] for q in query_ids})
    return Corpus(SCIFACT, data, split.train, split.dev, split.rule, doc_ids)


def load_shop() -> Corpus:
    data = generate_catalogue(CATALOGUE_SEED)
    split = split_dev({q: data.queries[q] for q in judged_query_ids(data)})
    docs = [d for d in sorted(data.corpus) if data.corpus[d].full_text.strip()]
    return Corpus(SHOP, data, split.train, split.dev, split.rule, docs)


def scifact_items(corpus: Corpus, settings: Settings) -> list[ItemInput]:
    """Parts cut as the worker cuts a text, each with its text and the base model's vector."""
    splitter = SentenceSplitter(settings)
    parts = {d: splitter.split(corpus.data.corpus[d].full_text) for d in corpus.doc_ids}
    parts = {d: p for d, p in parts.items() if p}
    encoder = SentenceTransformerEncoder(base_model_path(), batch_size=settings.encode_batch_size)
    vectors = base_part_vectors(
        parts, encoder, cache_path(settings, scifact_dir() / "corpus.jsonl", True)
    )
    return [
        {
            "object_id": d,
            "payload": {CORPUS_FIELD: SCIFACT},
            "parts": [
                {"part_id": str(i), "text": text, "vector": vectors[d][i].tolist()}
                for i, text in enumerate(parts[d])
            ],
        }
        for d in sorted(parts)
    ]


def shop_items(corpus: Corpus) -> list[ItemInput]:
    """Text items: the worker splits and encodes them."""
    return [
        {
            "object_id": d,
            "text": corpus.data.corpus[d].full_text,
            "payload": {CORPUS_FIELD: SHOP, "title": corpus.data.corpus[d].title},
        }
        for d in corpus.doc_ids
    ]


# ---- measuring and fitting through the API ----


def measure(client: Client, corpus: Corpus, ranking: ranking_pb2.RankingSpec | None) -> Scores:
    return search_quality(
        client, corpus.dev, corpus.data.qrels, filter=corpus.filter, ranking=ranking
    )


def line(scores: Scores) -> str:
    return ", ".join(f"{NAMES[m]} {scores[m]:.4f}" for m in METRICS)


def set_live(stub: ranking_pb2_grpc.RankingServiceStub, spec: ranking_pb2.RankingSpec) -> int:
    reply = stub.SetRankingSpec(ranking_pb2.SetRankingSpecRequest(spec=spec), timeout=30)
    return int(reply.settings.live.version)


def run_fit(client: Client, stub: ranking_pb2_grpc.RankingServiceStub, key: str) -> FitRun:
    started = time.perf_counter()
    reply = stub.StartRankingFit(
        ranking_pb2.StartRankingFitRequest(idempotency_key=key), timeout=60
    )
    task_id = reply.task.task_id
    print(f"ranking fit task {task_id}")
    task = follow(
        lambda t: get_task(client, t),
        task_id,
        timeout_s=FIT_TIMEOUT_S,
        poll_seconds=POLL_SECONDS,
        on_poll=ChangePrinter(),
    )
    if task.status != common_pb2.TASK_STATUS_DONE:
        raise RuntimeError(f"ranking fit task {task_id} ended {status_name(task)}: {task.error}")
    result = struct_to_dict(task.result, "result")
    return FitRun("", 0, result, time.perf_counter() - started)


def print_fit(result: Mapping[str, Any]) -> None:
    spec = result.get("spec")
    print(f"  learned spec: {describe(spec) if spec else 'none'} (version {result['version']})")
    print(f"  went live: {result['went_live']}; {result['note']}")
    for name, value in sorted(result["metrics"].items()):
        print(f"  {name}: {value:.4f}")


def print_versions(stub: ranking_pb2_grpc.RankingServiceStub) -> None:
    reply = stub.ListRankingSpecs(ranking_pb2.ListRankingSpecsRequest(), timeout=30)
    settings = stub.GetRankingSettings(ranking_pb2.GetRankingSettingsRequest(), timeout=30)
    print(f"ranking spec versions (live: {settings.settings.live.version or 'none'}):")
    for v in reply.versions:
        origin = ranking_pb2.RankingSpecOrigin.Name(v.origin).removeprefix("RANKING_SPEC_ORIGIN_")
        method = ranking_pb2.RankingMethod.Name(v.spec.method).removeprefix("RANKING_METHOD_")
        fusion = ranking_pb2.FusionMethod.Name(v.spec.fusion).removeprefix("FUSION_METHOD_")
        print(
            f"  v{v.version} {origin} deployable={v.deployable} {method} {fusion}"
            f" vector {v.spec.vector_weight:.2f} lexical {v.spec.lexical_weight:.2f}"
            f" window {v.spec.window}"
        )


def measure_learned(client: Client, corpora: Sequence[Corpus], fit: FitRun, use_live: bool) -> None:
    """Dev figures of the fit's learned spec: as the live spec (no ranking in the request) when
    ``use_live`` and it went live, else given explicitly."""
    spec = fit.result.get("spec")
    if spec is None:
        return
    live = use_live and bool(fit.result["went_live"])
    ranking = None if live else spec_from_result(spec)
    if use_live:
        probe = corpora[0]
        q = sorted(probe.dev)[0]
        response = search(client, probe.dev[q], limit=K, filter=probe.filter, timeout=60)
        fit.ranking_version = int(response.ranking_version)
        print(
            f"  a Search with no ranking now answers with ranking_version"
            f" {response.ranking_version}: {str(response.ranking).replace(chr(10), ' ')}"
        )
    fit.measured_as = "live spec (no ranking in the request)" if live else "given explicitly"
    for corpus in corpora:
        fit.dev[corpus.name] = measure(client, corpus, ranking)
        print(f"  {corpus.name} dev, learned ({fit.measured_as}): {line(fit.dev[corpus.name])}")


# ---- the report ----


def metric_rows(prefix: str, figures: Mapping[str, Scores]) -> list[Row]:
    base = figures[VECTOR]
    rows = []
    for name, scores in figures.items():
        rows += [Row(f"{prefix} {name}: {NAMES[m]}", scores[m], base[m], VECTOR) for m in METRICS]
        rows.append(
            Row(
                f"{prefix} {name}: {NAMES[NDCG]} change (%)",
                relative_change(scores[NDCG], base[NDCG]),
            )
        )
    return rows


def print_matrix(title: str, figures: Mapping[str, Scores]) -> None:
    base = figures[VECTOR][NDCG]
    width = max(len(n) for n in figures)
    print(f"\n{title}")
    print(
        f"  {'ranking':<{width}}  " + "  ".join(f"{NAMES[m]:>9}" for m in METRICS) + "  vs vector"
    )
    for name, scores in figures.items():
        cells = "  ".join(f"{scores[m]:9.4f}" for m in METRICS)
        print(f"  {name:<{width}}  {cells}  {relative_change(scores[NDCG], base):+8.1f}%")


def parse_variants(text: str) -> list[tuple[str, int]]:
    variants = []
    for item in filter(None, (t.strip() for t in text.split(","))):
        start, _, window = item.partition(":")
        if start not in START_SPECS:
            raise SystemExit(f"--variants: {start!r} is not one of {', '.join(START_SPECS)}")
        variants.append((start, int(window or 0)))
    return variants


# ---- the run ----


def main_run(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    phases: dict[str, float] = {}
    settings = Settings()
    scifact, shop = load_scifact(args.quick), load_shop()
    corpora = (scifact, shop)
    for c in corpora:
        print(
            f"{c.name}: {len(c.doc_ids)} docs, {len(c.train)} training / {len(c.dev)} dev queries"
            f" ({c.rule}; dev queries are never searched with a session)"
        )
    phase = time.perf_counter()
    items = scifact_items(scifact, settings)
    phases["encode scifact (or read the cache)"] = time.perf_counter() - phase
    users = [f"user-{i}" for i in range(args.users)]
    window = args.window
    figures: dict[str, dict[str, Scores]] = {c.name: {} for c in corpora}
    fits: list[FitRun] = []
    sweep: dict[str, Scores] = {}
    sims = {}
    with running_stack() as stack, Client(stack.grpc_address) as client:
        stub = ranking_pb2_grpc.RankingServiceStub(client.channel)
        phase = time.perf_counter()
        upsert_and_wait(client, items, batch=UPSERT_BATCH)
        upsert_and_wait(client, shop_items(shop), batch=UPSERT_BATCH)
        phases["upsert"] = time.perf_counter() - phase
        parts = sum(len(i["parts"]) for i in items if isinstance(i, dict))
        print(
            f"upserted {len(items)} scifact docs ({parts} parts, with vectors) and"
            f" {len(shop.doc_ids)} shop items (text) in {phases['upsert']:.0f} s"
        )

        phase = time.perf_counter()
        rankings = {
            VECTOR: spec_proto("vector"),
            LEXICAL: spec_proto("lexical"),
            WEIGHTED: spec_proto("hybrid", "weighted", window),
            RRF: spec_proto("hybrid", "rrf", window),
        }
        for corpus in corpora:
            for name, ranking in rankings.items():
                figures[corpus.name][name] = measure(client, corpus, ranking)
                print(f"{corpus.name} dev, {name}: {line(figures[corpus.name][name])}")
        if args.sweep:
            for share in SWEEP_SHARES:
                label = f"{share:.1f}"
                weights = spec_proto("hybrid", "weighted", window, round(1 - share, 2), share)
                sweep[label] = measure(client, scifact, weights)
                print(f"scifact dev, weighted lexical share {label}: {line(sweep[label])}")
        phases["measure before"] = time.perf_counter() - phase

        phase = time.perf_counter()
        for corpus in corpora:
            sims[corpus.name] = simulate_clicks(
                client,
                corpus.train,
                corpus.data.qrels,
                users,
                seed=args.seed,
                limit=K,
                filter=corpus.filter,
                model=CLICK_MODELS[args.click_model],
            )
            sim = sims[corpus.name]
            clicked = sum(1 for n in sim.clicks_per_query.values() if n)
            print(
                f"{corpus.name}: {len(sim.session_ids)} sessions ({len(users)} users x"
                f" {len(corpus.train)} training queries, live ranking vector, {args.click_model}"
                f" clicks), {sim.events_sent}"
                f" clicks sent, {sim.accepted_count} accepted; {clicked} queries clicked"
            )
        phases["simulate"] = time.perf_counter() - phase

        phase = time.perf_counter()
        if args.start != "vector" or window:
            version = set_live(stub, start_spec(args.start, window))
            print(f"the fit starts from {args.start} (window {window or 'default'}): v{version}")
        fit = run_fit(client, stub, "bench-quality-hybrid-0")
        fit.start, fit.window = args.start, window
        fits.append(fit)
        print_fit(fit.result)
        print_versions(stub)
        measure_learned(client, corpora, fit, use_live=True)
        for corpus in corpora:
            if corpus.name in fit.dev:
                figures[corpus.name][LEARNED] = fit.dev[corpus.name]
        phases["fit and measure"] = time.perf_counter() - phase

        for i, (start, win) in enumerate(parse_variants(args.variants), start=1):
            phase = time.perf_counter()
            version = set_live(stub, start_spec(start, win))
            print(f"\nvariant {i}: the fit starts from {start}:{win or 'default'}, v{version}")
            variant = run_fit(client, stub, f"bench-quality-hybrid-{i}")
            variant.start, variant.window = start, win
            print_fit(variant.result)
            measure_learned(client, corpora, variant, use_live=False)
            fits.append(variant)
            phases[f"variant {start}:{win}"] = time.perf_counter() - phase
    phases["total"] = time.perf_counter() - started

    for corpus in corpora:
        print_matrix(f"{corpus.name} dev ({len(corpus.dev)} queries)", figures[corpus.name])
    if sweep:
        print_matrix(
            "scifact dev, weighted fusion by lexical share (oracle: chosen on dev)",
            {VECTOR: figures[SCIFACT][VECTOR], **{f"share {s}": v for s, v in sweep.items()}},
        )
    if len(fits) > 1:
        print_fits(fits, figures)
    main_fit = fits[0].result
    rows = metric_rows("scifact dev", figures[SCIFACT]) + metric_rows("shop dev", figures[SHOP])
    metrics = main_fit["metrics"]
    if "heldout.ndcg@10" in metrics:
        rows.append(
            Row(
                "fit held-out sessions NDCG@10",
                metrics["heldout.ndcg@10"],
                metrics["heldout.live.ndcg@10"],
                "live spec",
            )
        )
    for name, sim in sims.items():
        rows.append(Row(f"{name} sessions", len(sim.session_ids)))
        rows.append(Row(f"{name} clicks accepted", sim.accepted_count, sim.events_sent, "sent"))
    rows += [Row(f"time: {p} (s)", s) for p, s in phases.items()]
    learned = main_fit.get("spec")
    report(
        f"hybrid ranking: scifact {len(scifact.doc_ids)} docs, {len(scifact.train)} training /"
        f" {len(scifact.dev)} dev claims; shop {len(shop.doc_ids)} items, {len(shop.train)} /"
        f" {len(shop.dev)} queries; {len(users)} users; learned"
        f" {describe(learned) if learned else '-'}, went live {main_fit['went_live']}",
        rows,
        args.json,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "sizes": {
                c.name: {"docs": len(c.doc_ids), "train": len(c.train), "dev": len(c.dev)}
                for c in corpora
            },
            "dev": figures,
            "sweep": sweep,
            "fits": [
                {
                    "start": f.start,
                    "window": f.window,
                    "result": f.result,
                    "seconds": f.seconds,
                    "dev": f.dev,
                    "measured_as": f.measured_as,
                    "ranking_version": f.ranking_version,
                }
                for f in fits
            ],
            "phases_seconds": phases,
        },
    )


def print_fits(fits: Sequence[FitRun], figures: Mapping[str, Mapping[str, Scores]]) -> None:
    print("\nfits (dev NDCG@10 of each learned spec; change vs vector)")
    for f in fits:
        spec = f.result.get("spec")
        m = f.result["metrics"]
        cells = "  ".join(
            f"{name} {f.dev[name][NDCG]:.4f}"
            f" ({relative_change(f.dev[name][NDCG], by[VECTOR][NDCG]):+.1f}%)"
            for name, by in figures.items()
            if name in f.dev
        )
        print(
            f"  start {f.start}:{f.window or 'default'} -> {describe(spec) if spec else '-'};"
            f" held-out {m.get('heldout.ndcg@10', float('nan')):.4f} vs live"
            f" {m.get('heldout.live.ndcg@10', float('nan')):.4f}, live {f.result['went_live']};"
            f" {cells}"
        )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "hybrid ranking quality")
    parser.add_argument("--users", type=int, default=3, help="simulated users who click")
    parser.add_argument("--seed", type=int, default=0, help="seed of the simulated clicks")
    parser.add_argument(
        "--window", type=int, default=0, help="hybrid window (0 = the server's default, 50)"
    )
    parser.add_argument(
        "--start",
        choices=START_SPECS,
        default="vector",
        help="the live spec the fit starts from (vector: none is set unless --window is)",
    )
    parser.add_argument(
        "--variants", default="", help="further fits, e.g. 'vector:100,rrf:50' (start:window)"
    )
    parser.add_argument(
        "--click-model",
        choices=sorted(CLICK_MODELS),
        default="cascade",
        help="cascade: CascadeClickModel() defaults; examine-all: no position bias (diagnostic)",
    )
    parser.add_argument(
        "--sweep", action="store_true", help="also measure weighted fusion over lexical shares"
    )
    main_run(parser.parse_args())


if __name__ == "__main__":
    main()
