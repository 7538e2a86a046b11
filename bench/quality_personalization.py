"""Ranking quality for users who click (before / after improvement) and for users who never click.

    .venv/bin/python -m bench.quality_personalization [--quick] [--seed N] [--json out.json]

On SciFact (train judgements): picks ``--queries`` judged claims at random (``--seed``), upserts
their judged abstracts plus random filler abstracts up to ``--docs`` through UpsertItems (text:
the worker splits and encodes with all-MiniLM-L6-v2, about 5-8 abstracts/s on a 2-core machine,
so the default 1500 documents take 3-5 minutes and the whole default run stays under ~20 minutes;
--quick uses 300 documents and 30 queries), then:

* BEFORE: NDCG@10, Recall@10, MRR@10 of every user's rankings (``rankings_for`` with user_id);
* the users "clicker-0..k" search each query with a session and click what ``ClickSimulator``
  (``CascadeClickModel()`` defaults, seeded) draws from the judgements (Search create_session +
  PushEvents); their sessions are queued with ``UseSessionsForImprovement`` (<= 1000 ids per
  call) and every improvement task is waited for;
* AFTER: the same measures; the baseline of each figure is the same users' BEFORE figure.

The same queries are used for clicking and for measuring: this measures personalisation (a user
searching again what they searched and clicked before), not generalisation to new queries. The
"idle-0..k" users never click, so their rankings must not change at all.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping, Sequence

from bench.common import Row, base_parser, report, running_stack
from embedding_studio.client import Client
from es_cli.click_simulator import ClickSimulator, rankings_for
from es_cli.lifecycle import METRICS, NAMES, K, improve, judged_query_ids, upsert_and_wait
from es_core.beir import Dataset, load_dataset, scifact_dir
from es_core.evaluation.click_model import CascadeClickModel
from es_core.evaluation.metrics import evaluate_rankings

Rankings = dict[str, list[str]]


def choose(data: Dataset, n_queries: int, n_docs: int, seed: int) -> tuple[list[str], list[str]]:
    """Random judged queries and the documents to load: their judged abstracts, then filler."""
    rng = random.Random(seed)
    judged = judged_query_ids(data)
    rng.shuffle(judged)
    queries: list[str] = []
    docs: set[str] = set()
    for query_id in judged:
        needed = {d for d in data.qrels[query_id] if d in data.corpus}
        if len(queries) == n_queries:
            break
        if needed and needed == set(data.qrels[query_id]) and len(docs | needed) <= n_docs:
            queries.append(query_id)
            docs |= needed
    filler = sorted(set(data.corpus) - docs)
    rng.shuffle(filler)
    return sorted(queries), sorted(docs) + filler[: max(0, n_docs - len(docs))]


def upsert(client: Client, data: Dataset, doc_ids: Sequence[str], batch: int) -> float:
    """Every document as text through UpsertItems, every task waited for; returns seconds."""
    items = [{"object_id": d, "text": data.corpus[d].full_text} for d in doc_ids]
    return upsert_and_wait(client, items, batch=batch)


def measure(
    client: Client,
    users: Sequence[str],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
) -> tuple[dict[str, Rankings], dict[str, dict[str, float]]]:
    rankings = {u: rankings_for(client, queries, user_id=u, limit=K, timeout=60) for u in users}
    return rankings, {u: evaluate_rankings(rankings[u], qrels, K) for u in users}


def mean(per_user: Mapping[str, Mapping[str, float]], metric: str) -> float:
    return sum(m[metric] for m in per_user.values()) / len(per_user)


def main_run(args: argparse.Namespace) -> None:
    data = load_dataset(scifact_dir())
    query_ids, doc_ids = choose(data, args.queries, args.docs, args.seed)
    queries = {q: data.queries[q] for q in query_ids}
    qrels = {q: data.qrels[q] for q in query_ids}
    clickers = [f"clicker-{i}" for i in range(args.clickers)]
    idle = [f"idle-{i}" for i in range(args.idle)]
    print(
        f"SciFact: {len(queries)} judged queries ({sum(len(r) for r in qrels.values())} judged"
        f" abstracts, all loaded), {len(doc_ids)} documents; users {clickers + idle}"
    )
    print(
        "NOTE: the same queries are used for clicking and for measuring: this measures"
        " personalisation, not generalisation to unseen queries."
    )
    with running_stack() as stack, Client(stack.grpc_address) as client:
        seconds = upsert(client, data, doc_ids, args.batch)
        print(
            f"upserted {len(doc_ids)} abstracts (text) in {seconds:.0f} s"
            f" = {len(doc_ids) / seconds:.1f} docs/s"
        )

        before_rank, before = measure(client, clickers + idle, queries, qrels)
        simulator = ClickSimulator(client, CascadeClickModel(), args.seed, timeout=60)
        started = time.perf_counter()
        sim = simulator.run(queries, qrels, clickers, limit=K)
        print(
            f"simulated {len(sim.session_ids)} sessions in {time.perf_counter() - started:.1f} s:"
            f" {sim.events_sent} clicks sent, {sim.accepted_count} accepted,"
            f" {sim.duplicate_count} duplicates"
        )
        queued, improved, seconds = improve(client, sim.session_ids)
        print(f"improvement: {queued} sessions queued, {improved} improved in {seconds:.1f} s")
        after_rank, after = measure(client, clickers + idle, queries, qrels)

    for user in clickers + idle:
        print(
            f"  {user}: "
            + ", ".join(
                f"{NAMES[m]} {before[user][m]:.4f} -> {after[user][m]:.4f}" for m in METRICS
            )
        )
    rows: list[Row] = []
    for group, users in (("clickers", clickers), ("idle", idle)):
        b = {u: before[u] for u in users}
        a = {u: after[u] for u in users}
        for m in METRICS:
            rows.append(Row(f"{group}: {NAMES[m]} after", mean(a, m), mean(b, m), "before"))
            change = mean(a, m) / mean(b, m) - 1 if mean(b, m) else float("nan")
            print(
                f"{group} {NAMES[m]}: before {mean(b, m):.4f}, after {mean(a, m):.4f}"
                f" ({change:+.1%})"
            )
    idle_diff = max(abs(after[u][m] - before[u][m]) for u in idle for m in METRICS)
    idle_changed = sum(after_rank[u][q] != before_rank[u][q] for u in idle for q in query_ids)
    clicker_changed = sum(
        after_rank[u][q] != before_rank[u][q] for u in clickers for q in query_ids
    )
    idle_ok = idle_diff == 0 and idle_changed == 0
    print(
        f"idle users: max |after - before| over {len(METRICS)} metrics = {idle_diff:.6f},"
        f" rankings changed {idle_changed}/{len(idle) * len(query_ids)}:"
        f" {'OK' if idle_ok else 'CHANGED'}"
    )
    print(f"clickers: rankings changed {clicker_changed}/{len(clickers) * len(query_ids)}")
    rows += [
        Row("idle: max |after - before| (metrics)", idle_diff),
        Row("idle: rankings changed", idle_changed),
        Row("clickers: rankings changed", clicker_changed),
        Row("clicks accepted", sim.accepted_count, sim.events_sent, "clicks sent"),
        Row("sessions improved", improved, len(sim.session_ids), "sessions simulated"),
    ]
    report(
        f"personalisation on SciFact: {len(queries)} queries (same for clicking and measuring),"
        f" {len(doc_ids)} docs, {len(clickers)} clickers, {len(idle)} idle, seed {args.seed};"
        f" idle {'OK' if idle_ok else 'CHANGED'}",
        rows,
        args.json,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "same_queries_for_clicks_and_measure": True,
            "idle_ok": idle_ok,
            "per_user": {u: {"before": before[u], "after": after[u]} for u in clickers + idle},
        },
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "personalisation quality")
    parser.add_argument("--docs", type=int, help="abstracts to load (default 1500; quick 300)")
    parser.add_argument("--queries", type=int, help="judged queries (default 100; quick 30)")
    parser.add_argument("--clickers", type=int, default=3, help="users who search and click")
    parser.add_argument("--idle", type=int, default=2, help="users who never click")
    parser.add_argument("--batch", type=int, default=100, help="items per UpsertItems request")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.docs is None:
        args.docs = 300 if args.quick else 1500
    if args.queries is None:
        args.queries = 30 if args.quick else 100
    main_run(args)


if __name__ == "__main__":
    main()
