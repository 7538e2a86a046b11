"""Personalisation on SciFact: the repeat-query effect, the cost of noise clicks, the cross-query
effect, and users who never click, each against the same users' rankings before improvement.

    .venv/bin/python -m bench.quality_personalization [--quick] [--seed N] [--json out.json]

Picks ``--queries`` judged claims at random (``--seed``) plus ``--cross`` pairs of claims that
share a relevant abstract (the first of a pair joins the clicked queries, the second is a
"cross" query nobody clicks), upserts their judged abstracts plus random filler up to ``--docs``
through UpsertItems (text, encoded by the worker with all-MiniLM-L6-v2; about 5-8 abstracts/s
on 2 cores), then:

* BEFORE: every user's ranking of every query (``rankings_for`` with user_id);
* two groups of clickers search every clicked query once with a session and click: "cascade-i"
  what ``CascadeClickModel()`` (defaults: position-biased, 5 % noise clicks on examined
  irrelevant results) draws, "clean-i" every relevant result shown and nothing else; sessions
  go through UseSessionsForImprovement and every improvement task is waited for;
* AFTER: the same rankings again. Every figure's baseline is the same users' BEFORE figure.

Printed per clicker group: the average over all clicked queries (what the seed's bench printed);
the repeat-query effect (sessions with a relevant click: a clicked relevant result at rank 1
when searched again; the same on the sessions where it was not at rank 1 already; NDCG@10 of
the queries with a relevant click); noise clicks (sessions with a click on an irrelevant result
whose query lost a relevant result from the top 10); the cross-query effect (NDCG@10 of the
cross queries); and the targets of issue 11. The "idle-i" users never click: none of their
rankings may change.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping, Sequence

from bench.common import Row, base_parser, report, running_stack
from bench.personalization_measures import (
    Pair,
    Session,
    changed_rankings,
    clicked_relevant_on_top,
    mean_ndcg,
    noise_clicks,
    noise_push_outs,
    relevant_clicks,
)
from embedding_studio.client import Client
from es_core.config import Settings
from es_core.evaluation.click_model import CascadeClickModel
from es_harness.beir import Dataset, load_dataset, scifact_dir
from es_harness.click_simulator import ClickSimulator, rankings_for, session_rng
from es_harness.lifecycle import K, improve, judged_query_ids, upsert_and_wait

Rankings = dict[Pair, list[str]]

#: Clicks every relevant result shown (all examined, relevant always clicked, never stops) and
#: nothing else.
CLEAN = CascadeClickModel(eta=0.0, click_probability={0: 0.0, 1: 1.0}, stop_after_click=0.0)
NOISY = CascadeClickModel()
RANK1_TARGET = 0.90
PUSH_OUT_TARGET = 0.02


def _complete(data: Dataset, query_id: str) -> set[str] | None:
    """The query's judged abstracts if all are in the corpus, else None."""
    needed = {d for d in data.qrels[query_id] if d in data.corpus}
    return needed if needed and needed == set(data.qrels[query_id]) else None


def choose(
    data: Dataset, n_queries: int, n_cross: int, n_docs: int, seed: int
) -> tuple[list[str], list[str], list[str]]:
    """(clicked queries, cross queries, documents to load). Cross pairs first: (a, b) share a
    relevant abstract, a is clicked, b only measured; then random judged queries; the documents
    are every chosen query's judged abstracts, then random filler."""
    rng = random.Random(seed)
    judged = judged_query_ids(data)
    rng.shuffle(judged)
    clicked: list[str] = []
    cross: list[str] = []
    docs: set[str] = set()
    by_doc: dict[str, list[str]] = {}
    for query_id in judged:
        for doc in data.qrels[query_id]:
            by_doc.setdefault(doc, []).append(query_id)

    def unchosen(query_id: str) -> set[str] | None:
        """The judged abstracts of a query not chosen yet whose judged abstracts are all in
        the corpus; else None."""
        if query_id in clicked or query_id in cross:
            return None
        return _complete(data, query_id)

    for query_id in judged:
        if len(cross) == n_cross:
            break
        if (needed := unchosen(query_id)) is None:
            continue
        partners = [
            q
            for d in sorted(needed)
            for q in by_doc[d]
            if q != query_id and q not in clicked and q not in cross
        ]
        for partner in partners:
            more = _complete(data, partner)
            if more is not None and len(docs | needed | more) <= n_docs:
                clicked.append(query_id)
                cross.append(partner)
                docs |= needed | more
                break
    for query_id in judged:
        if len(clicked) == n_queries + len(cross):
            break
        if (needed := unchosen(query_id)) is None:
            continue
        if len(docs | needed) <= n_docs:
            clicked.append(query_id)
            docs |= needed
    filler = sorted(set(data.corpus) - docs)
    rng.shuffle(filler)
    return sorted(clicked), sorted(cross), sorted(docs) + filler[: max(0, n_docs - len(docs))]


