"""Learning a collection's fusion weights from its clicks, through a gate.

Sessions become one example per query (clicked items weighted by their strongest event,
repeated queries merged, as fine-tuning builds them) and are split by query into train and
held-out. For each query the candidate pool is built the way search builds it (each
retriever's top ``window``, from the session's query vector and its words), and every shown
item is scored on both sides once. A setting (the lexical share of the weights, then each
declared signal's boost weight, by coordinate ascent over a grid) is judged by re-ranking
what each query's sessions showed under it: NDCG@10 of the clicks, each click's gain divided
by the chance its rank was examined (``ranking_fit_position_bias``) and the ideal taken from
the raw click weights, so the weighting counts even where a query has one click (the figure is
then an estimate that may pass 1); a shown item outside the pool ranks last, exactly as it
would be missing from the results. The best
training setting goes live only if its held-out NDCG@10 beats the live spec's by
``ranking_gate_margin``; a refused one is kept as a version that never went live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt

from es_core.clickstream.store import collection_sessions
from es_core.config import Settings
from es_core.domain import Collection, Progress
from es_core.evaluation.click_gains import dcg, debiased_gains, ndcg_of_clicks
from es_core.fine_tuning.examples import Example, build_examples, normalize_query, split_by_query
from es_core.ranking import store
from es_core.ranking.fusion import Candidate, fused_scores
from es_core.ranking.ranked_search import RankedQuery, hybrid_pool
from es_core.ranking.spec import Boost, RankingSpec, declared_signals, live_spec, with_window
from es_core.storage.catalog import get_collection

K = 10
LEXICAL_SHARES = tuple(round(0.05 * i, 2) for i in range(21))
BOOST_WEIGHTS = (0.0, 0.05, 0.1, 0.2, 0.4)
DEFAULT_HALF_LIFE_SECONDS = 30 * 24 * 3600.0


@dataclass
class QueryCase:
    """One query's pool and what its sessions showed and clicked."""

    query: str
    pool: list[Candidate]
    shown: list[str]
    gains: dict[str, float]
    #: DCG of the clicks in their best order, from their raw weights (0: from ``gains``).
    ideal: float = 0.0


@dataclass(frozen=True)
class FitOutcome:
    version: int | None
    live: bool
    spec: RankingSpec | None
    metrics: dict[str, float]
    note: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "went_live": self.live,
            "spec": None if self.spec is None else self.spec.to_json(),
            "metrics": self.metrics,
            "note": self.note,
        }


def rerank_shown(case: QueryCase, spec: RankingSpec, now: float) -> list[str]:
    """The shown items in the order ``spec`` ranks them; those outside the pool last."""
    if spec.method == "vector":
        by_distance = {c.object_id: c.distance for c in case.pool}
        return sorted(case.shown, key=lambda o: (o not in by_distance, by_distance.get(o, 0.0), o))
    scores = dict(
        zip((c.object_id for c in case.pool), fused_scores(case.pool, spec, now), strict=True)
    )
    return sorted(case.shown, key=lambda o: (o not in scores, -scores.get(o, 0.0), o))


def mean_ndcg(cases: Sequence[QueryCase], spec: RankingSpec, now: float) -> float:
    if not cases:
        return float("nan")
    return float(
        np.mean([ndcg_of_clicks(rerank_shown(c, spec, now), c.gains, ideal=c.ideal) for c in cases])
    )


def search_settings(
    base: RankingSpec, collection: Collection, cases: Sequence[QueryCase], now: float
) -> tuple[RankingSpec, float]:
    """The best training setting: the lexical share first, then each signal's boost weight,
    then the share again with those boosts."""
    fusion = base.fusion if base.method == "hybrid" else "weighted"
    boosts = {b.field: b for b in base.boosts} if base.method == "hybrid" else {}
    for signal in declared_signals(collection).values():
        if signal.field not in boosts:
            function = "log" if signal.kind == "number" else "decay"
            half_life = 0.0 if signal.kind == "number" else DEFAULT_HALF_LIFE_SECONDS
            boosts[signal.field] = Boost(signal.field, function, 0.0, half_life)  # type: ignore[arg-type]
    spec = RankingSpec(
        method="hybrid",
        fusion=fusion,
        boosts=tuple(boosts.values()),
        window=base.window,
        rrf_k=base.rrf_k,
    )

    def with_share(s: RankingSpec, share: float) -> RankingSpec:
        return replace(s, vector_weight=round(1.0 - share, 2), lexical_weight=share)

    def best_share(s: RankingSpec) -> tuple[RankingSpec, float]:
        scored = [
            (mean_ndcg(cases, with_share(s, a), now), -abs(a - 0.5), a) for a in LEXICAL_SHARES
        ]
        value, _, share = max(scored)
        return with_share(s, share), value

    spec, value = best_share(spec)
    for i in range(len(spec.boosts)):
        options = []
        for weight in BOOST_WEIGHTS:
            boosts_i = list(spec.boosts)
            boosts_i[i] = replace(boosts_i[i], weight=weight)
            candidate = replace(spec, boosts=tuple(boosts_i))
            options.append((mean_ndcg(cases, candidate, now), -weight, candidate))
        value, _, spec = max(options, key=lambda o: (o[0], o[1]))
    if spec.boosts:
        spec, value = best_share(spec)
    # A boost of weight 0 is no boost: keep the spec to what ranks.
    spec = replace(spec, boosts=tuple(b for b in spec.boosts if b.weight > 0))
    return spec, value


