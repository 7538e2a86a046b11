"""Interleaving live searches: which searches are interleaved, and their merged page."""

from __future__ import annotations

import random

from es_core.errors import InvalidArgument
from es_core.interleaving.team_draft import Pick, seed_of, team_draft
from es_core.search.query import SearchHit

FIELD = "interleave"


def interleaving_wanted(
    *,
    requested: bool,
    share: float,
    text_query: bool,
    create_session: bool,
    first_page: bool,
    names_collection: bool,
    sorted_by_field: bool,
    rng: random.Random | None = None,
) -> bool:
    """A search asked to be interleaved must be one that can be; otherwise ``share`` of the
    searches that can be are (the draw is skipped when share is 0)."""
    reasons = [
        (not text_query, "needs query_text: a query vector belongs to one model"),
        (not create_session, "needs create_session: clicks are credited through the session"),
        (not first_page, "applies to first pages only (no page_token)"),
        (names_collection, "compares blue with green: leave collection_id empty"),
        (sorted_by_field, "compares rankings: a search sorted by a field has none"),
    ]
    blocked = [why for failed, why in reasons if failed]
    if requested:
        if blocked:
            raise InvalidArgument.field_error(FIELD, blocked[0])
        return True
    if blocked or share <= 0:
        return False
    return (rng or random).random() < share


def interleave_hits(
    blue: list[SearchHit], green: list[SearchHit], limit: int, session_id: str
) -> tuple[list[SearchHit], list[Pick]]:
    """The page shown (each hit as the collection that contributed it found it) and the draft,
    seeded by the session id."""
    picks = team_draft(
        [h.object_id for h in blue], [h.object_id for h in green], limit, seed_of(session_id)
    )
    found = {"blue": {h.object_id: h for h in blue}, "green": {h.object_id: h for h in green}}
    return [found[p.team][p.object_id] for p in picks], picks
