"""What personalisation did for one group of users: pure functions over rankings and clicks.

``bench.quality_personalization`` collects, per (user, query), the ranking before improvement
(the page the session showed), the clicks the click model drew on it and the ranking after; the
functions here turn that into the figures of issue 11: the repeat-query effect (is a clicked
relevant result at rank 1 when the user searches again), the cost of noise clicks (clicks on
irrelevant results: did a relevant result drop out of the top k), and the cross-query effect (a
user's queries they did not click, that share a relevant result with one they did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from es_core.evaluation.metrics import ndcg_at_k

Pair = tuple[str, str]
"""(user_id, query_id)."""


@dataclass(frozen=True)
class Session:
    """One user's search for one query: what was shown (before) and what they clicked."""

    user_id: str
    query_id: str
    shown: list[str]
    clicked: list[str]


@dataclass(frozen=True)
class Share:
    """``hits`` of ``total`` (a share that knows its sample size)."""

    hits: int
    total: int

    @property
    def value(self) -> float:
        return self.hits / self.total if self.total else float("nan")

    def __str__(self) -> str:
        return f"{self.hits}/{self.total} = {self.value:.1%}"


def relevant_clicks(session: Session, qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
    grades = qrels.get(session.query_id, {})
    return [o for o in session.clicked if grades.get(o, 0) > 0]


def noise_clicks(session: Session, qrels: Mapping[str, Mapping[str, int]]) -> list[str]:
    grades = qrels.get(session.query_id, {})
    return [o for o in session.clicked if grades.get(o, 0) <= 0]


def clicked_relevant_on_top(
    sessions: Sequence[Session],
    rankings: Mapping[Pair, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    only_if_not_on_top_before: bool = False,
) -> Share:
    """Of the sessions with a relevant click: those where ``rankings`` puts one of the clicked
    relevant results at rank 1 (optionally only sessions where the shown page did not)."""
    hits = total = 0
    for s in sessions:
        clicked = set(relevant_clicks(s, qrels))
        if not clicked or (only_if_not_on_top_before and s.shown[:1] and s.shown[0] in clicked):
            continue
        total += 1
        ranking = rankings[(s.user_id, s.query_id)]
        hits += bool(ranking) and ranking[0] in clicked
    return Share(hits, total)


def mean_ndcg(
    pairs: Sequence[Pair],
    rankings: Mapping[Pair, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> float:
    """Mean NDCG@k of the rankings of these (user, query) pairs (nan when there are none)."""
    if not pairs:
        return float("nan")
    return sum(ndcg_at_k(rankings[p], qrels.get(p[1], {}), k) for p in pairs) / len(pairs)


def relevant_pushed_out(
    before: Sequence[str], after: Sequence[str], relevance: Mapping[str, int], k: int
) -> bool:
    """Whether a relevant result in the top k before is missing from the top k after."""
    now = set(after[:k])
    return any(relevance.get(o, 0) > 0 and o not in now for o in before[:k])


def noise_push_outs(
    sessions: Sequence[Session],
    after: Mapping[Pair, Sequence[str]],
    qrels: Mapping[str, Mapping[str, int]],
    k: int,
) -> tuple[Share, Share]:
    """Sessions with a noise click whose query lost a relevant result from the top k: as a share
    of all sessions (the target's figure) and of the sessions with a noise click."""
    noisy = [s for s in sessions if noise_clicks(s, qrels)]
    pushed = sum(
        relevant_pushed_out(s.shown, after[(s.user_id, s.query_id)], qrels.get(s.query_id, {}), k)
        for s in noisy
    )
    return Share(pushed, len(sessions)), Share(pushed, len(noisy))


def changed_rankings(
    pairs: Sequence[Pair],
    before: Mapping[Pair, Sequence[str]],
    after: Mapping[Pair, Sequence[str]],
) -> Share:
    """Pairs whose ranking is not exactly the same after."""
    return Share(sum(list(before[p]) != list(after[p]) for p in pairs), len(pairs))
