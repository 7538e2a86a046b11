"""Team-draft interleaving (Radlinski et al., 2008): two rankings merged into one list, each
shown item credited to the ranking (team) that picked it.

In each round a coin flip decides which team picks first; each team then adds its
highest-ranked item not already in the list. Pure and deterministic given the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Team = Literal["blue", "green"]
TEAMS: tuple[Team, Team] = ("blue", "green")


@dataclass(frozen=True)
class Pick:
    """One shown item and the team whose ranking contributed it."""

    object_id: str
    team: Team


def team_draft(blue: Sequence[str], green: Sequence[str], limit: int, seed: int) -> list[Pick]:
    """At most ``limit`` distinct items from the two rankings; every item is credited to exactly
    one team. When one ranking runs out the other fills the rest."""
    rng = random.Random(seed)
    rankings: dict[Team, Sequence[str]] = {"blue": blue, "green": green}
    next_index: dict[Team, int] = {"blue": 0, "green": 0}
    shown: set[str] = set()
    picks: list[Pick] = []

    def pick(team: Team) -> None:
        ranking, i = rankings[team], next_index[team]
        while i < len(ranking) and ranking[i] in shown:
            i += 1
        next_index[team] = i + 1
        if i < len(ranking):
            shown.add(ranking[i])
            picks.append(Pick(ranking[i], team))

    while len(picks) < limit:
        before = len(picks)
        first = TEAMS[rng.randrange(2)]
        for team in (first, "green" if first == "blue" else "blue"):
            if len(picks) < limit:
                pick(team)
        if len(picks) == before:
            break  # both rankings are used up
    return picks


def seed_of(session_id: str) -> int:
    """The coin flips of a session follow from its id, so its draft can be replayed."""
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big")