def upsert(client: Client, data: Dataset, doc_ids: Sequence[str], batch: int) -> float:
    """Every document as text through UpsertItems, every task waited for; returns seconds."""
    items = [{"object_id": d, "text": data.corpus[d].full_text} for d in doc_ids]
    return upsert_and_wait(client, items, batch=batch)


def measure(client: Client, users: Sequence[str], queries: Mapping[str, str]) -> Rankings:
    rankings: Rankings = {}
    for user in users:
        for query_id, ranking in rankings_for(
            client, queries, user_id=user, limit=K, timeout=60
        ).items():
            rankings[(user, query_id)] = ranking
    return rankings


def simulate(
    client: Client,
    model: CascadeClickModel,
    users: Sequence[str],
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    seed: int,
) -> tuple[list[Session], list[str]]:
    """Search and click through the API; the clicks are drawn again here (the simulator's draws
    depend only on seed, user, query and page) to know which were relevant."""
    report_ = ClickSimulator(client, model, seed, timeout=60).run(queries, qrels, users, limit=K)
    sessions = []
    for (user, query_id), shown in sorted(report_.rankings.items()):
        ranks = model.simulate(shown, qrels[query_id], session_rng(seed, user, query_id))
        sessions.append(Session(user, query_id, shown, [shown[r] for r in ranks]))
    return sessions, report_.session_ids


def group_rows(
    name: str,
    sessions: Sequence[Session],
    cross_pairs: Sequence[Pair],
    before: Rankings,
    after: Rankings,
    qrels: Mapping[str, Mapping[str, int]],
) -> tuple[list[Row], dict[str, float]]:
    """The rows of one clicker group, and the figures its targets are checked on."""
    all_pairs = [(s.user_id, s.query_id) for s in sessions]
    relevant_pairs = [(s.user_id, s.query_id) for s in sessions if relevant_clicks(s, qrels)]
    on_top = (
        clicked_relevant_on_top(sessions, after, qrels),
        clicked_relevant_on_top(sessions, before, qrels),
    )
    moved = (
        clicked_relevant_on_top(sessions, after, qrels, only_if_not_on_top_before=True),
        clicked_relevant_on_top(sessions, before, qrels, only_if_not_on_top_before=True),
    )
    pushed_all, pushed_noisy = noise_push_outs(sessions, after, qrels, K)
    # The same count with no improvement at all is 0 by definition: before == before.
    clicks = sum(len(s.clicked) for s in sessions)
    noisy = sum(len(noise_clicks(s, qrels)) for s in sessions)
    print(
        f"{name}: {len(sessions)} sessions, {clicks} clicks ({noisy} noise), "
        f"{len(relevant_pairs)} sessions with a relevant click, "
        f"{sum(bool(noise_clicks(s, qrels)) for s in sessions)} with a noise click"
    )
    print(
        f"  clicked relevant at rank 1 on the repeated query: before {on_top[1]}, after {on_top[0]}"
    )
    print(f"    of those not at rank 1 before: after {moved[0]}")
    print(
        f"  noise clicks that pushed a relevant result out of the top {K}: {pushed_all} of all"
        f" sessions, {pushed_noisy} of sessions with a noise click"
    )
    ndcg = {
        "all": (mean_ndcg(all_pairs, after, qrels, K), mean_ndcg(all_pairs, before, qrels, K)),
        "clicked": (
            mean_ndcg(relevant_pairs, after, qrels, K),
            mean_ndcg(relevant_pairs, before, qrels, K),
        ),
        "cross": (
            mean_ndcg(cross_pairs, after, qrels, K),
            mean_ndcg(cross_pairs, before, qrels, K),
        ),
    }
    cross_changed = changed_rankings(cross_pairs, before, after)
    better = sum(
        mean_ndcg([p], after, qrels, K) > mean_ndcg([p], before, qrels, K) for p in cross_pairs
    )
    worse = sum(
        mean_ndcg([p], after, qrels, K) < mean_ndcg([p], before, qrels, K) for p in cross_pairs
    )
    print(
        f"  cross queries: NDCG@{K} {ndcg['cross'][1]:.4f} -> {ndcg['cross'][0]:.4f},"
        f" rankings changed {cross_changed}, better {better}, worse {worse}"
    )
    rows = [
        Row(f"{name}: NDCG@{K}, all clicked queries", *ndcg["all"], "before"),
        Row(f"{name}: NDCG@{K}, queries with a relevant click", *ndcg["clicked"], "before"),
        Row(
            f"{name}: clicked relevant at rank 1 (share)",
            on_top[0].value,
            on_top[1].value,
            "before",
        ),
        Row(f"{name}: ... of those not at rank 1 before", moved[0].value, moved[1].value, "before"),
        Row(f"{name}: noise push-outs / all sessions", pushed_all.value, 0.0, "before"),
        Row(f"{name}: noise push-outs / noisy sessions", pushed_noisy.value, 0.0, "before"),
        Row(f"{name}: NDCG@{K}, cross queries (not clicked)", *ndcg["cross"], "before"),
    ]
    return rows, {"rank1": on_top[0].value, "push_out": pushed_all.value}


