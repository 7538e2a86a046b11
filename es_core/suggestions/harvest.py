"""Suggestions that learn: the query texts of searches that led somewhere become phrases of the
"clickstream" domain, for every app's users to be offered.

The rules (one pass, one transaction; settings ``ES_SUGGESTIONS_HARVEST_*``):

- A *success* is a session created within the lookback window, not marked irrelevant, with a
  user id and a query text, holding at least one positive event (an event type whose weight in
  ``ES_EVENT_WEIGHTS`` is above 0) on a result the search showed. Anonymous sessions never count:
  nothing tells their users apart.
- Successes are grouped by the normalised query text (``text.normalise``: what makes two
  phrases one). A text is harvested only when at least ``min_users`` (never fewer than 2)
  distinct user ids succeeded with it, so one user's typing is never shown to another (the
  same user id in two apps counts once: it may be one person); and only when its normalised
  text is within the length limits and holds a word.
- Its weight is a probability-like number from how often and how recently it succeeded:
  ``s / (1 + s)`` where ``s`` sums ``0.5 ** (age / half_life)`` over its successes (age from
  the session's creation, 0 for a session stamped in the future). Two fresh successes weigh
  0.67, ten 0.91; a weight stays below 1.0, the default weight of a curated phrase, so at an
  equal match a curated phrase still ranks first. A text whose weight is below ``min_weight``
  does not qualify.
- A qualifying text is written with ``store.add_phrases`` to the clickstream domain with the
  label "harvested", shown in its most frequent spelling. A phrase that also belongs to another
  domain (curated there) only gains the clickstream domain: its weight and labels stay as
  curated, in the clickstream domain too.
- The clickstream domain is the harvest's: a phrase in it that no longer qualifies (its
  successes decayed below ``min_weight``, left the window, were marked irrelevant, ...) leaves
  it, and is deleted when it was its only domain.
- The domain is global, not per app: the phrases are what many users searched for, and apps
  that want their own Suggest ask for their own domains.

Two harvests never interleave: a pass holds a transaction-scoped advisory lock, and a pass
that finds it taken returns at once (the other is doing the same work). The grouping by
normalised text is done here, in Python, over rows the database has already reduced to one
per (query text, user)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from es_core.config import Settings
from es_core.suggestions import store
from es_core.suggestions.model import MAX_PHRASES_PER_REQUEST, PhraseInput
from es_core.suggestions.text import normalise, tokenise

DOMAIN = "clickstream"
LABEL = "harvested"
LOCK = "es.suggestions_harvest"


@dataclass(frozen=True)
class HarvestReport:
    """What one pass did; ``ran`` is False when harvesting is off or another pass held the
    lock."""

    ran: bool
    successes: int = 0
    candidates: int = 0
    harvested: int = 0
    removed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Candidate:
    users: set[str] = field(default_factory=set)
    successes: int = 0
    recency: float = 0.0
    spellings: Counter[str] = field(default_factory=Counter)


def weight_of(recency: float) -> float:
    """The weight of a text whose successes sum to ``recency`` (each ``0.5 ** (age /
    half_life)``): 0 for none, rising towards 1 with more and fresher successes."""
    return recency / (1.0 + recency) if recency > 0 else 0.0


def positive_event_types(settings: Settings) -> list[str]:
    return sorted(t for t, w in settings.event_weights.items() if w > 0)


_SUCCESSES = """
SELECT s.query_text, s.user_id, count(*) AS successes,
       sum(power(0.5::float8,
                 greatest(0, extract(epoch FROM $1::timestamptz - s.create_time))::float8
                 / $3)) AS recency
FROM sessions s
WHERE s.create_time >= $1::timestamptz - make_interval(secs => $2)
  AND NOT s.irrelevant AND s.user_id <> '' AND btrim(s.query_text) <> ''
  AND length(s.query_text) <= $5
  AND EXISTS (
      SELECT 1 FROM session_events e
      WHERE e.session_id = s.session_id AND e.event_type = ANY($4::text[])
        AND NOT e.object_not_shown)
GROUP BY s.query_text, s.user_id
"""


def qualify(rows: Sequence[asyncpg.Record], settings: Settings) -> tuple[list[PhraseInput], int]:
    """The phrases to write from the grouped successes, and how many texts were considered."""
    candidates: dict[str, _Candidate] = {}
    for row in rows:
        key = normalise(row["query_text"])
        if not (
            settings.suggestions_harvest_min_chars
            <= len(key)
            <= settings.suggestions_harvest_max_chars
        ) or not tokenise(key):
            continue
        found = candidates.setdefault(key, _Candidate())
        found.users.add(row["user_id"])
        found.successes += row["successes"]
        found.recency += row["recency"]
        found.spellings[" ".join(row["query_text"].split())] += row["successes"]
    phrases = []
    for found in candidates.values():
        weight = weight_of(found.recency)
        if (
            len(found.users) < settings.suggestions_harvest_min_users
            or weight < settings.suggestions_harvest_min_weight
        ):
            continue
        # The most frequent spelling; among equals, the first in code point order.
        spelling = min(found.spellings.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        phrases.append(PhraseInput(spelling, weight, [LABEL], [DOMAIN]))
    return phrases, len(candidates)


async def _remove_the_rest(conn: asyncpg.Connection, keep: Sequence[str]) -> int:
    """Take the clickstream domain from every phrase not in ``keep`` (normalised texts);
    delete those that had no other."""
    deleted = await conn.execute(
        "DELETE FROM suggestion_phrases WHERE domains <@ ARRAY[$1::text]"
        " AND normalised <> ALL($2::text[])",
        DOMAIN,
        list(keep),
    )
    narrowed = await conn.execute(
        "UPDATE suggestion_phrases SET domains = array_remove(domains, $1), update_time = now()"
        " WHERE domains @> ARRAY[$1::text] AND normalised <> ALL($2::text[])",
        DOMAIN,
        list(keep),
    )
    return int(deleted.split()[-1]) + int(narrowed.split()[-1])


async def harvest(pool: asyncpg.Pool, settings: Settings, now: datetime) -> HarvestReport:
    """One harvest pass as of ``now`` (see the module docstring)."""
    if not settings.suggestions_harvest:
        return HarvestReport(ran=False)
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext($1))", LOCK):
            return HarvestReport(ran=False)
        rows = await conn.fetch(
            _SUCCESSES,
            now,
            settings.suggestions_harvest_lookback_seconds,
            settings.suggestions_harvest_half_life_seconds,
            positive_event_types(settings),
            # A generous bound checked before normalising: only padding (runs of spaces,
            # combining marks) could bring a longer raw text within the limit.
            4 * settings.suggestions_harvest_max_chars,
        )
        phrases, considered = qualify(rows, settings)
        for start in range(0, len(phrases), MAX_PHRASES_PER_REQUEST):
            await store.add_phrases(
                conn, phrases[start : start + MAX_PHRASES_PER_REQUEST], owned_domain=DOMAIN
            )
        removed = await _remove_the_rest(conn, [normalise(p.phrase) for p in phrases])
    return HarvestReport(
        ran=True,
        successes=sum(int(r["successes"]) for r in rows),
        candidates=considered,
        harvested=len(phrases),
        removed=removed,
    )