def gate(
    best: RankingSpec,
    live: RankingSpec,
    heldout_cases: Sequence[QueryCase],
    margin: float,
    now: float,
) -> tuple[bool, dict[str, float]]:
    """Whether ``best`` may go live: its held-out NDCG@10 must beat the live spec's by more
    than ``margin`` (no held-out case: refused). Returns the verdict and both figures."""
    metrics = {
        "heldout.ndcg@10": mean_ndcg(heldout_cases, best, now),
        "heldout.live.ndcg@10": mean_ndcg(heldout_cases, live, now),
    }
    gain = metrics["heldout.ndcg@10"] - metrics["heldout.live.ndcg@10"]
    return bool(gain > margin), metrics


async def build_cases(
    pool: asyncpg.Pool,
    collection: Collection,
    examples: Sequence[Example],
    vectors: dict[str, npt.NDArray[np.float32]],
    spec: RankingSpec,
    settings: Settings,
) -> list[QueryCase]:
    """Each query's pool as a hybrid search under ``spec``'s window builds it (anonymous,
    unfiltered), from the query vector its sessions recorded."""
    cases = []
    for example in examples:
        vector = vectors.get(example.key)
        if vector is None:
            continue  # no session of this query carried its vector
        query = RankedQuery(spec=spec, words=example.query, vector=vector)
        candidates = await hybrid_pool(pool, collection, query, settings)
        cases.append(
            QueryCase(
                example.query,
                candidates,
                list(example.shown),
                debiased_gains(example, settings.ranking_fit_position_bias),
                ideal=dcg(sorted(example.positives.values(), reverse=True)),
            )
        )
    return cases


async def fit_ranking(
    pool: asyncpg.Pool,
    settings: Settings,
    collection_id: str,
    task_id: str,
    progress: Progress,
    now: float,
) -> FitOutcome:
    async with pool.acquire() as conn:
        collection = await get_collection(conn, collection_id)
        sessions = await collection_sessions(conn, collection_id, settings.ranking_fit_max_sessions)
    examples, report = build_examples([s for s, _ in sessions], settings.event_weights)
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    for session, vector in sessions:
        if vector is not None and session.query_text.strip():
            vectors.setdefault(normalize_query(session.query_text.strip()), vector)
    if len(examples) < settings.ranking_fit_min_sessions:
        note = (
            f"{len(examples)} queries with clicks on collection {collection_id!r} (from"
            f" {report.sessions} sessions); ES_RANKING_FIT_MIN_SESSIONS is"
            f" {settings.ranking_fit_min_sessions}: nothing learned"
        )
        return FitOutcome(None, False, None, {"queries": float(len(examples))}, note)
    train, heldout = split_by_query(
        examples, settings.ranking_fit_test_fraction, settings.fine_tuning_seed
    )
    live = live_spec(collection)
    pooled = with_window(live, settings)
    await progress(0.1, f"scoring candidates of {len(examples)} queries")
    train_cases = await build_cases(pool, collection, train, vectors, pooled, settings)
    await progress(0.6, f"scoring candidates of {len(heldout)} held-out queries")
    heldout_cases = await build_cases(pool, collection, heldout, vectors, pooled, settings)
    if not train_cases or not heldout_cases:
        # Only sessions a search recorded carry their query vector (RegisterSession's do not):
        # without a pool on both sides there is nothing to learn from nor to judge by.
        note = (
            f"{len(train_cases)} training and {len(heldout_cases)} held-out queries of"
            f" {len(examples)} with clicks on collection {collection_id!r} carry a query vector"
            " (sessions recorded by Search with create_session): nothing learned"
        )
        counts = {
            "queries": float(len(examples)),
            "train.queries": float(len(train_cases)),
            "heldout.queries": float(len(heldout_cases)),
        }
        return FitOutcome(None, False, None, counts, note)
    await progress(0.8, "searching weights")
    best, train_value = search_settings(
        replace(live, window=live.window), collection, train_cases, now
    )
    passed, heldout_metrics = gate(best, live, heldout_cases, settings.ranking_gate_margin, now)
    metrics = {
        "train.queries": float(len(train_cases)),
        "heldout.queries": float(len(heldout_cases)),
        "train.ndcg@10": train_value,
        "train.live.ndcg@10": mean_ndcg(train_cases, live, now),
        **heldout_metrics,
    }
    verdict = (
        f"held-out NDCG@10 {metrics['heldout.ndcg@10']:.4f} against the live spec's"
        f" {metrics['heldout.live.ndcg@10']:.4f} on {len(heldout_cases)} queries:"
        f" {'passed' if passed else 'refused'}"
        f" (ES_RANKING_GATE_MARGIN {settings.ranking_gate_margin})"
    )
    async with pool.acquire() as conn, conn.transaction():
        version = await store.add_version(
            conn,
            collection_id,
            best,
            "learned",
            go_live=passed,
            metrics=metrics,
            task_id=task_id,
            note=verdict,
        )
    return FitOutcome(version, passed, best, metrics, verdict)