def main_run(args: argparse.Namespace) -> None:
    data = load_dataset(scifact_dir())
    clicked_ids, cross_ids, doc_ids = choose(data, args.queries, args.cross, args.docs, args.seed)
    queries = {q: data.queries[q] for q in clicked_ids + cross_ids}
    clicked_queries = {q: data.queries[q] for q in clicked_ids}
    qrels = {q: data.qrels[q] for q in queries}
    cascade = [f"cascade-{i}" for i in range(args.clickers)]
    clean = [f"clean-{i}" for i in range(args.clickers)]
    idle = [f"idle-{i}" for i in range(args.idle)]
    users = cascade + clean + idle
    print(
        f"SciFact: {len(clicked_ids)} clicked queries, {len(cross_ids)} cross queries (each shares"
        f" a relevant abstract with a clicked one, never clicked), {len(doc_ids)} documents;"
        f" users {users}"
    )
    settings = Settings()  # what the stack's worker reads too (same ES_* environment)
    adjuster = (
        f"rate {settings.improvement_adjustment_rate}, iterations"
        f" {settings.improvement_num_iterations}, max_step {settings.improvement_max_step},"
        f" skip_floor {settings.improvement_skip_floor}"
    )
    print(f"adjuster: {adjuster}")
    with running_stack() as stack, Client(stack.grpc_address) as client:
        seconds = upsert(client, data, doc_ids, args.batch)
        print(
            f"upserted {len(doc_ids)} abstracts (text) in {seconds:.0f} s"
            f" = {len(doc_ids) / seconds:.1f} docs/s"
        )
        before = measure(client, users, queries)
        started = time.perf_counter()
        noisy_sessions, noisy_ids = simulate(
            client, NOISY, cascade, clicked_queries, qrels, args.seed
        )
        clean_sessions, clean_ids = simulate(
            client, CLEAN, clean, clicked_queries, qrels, args.seed
        )
        print(
            f"simulated {len(noisy_ids) + len(clean_ids)} sessions in"
            f" {time.perf_counter() - started:.1f} s"
        )
        queued, improved, seconds = improve(client, noisy_ids + clean_ids)
        print(f"improvement: {queued} sessions queued, {improved} improved in {seconds:.1f} s")
        after = measure(client, users, queries)

    rows: list[Row] = []
    figures: dict[str, dict[str, float]] = {}
    for name, group, sessions in (
        ("cascade", cascade, noisy_sessions),
        ("clean", clean, clean_sessions),
    ):
        cross_pairs = [(u, q) for u in group for q in cross_ids]
        group_figures_rows, figures[name] = group_rows(
            name, sessions, cross_pairs, before, after, qrels
        )
        rows += group_figures_rows
    idle_changed = changed_rankings([(u, q) for u in idle for q in queries], before, after)
    print(f"idle users: rankings changed {idle_changed}")
    rows.append(Row("idle: rankings changed", idle_changed.hits, 0, "must be"))
    targets = {
        f"cascade: clicked relevant at rank 1 >= {RANK1_TARGET:.0%}": figures["cascade"]["rank1"]
        >= RANK1_TARGET,
        f"cascade: noise push-outs < {PUSH_OUT_TARGET:.0%} of queries": figures["cascade"][
            "push_out"
        ]
        < PUSH_OUT_TARGET,
        "idle: zero changed rankings": idle_changed.hits == 0,
    }
    for target, met in targets.items():
        print(f"TARGET {target}: {'MET' if met else 'MISSED'}")
    report(
        f"personalisation on SciFact: {len(clicked_ids)} clicked + {len(cross_ids)} cross"
        f" queries, {len(doc_ids)} docs, {args.clickers} cascade + {args.clickers} clean"
        f" clickers, {len(idle)} idle, seed {args.seed}; adjuster: {adjuster}",
        rows,
        args.json,
        {
            "args": {k: str(v) for k, v in vars(args).items()},
            "adjuster": adjuster,
            "targets": targets,
            "figures": figures,
        },
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "personalisation quality")
    parser.add_argument("--docs", type=int, help="abstracts to load (default 1500; quick 300)")
    parser.add_argument(
        "--queries", type=int, help="random clicked queries (default 100; quick 30)"
    )
    parser.add_argument("--cross", type=int, help="cross-query pairs (default 40; quick 15)")
    parser.add_argument("--clickers", type=int, default=3, help="users per clicker group")
    parser.add_argument("--idle", type=int, default=2, help="users who never click")
    parser.add_argument("--batch", type=int, default=100, help="items per UpsertItems request")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.docs is None:
        args.docs = 300 if args.quick else 1500
    if args.queries is None:
        args.queries = 30 if args.quick else 100
    if args.cross is None:
        args.cross = 15 if args.quick else 40
    main_run(args)


if __name__ == "__main__":
    main()
