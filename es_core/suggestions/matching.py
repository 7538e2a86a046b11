"""The Suggest query: typed words to ranked phrases, with what matched where.

Two statements, both served by indexes whatever the size of the dictionary:

1. ``resolve`` (the function suggestion_candidates, migration 0015, planned once per
   connection): each typed word to the vocabulary words it may stand for, with the typos
   between them (and, for the last word when still being typed, how much of the word it
   covers). Exact words by primary key; prefixes by a range of it; typos through the
   deletion-neighbourhood keys (words of up to 8 characters, where trigrams say too little)
   and the trigram index (words of 5 characters or more that the keys do not cover: longer
   than 8 characters, or with 2 typos allowed), every candidate then measured by
   ``suggestion_edits`` (fuzzystrmatch's Levenshtein, one adjacent transposition counting as
   one edit).
2. ``find``: the phrases of the requested domains whose tokens hold a candidate of every typed
   word (the GIN index on tokens intersects them), aligned in SQL: at the start of the phrase
   (EXACT, PREFIX, FUZZY) or later (MID_PHRASE), ranked by match type, then typos, then weight.

The spans are worked out from the alignment, over the phrase's own tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from es_core.suggestions.model import MatchType, Phrase, Span, Suggestion
from es_core.suggestions.store import COLUMNS, phrase_from_row
from es_core.suggestions.text import (
    Token,
    default_max_edits,
    deletions,
    normalise,
    swaps,
    tokenise,
)

# The constants of ``resolve`` (MAX_PREFIX_WORDS, MAX_TRIGRAM_WORDS, KEYED_CHARS, TRIGRAM_CHARS
# and the similarity thresholds) are written into its function, suggestion_candidates
# (migration 0015): changing one takes a migration that replaces the function.

# Vocabulary words a typed prefix may expand to (the shortest, in byte order, first).
MAX_PREFIX_WORDS = 2000
# The phrase index is asked for the typed words with the fewest candidates: at most this many,
# those after the first only when they have at most INDEXED_CANDIDATES candidates (the GIN
# index looks each one up, a few microseconds apiece; a common first word alone can stand for
# tens of thousands of phrases, each one fetched and aligned).
MAX_INDEXED_WORDS = 3
INDEXED_CANDIDATES = 300
SMALL_CANDIDATE_SET = 64
# Trigram candidates per typed word, most similar first, before their edits are measured.
MAX_TRIGRAM_WORDS = 200
# The deletion-neighbourhood keys cover words (and word prefixes) of up to this length.
KEYED_CHARS = 8
# Trigrams are asked only of typed words at least this long.
TRIGRAM_CHARS = 5
# Thresholds of pg_trgm's % (whole words) and <% (a word's beginning) for those candidates.
SIMILARITY_THRESHOLD = 0.2
WORD_SIMILARITY_THRESHOLD = 0.3

# The MID_PHRASE tier, when every typed word stands for more than SMALL_CANDIDATE_SET
# vocabulary words (a word of 1-3 letters being typed), examines only this many phrases of the
# domains, the heaviest, instead of aligning every phrase that holds one of the words (a large
# share of the dictionary): such a suggestion is found among the heaviest phrases only.
MID_SCAN_PHRASES = 5000
# After every character in byte order: [t, t || RANGE_END) holds the strings starting with t.
RANGE_END = chr(0x10FFFF)

_TIERS = [MatchType.EXACT, MatchType.PREFIX, MatchType.FUZZY, MatchType.MID_PHRASE]


@dataclass(frozen=True)
class TypedWord:
    token: Token
    max_edits: int
    # The last word when the user may still be typing it: it matches a word's beginning.
    as_prefix: bool

    @property
    def text(self) -> str:
        return self.token.text


@dataclass(frozen=True)
class Candidate:
    edits: int
    # Characters of the vocabulary word the typed word covers.
    length: int


def typed_words(prefix: str, max_edits: int | None, allow_typos: bool) -> list[TypedWord]:
    """The typed words; the last one is a prefix unless a space or punctuation follows it."""
    tokens = tokenise(prefix)
    still_typing = bool(tokens) and tokens[-1].end == len(prefix)
    return [
        TypedWord(
            token,
            0
            if not allow_typos
            else default_max_edits(token.text)
            if max_edits is None
            else max_edits,
            still_typing and i == len(tokens) - 1,
        )
        for i, token in enumerate(tokens)
    ]


_FAR_CANDIDATES = """
SELECT word, edits, length FROM suggestion_far_candidates($1::text, $2::int, $3::bool, $4::text[])
"""
# The statement lives in a function (migration 0015), planned once per connection.
_RESOLVE = """
SELECT pos, word, edits, length FROM suggestion_candidates(
    $1::text[], $2::int[], $3::bool[], $4::int[], $5::text[], $6::int[], $7::text[])
