"""Team-draft interleaving and the choice of which searches are interleaved."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from es_core.errors import InvalidArgument
from es_core.interleaving.live import interleave_hits, interleaving_wanted
from es_core.interleaving.team_draft import seed_of, team_draft
from es_core.search.query import SearchHit

BLUE = ["a", "b", "c", "d", "e"]
GREEN = ["c", "f", "a", "g", "h"]


@pytest.mark.parametrize("seed", range(50))
def test_each_team_adds_its_best_item_not_yet_shown_and_picks_alternate(seed: int) -> None:
    picks = team_draft(BLUE, GREEN, 8, seed)
    ids = [p.object_id for p in picks]
    assert len(ids) == len(set(ids)) == 8  # no duplicates
    shown: list[str] = []
    for i in range(0, len(picks), 2):
        pair = picks[i : i + 2]
        assert {p.team for p in pair} == {"blue", "green"}  # one pick each per round
        for p in pair:
            ranking = BLUE if p.team == "blue" else GREEN
            assert p.object_id == next(o for o in ranking if o not in shown)
            shown.append(p.object_id)


def test_every_shown_item_is_credited_to_exactly_one_team_that_ranked_it() -> None:
    for seed in range(20):
        picks = team_draft(BLUE, GREEN, 10, seed)
        assert sorted(p.object_id for p in picks) == sorted(set(BLUE) | set(GREEN))
        for p in picks:
            assert p.object_id in (BLUE if p.team == "blue" else GREEN)


def test_the_same_seed_gives_the_same_draft_and_coins_are_fair() -> None:
    assert team_draft(BLUE, GREEN, 6, 42) == team_draft(BLUE, GREEN, 6, 42)
    assert seed_of("session-1") == seed_of("session-1") != seed_of("session-2")
    first = Counter(team_draft(BLUE, GREEN, 1, seed)[0].team for seed in range(2000))
    assert 900 < first["blue"] < 1100  # who picks first is a coin flip


def test_identical_rankings_keep_their_order_and_split_credit() -> None:
    for seed in range(10):
        picks = team_draft(BLUE, BLUE, 4, seed)
        assert [p.object_id for p in picks] == BLUE[:4]
        assert Counter(p.team for p in picks) == {"blue": 2, "green": 2}


def test_a_short_ranking_leaves_the_rest_to_the_other_and_limits_hold() -> None:
    picks = team_draft(["x"], BLUE, 4, 3)
    assert [p.object_id for p in picks if p.team == "blue"] == ["x"]
    assert len(picks) == 4
    assert team_draft([], [], 5, 0) == []
    assert team_draft(BLUE, GREEN, 0, 0) == []


def test_interleaved_hits_are_the_contributing_collection_s_hits() -> None:
    blue = [SearchHit(o, 0.1 * i) for i, o in enumerate(BLUE)]
    green = [SearchHit(o, -1.0 - i) for i, o in enumerate(GREEN)]
    hits, picks = interleave_hits(blue, green, 5, "s1")
    assert [h.object_id for h in hits] == [p.object_id for p in picks]
    for hit, pick in zip(hits, picks, strict=True):
        assert (hit.distance < 0) == (pick.team == "green")
    assert picks == team_draft(BLUE, GREEN, 5, seed_of("s1"))


ELIGIBLE: dict[str, Any] = {
    "text_query": True,
    "create_session": True,
    "first_page": True,
    "names_collection": False,
    "sorted_by_field": False,
}


def test_share_draws_searches_and_zero_share_draws_none() -> None:
    rng = random.Random(1)
    drawn = sum(
        interleaving_wanted(requested=False, share=0.3, rng=rng, **ELIGIBLE) for _ in range(2000)
    )
    assert 500 < drawn < 700
    assert not interleaving_wanted(requested=False, share=0.0, **ELIGIBLE)
    assert interleaving_wanted(requested=False, share=1.0, **ELIGIBLE)
    assert interleaving_wanted(requested=True, share=0.0, **ELIGIBLE)


@pytest.mark.parametrize(
    ("condition", "value", "words"),
    [
        ("text_query", False, "query_text"),
        ("create_session", False, "create_session"),
        ("first_page", False, "page_token"),
        ("names_collection", True, "collection_id"),
        ("sorted_by_field", True, "sorted by a field"),
    ],
)
def test_a_search_that_cannot_be_interleaved(condition: str, value: bool, words: str) -> None:
    flags = ELIGIBLE | {condition: value}
    assert not interleaving_wanted(requested=False, share=1.0, **flags)
    with pytest.raises(InvalidArgument) as caught:
        interleaving_wanted(requested=True, share=0.0, **flags)
    assert caught.value.message.startswith("interleave: ") and words in caught.value.message
