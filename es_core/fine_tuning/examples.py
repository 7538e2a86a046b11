"""Sessions into training examples: a query, what was clicked, and what was passed over.

Reading of a session (a cascade: people read from the top and stop after what they wanted):
- positives are the objects with an event whose type has a weight (``ES_EVENT_WEIGHTS``); an
  object's weight in one session is its strongest event's weight (a click then a purchase is 3,
  not 4);
- hard negatives are the results shown above the deepest positive and not positive;
- sessions marked irrelevant, sessions without a query text and sessions without a positive give
  no example (they are counted in the report);
- sessions with the same query (case and spacing aside) merge into one example: weights add up,
  and an object positive in any of them is never a negative of the query.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from es_core.clickstream.model import Session

MAX_GRADE = 3


@dataclass(frozen=True)
class Example:
    """One query with its clicked items (weighted) and the items shown but passed over."""

    query: str
    positives: dict[str, float]
    negatives: tuple[str, ...] = ()
    # Everything shown for this query, in first-shown order (the evaluation pool draws on it).
    shown: tuple[str, ...] = ()
    session_ids: tuple[str, ...] = ()
    # Never-clicked items nearest to the query in the whole collection (``mining``), nearest first.
    mined: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return normalize_query(self.query)

    def grades(self) -> dict[str, int]:
        """Positives as graded judgements (1..3) for NDCG: the weight rounded, at least 1."""
        return {o: max(1, min(MAX_GRADE, round(w))) for o, w in self.positives.items()}


@dataclass
class ExampleReport:
    sessions: int = 0
    irrelevant: int = 0
    without_query: int = 0
    without_positives: int = 0
    merged: int = 0
    # Examples dropped because none of their positives is still in the collection.
    without_items: int = 0
    examples: int = 0
    positives: int = 0
    negatives: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def normalize_query(text: str) -> str:
    return " ".join(text.lower().split())


@dataclass
class _Merging:
    query: str
    positives: dict[str, float] = field(default_factory=dict)
    negatives: dict[str, None] = field(default_factory=dict)
    shown: dict[str, None] = field(default_factory=dict)
    session_ids: list[str] = field(default_factory=list)


def session_positives(session: Session, event_weights: Mapping[str, float]) -> dict[str, float]:
    """Object id -> its strongest weighted event in the session (events without weight ignored)."""
    positives: dict[str, float] = {}
    for event in session.events:
        weight = float(event_weights.get(event.event_type, 0.0))
        if weight > 0:
            positives[event.object_id] = max(positives.get(event.object_id, 0.0), weight)
    return positives


def session_hard_negatives(session: Session, positives: Mapping[str, float]) -> list[str]:
    """Results ranked above the deepest shown positive that are not positives, top first."""
    ranks = {r.object_id: r.rank for r in session.results}
    deepest = max((ranks[o] for o in positives if o in ranks), default=-1)
    ordered = sorted(session.results, key=lambda r: r.rank)
    return [r.object_id for r in ordered if r.rank < deepest and r.object_id not in positives]


def build_examples(
    sessions: Sequence[Session],
    event_weights: Mapping[str, float],
    query_of: Callable[[str], str] = str.strip,
) -> tuple[list[Example], ExampleReport]:
    """Examples in order of each query's first session (by create time, then id)."""
    report = ExampleReport(sessions=len(sessions))
    merging: dict[str, _Merging] = {}

    def order(s: Session) -> tuple[Any, ...]:
        return (s.create_time is None, s.create_time or 0, s.session_id)

    for session in sorted(sessions, key=order):
        if session.irrelevant:
            report.irrelevant += 1
            continue
        query = query_of(session.query_text)
        if not query:
            report.without_query += 1
            continue
        positives = session_positives(session, event_weights)
        if not positives:
            report.without_positives += 1
            continue
        key = normalize_query(query)
        if key in merging:
            report.merged += 1
        target = merging.setdefault(key, _Merging(query))
        for object_id, weight in positives.items():
            target.positives[object_id] = target.positives.get(object_id, 0.0) + weight
        target.negatives.update(dict.fromkeys(session_hard_negatives(session, positives)))
        target.shown.update(dict.fromkeys(r.object_id for r in sorted(session.results, key=_rank)))
        target.session_ids.append(session.session_id)

    examples = []
    for m in merging.values():
        negatives = tuple(o for o in m.negatives if o not in m.positives)
        examples.append(
            Example(m.query, dict(m.positives), negatives, tuple(m.shown), tuple(m.session_ids))
        )
        report.positives += len(m.positives)
        report.negatives += len(negatives)
    report.examples = len(examples)
    return examples, report


def _rank(result: Any) -> int:
    return int(result.rank)


def _query_hash(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def split_by_query(
    examples: Sequence[Example], test_fraction: float, seed: int = 0
) -> tuple[list[Example], list[Example]]:
    """(train, test): a query is wholly on one side, chosen by a seeded hash of its text.

    With two or more examples each side gets at least one. Stable: the same query set and seed
    always give the same split, whatever the input order.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    ordered = sorted(examples, key=lambda e: (_query_hash(e.key, seed), e.key))
    if len(ordered) < 2:
        return list(ordered), []
    n_test = min(len(ordered) - 1, max(1, math.floor(len(ordered) * test_fraction + 0.5)))
    test, train = ordered[:n_test], ordered[n_test:]
    position = {e.key: i for i, e in enumerate(examples)}
    return sorted(train, key=lambda e: position[e.key]), sorted(test, key=lambda e: position[e.key])