"""


async def _settings(conn: asyncpg.Connection) -> None:
    await conn.execute(
        "SELECT set_config('plan_cache_mode', 'force_custom_plan', false),"
        # The statements are meant for their indexes; the planner prices a GIN lookup of
        # many words above a scan of a table it does not know is large.
        " set_config('enable_seqscan', 'off', false)"
    )


async def resolve(
    conn: asyncpg.Connection, typed: Sequence[TypedWord]
) -> list[dict[str, Candidate]]:
    """For each typed word, the vocabulary words it may stand for (the function brings the
    settings it needs: the session's are neither used nor changed)."""
    swap_pos: list[int] = []
    swap_text: list[str] = []
    key_pos: list[int] = []
    key_text: list[str] = []
    for pos, word in enumerate(typed, start=1):
        if word.max_edits == 0:
            continue
        for swap in swaps(word.text):
            swap_pos.append(pos)
            swap_text.append(swap)
        if len(word.text) <= KEYED_CHARS:
            for key in deletions(word.text, word.max_edits):
                if len(key) >= 2:
                    key_pos.append(pos)
                    key_text.append(key)
    rows = await conn.fetch(
        _RESOLVE,
        [w.text for w in typed],
        [w.max_edits for w in typed],
        [w.as_prefix for w in typed],
        swap_pos,
        swap_text,
        key_pos,
        key_text,
    )
    found: list[dict[str, Candidate]] = [{} for _ in typed]
    for row in rows:
        candidates = found[row["pos"] - 1]
        known = candidates.get(row["word"])
        if known is None or row["edits"] < known.edits:
            candidates[row["word"]] = Candidate(row["edits"], row["length"])
    # A word that may hold two typos and found nothing: once more, by looser trigrams.
    for word, candidates in zip(typed, found, strict=True):
        if not candidates and word.max_edits >= 2 and len(word.text) >= TRIGRAM_CHARS:
            for row in await conn.fetch(
                _FAR_CANDIDATES, word.text, word.max_edits, word.as_prefix, swaps(word.text)
            ):
                candidates[row["word"]] = Candidate(row["edits"], row["length"])
    return found


def _find_sql(
    n: int, last_is_prefix: bool, indexed: Sequence[int], *, first_token: bool, heaviest: bool
) -> str:
    """The phrase query for ``n`` typed words: $1 domains, $2 normalised prefix, $3..$6 the
    match types allowed, $7 limit, $8 the last typed word, $9 and $10 the lowest and highest
    tier returned (a phrase of an allowed tier outside them is left out, never demoted to a
    later one), then for each typed word the candidates with typos and their edits, for the
    alignment (an exact prefix of the last word is tested with starts_with instead: a short
    prefix may stand for thousands of words), then all candidates of each ``indexed`` word,
    for the index, then (``first_token``) the candidates of the first typed word, which the
    phrase's first token must be (the FUZZY tier: start-aligned only).

    ``heaviest``: only the MID_SCAN_PHRASES heaviest phrases of the domains are examined,
    through the weight index, instead of every phrase holding a candidate (see
    ``MID_SCAN_PHRASES``)."""
    words = [f"${11 + 2 * i}::text[]" for i in range(n)]
    edits = [f"${12 + 2 * i}::int[]" for i in range(n)]
    index_words = [f"${11 + 2 * n + j}::text[]" for j in range(len(indexed))]
    first = f"${11 + 2 * n + len(indexed)}::text[]"

    def edits_at(start: str) -> str:
        terms = []
        for i in range(n):
            token = f"tokens[{start} + {i}]"
            term = f"({edits[i]})[array_position({words[i]}, {token})]"
            if last_is_prefix and i == n - 1:
                term = f"CASE WHEN starts_with({token}, $8::text) THEN 0 ELSE {term} END"
            terms.append(term)
        return " + ".join(terms)

    conditions = [f"p.tokens && {w}" for w in index_words]
    if first_token:
        conditions.append(f"p.tokens[1] = ANY({first})")
    having = " AND ".join(conditions) or "true"
    source = (
        f"(SELECT * FROM suggestion_phrases WHERE domains && $1::text[]"
        f" ORDER BY weight DESC LIMIT {MID_SCAN_PHRASES})"
        if heaviest
        else "suggestion_phrases"
    )
    # OFFSET 0 keeps each layer from being folded into the next, so that every expression
    # is computed once per row; the later position is looked for only when needed.
    return f"""
    SELECT * FROM (
    SELECT *,
        CASE WHEN $3::bool AND exact THEN 0
             WHEN $4::bool AND start_edits = 0 THEN 1
             WHEN $5::bool AND start_edits > 0 THEN 2
             WHEN mid IS NOT NULL THEN 3 END AS tier
    FROM (
        SELECT a.*,
            CASE WHEN $6::bool AND $10::int >= 3 AND NOT coalesce(($3::bool AND exact)
                    OR ($4::bool AND start_edits = 0) OR ($5::bool AND start_edits > 0), false)
            THEN (
                SELECT ARRAY[e, s] FROM (
                    SELECT s, {edits_at("s")} AS e
                    FROM generate_series(2, cardinality(a.tokens) - {n - 1}) AS s) AS m
                WHERE e IS NOT NULL ORDER BY e, s LIMIT 1) END AS mid
        FROM (
            SELECT p.phrase_id, p.phrase, p.weight, p.labels, p.domains, p.create_time,
                   p.update_time, p.normalised, p.tokens,
                   p.normalised = $2::text AS exact, $8::text AS typed_last,
                   {edits_at("1")} AS start_edits
            FROM {source} AS p
            WHERE p.domains && $1::text[] AND {having}
            OFFSET 0
        ) AS a
        OFFSET 0
    ) AS aligned
    WHERE ($3::bool AND exact) OR ($4::bool AND start_edits = 0)
       OR ($5::bool AND start_edits > 0) OR mid IS NOT NULL
    ) AS tiered
    WHERE tier BETWEEN $9::int AND $10::int
    ORDER BY tier,
             CASE WHEN ($3::bool AND exact) OR ($4::bool AND start_edits = 0) THEN 0
                  WHEN $5::bool AND start_edits > 0 THEN start_edits ELSE mid[1] END,
             weight DESC, normalised
    LIMIT $7::int
    """


def index_positions(found: Sequence[dict[str, Candidate]]) -> list[int]:
    """The typed words whose candidates the index intersects: up to MAX_INDEXED_WORDS with the
    fewest candidates, each after the first only when it has at most INDEXED_CANDIDATES (a GIN
    scan costs per word looked up). The alignment checks every typed word anyway, so the others
    need no index condition."""
    by_size = sorted(range(len(found)), key=lambda i: len(found[i]))
    small = [i for i in by_size[:MAX_INDEXED_WORDS] if len(found[i]) <= INDEXED_CANDIDATES]
    return small or by_size[:1]


def score(tier: int, edits: int, weight: float) -> float:
    """Higher for a better match type, then fewer typos, then a greater weight."""
    return 100.0 * (3 - tier) + (99 - min(edits, 99)) + weight / (1.0 + weight)


def _spans(
    phrase: Phrase, start: int, typed: Sequence[TypedWord], found: Sequence[dict[str, Candidate]]
) -> tuple[list[Span], int]:
    tokens = tokenise(phrase.phrase, start + len(typed))
    spans: list[Span] = []
    total = 0
    for i, word in enumerate(typed):
        j = start + i
        if j >= len(tokens) or tokens[j].text not in found[i]:
            continue
        token = tokens[j]
        candidate = found[i][token.text]
        end = token.end_of_prefix(candidate.length) if word.as_prefix else token.end
        spans.append(Span(token.start, end, word.token.text, candidate.edits))
        total += candidate.edits
    return spans, total


def _starting_sql(as_prefix: bool) -> str:
    """EXACT and PREFIX without any alignment: $1 domains, $2 normalised prefix, $3 EXACT
    allowed, $4 PREFIX allowed, $5 limit, $6 the typed words joined by single spaces (and a
    space after them when the last word is complete), $7 the end of that range, and when the
    last word is complete, $8 the typed words joined (a phrase that is exactly those words).
    The exact phrase comes by the unique index; the prefixes either by a range of the joined
    index or, when the range holds many phrases, heaviest first by the weight index until the
    limit is filled (the planner chooses, per call)."""
    whole = " OR p.joined = $8::text" if not as_prefix else ""
    return f"""
    (SELECT {COLUMNS}, normalised, 0 AS tier FROM suggestion_phrases AS p
     WHERE $3::bool AND p.normalised = $2::text AND p.domains && $1::text[])
    UNION ALL
    (SELECT {COLUMNS}, normalised, 1 AS tier FROM suggestion_phrases AS p
     WHERE $4::bool AND p.domains && $1::text[]
       AND ((p.joined >= $6::text AND p.joined < $7::text){whole})
       AND NOT ($3::bool AND p.normalised = $2::text)
     ORDER BY p.weight DESC, p.normalised
     LIMIT $5::int)
    ORDER BY tier, weight DESC, normalised
    LIMIT $5::int
    """


async def _starting(
    conn: asyncpg.Connection,
    prefix: str,
    typed: Sequence[TypedWord],
    domains: Sequence[str],
    allowed: set[MatchType],
    limit: int,
) -> list[Suggestion]:
    """The EXACT and PREFIX suggestions, best first (at most ``limit``)."""
    joined = " ".join(w.text for w in typed)
    as_prefix = typed[-1].as_prefix
    low = joined if as_prefix else joined + " "
    rows = await conn.fetch(
        _starting_sql(as_prefix),
        list(domains),
        normalise(prefix),
        MatchType.EXACT in allowed,
        MatchType.PREFIX in allowed,
        limit,
        low,
        low + RANGE_END,
        *([] if as_prefix else [joined]),
    )
    suggestions = []
    for row in rows:
        phrase = phrase_from_row(row)
        tokens = tokenise(phrase.phrase, len(typed))
        spans = [
            Span(
                tokens[i].start,
                tokens[i].end_of_prefix(len(word.text)) if word.as_prefix else tokens[i].end,
                word.token.text,
                0,
            )
            for i, word in enumerate(typed)
        ]
        tier = row["tier"]
        suggestions.append(Suggestion(phrase, score(tier, 0, phrase.weight), _TIERS[tier], spans))
    return suggestions


def _heaviest(found: Sequence[dict[str, Candidate]]) -> bool:
    """Whether MID_PHRASE looks among the heaviest phrases only: every typed word stands for
    more than SMALL_CANDIDATE_SET words."""
    return min(len(c) for c in found) > SMALL_CANDIDATE_SET


async def find(
    conn: asyncpg.Connection,
    prefix: str,
    typed: Sequence[TypedWord],
    found: Sequence[dict[str, Candidate]],
    domains: Sequence[str],
    allowed: set[MatchType],
    limit: int,
    *,
    tiers: tuple[int, int] = (0, 3),
) -> list[Suggestion]:
    """The best ``limit`` phrases for the typed words, given their candidates, of the tiers
    from ``tiers[0]`` to ``tiers[1]`` (0 EXACT .. 3 MID_PHRASE). The FUZZY tier alone is
    looked for by the first token; the MID_PHRASE tier through the GIN index, or among the
    heaviest phrases when every typed word stands for many words."""
    if not typed or any(not candidates for candidates in found):
        return []
    last = typed[-1]
    args: list[object] = [
        list(domains),
        normalise(prefix),
        *(t in allowed for t in _TIERS),
        limit,
        last.text,
        tiers[0],
        tiers[1],
    ]
    first: list[str] = []
    for i, (word, candidates) in enumerate(zip(typed, found, strict=True)):
        aligned = {
            w: c
            for w, c in candidates.items()
            if not (word.as_prefix and c.edits == 0 and w.startswith(word.text))
        }
        args += [list(aligned), [c.edits for c in aligned.values()]]
        if i == 0:
            first = list(aligned)
    indexed = index_positions(found)
    heaviest = tiers[0] == 3 and _heaviest(found)
    if heaviest:
        indexed = []
    args += [list(found[i]) for i in indexed]
    first_token = tiers[1] < 3
    if first_token:
        if not first:
            return []
        args.append(first)
    sql = _find_sql(len(typed), last.as_prefix, indexed, first_token=first_token, heaviest=heaviest)
    rows = await conn.fetch(sql, *args)
    suggestions = []
    for row in rows:
        phrase = phrase_from_row(row)
        tier = row["tier"]
        start = row["mid"][1] - 1 if tier == 3 else 0
        spans, edits = _spans(phrase, start, typed, found)
        suggestions.append(
            Suggestion(phrase, score(tier, edits, phrase.weight), _TIERS[tier], spans)
        )
    return suggestions


async def suggest(
    conn: asyncpg.Connection,
    prefix: str,
    typed: Sequence[TypedWord],
    domains: Sequence[str],
    allowed: set[MatchType],
    limit: int,
) -> list[Suggestion]:
    """The best ``limit`` suggestions, tier by tier: the tiers rank strictly, so a later one
    is asked only when the earlier ones left the limit unfilled. EXACT and PREFIX need no
    candidates (one range of the joined tokens); the typed words are resolved only when FUZZY
    or MID_PHRASE is needed; FUZZY is only looked for when some typed word may have a typo."""
    await _settings(conn)
    got: list[Suggestion] = []
    if allowed & {MatchType.EXACT, MatchType.PREFIX}:
        got = await _starting(conn, prefix, typed, domains, allowed, limit)
        if len(got) >= limit:
            return got
    later = allowed & {MatchType.FUZZY, MatchType.MID_PHRASE}
    if not later:
        return got
    found = await resolve(conn, typed)
    fuzzy = MatchType.FUZZY in allowed and any(w.max_edits > 0 for w in typed)
    mid = MatchType.MID_PHRASE in allowed
    # FUZZY and MID_PHRASE in one aligned statement (one round trip less: measured faster
    # than asking FUZZY alone first, which seldom fills the limit), unless MID_PHRASE is to
    # look among the heaviest phrases only; then FUZZY by the first token, first.
    if fuzzy and mid and not _heaviest(found):
        return got + await find(
            conn, prefix, typed, found, domains, allowed, limit - len(got), tiers=(2, 3)
        )
    if fuzzy:
        got += await find(
            conn, prefix, typed, found, domains, allowed, limit - len(got), tiers=(2, 2)
        )
        if len(got) >= limit:
            return got
    if mid:
        got += await find(
            conn, prefix, typed, found, domains, allowed, limit - len(got), tiers=(3, 3)
        )
    return got
    if MatchType.MID_PHRASE in allowed:
        got += await find(
            conn, prefix, typed, found, domains, allowed, limit - len(got), tiers=(3, 3)
        )
    return got
