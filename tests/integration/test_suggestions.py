"""The phrase dictionary and Suggest on a real PostgreSQL: idempotent adds, partial updates,
listing with filters and page tokens, each match type, typos, mid-phrase matches, domains,
ranking and spans.

Every test works in domains of its own (``unique_id``), so tests sharing the database never
see each other's phrases."""

from __future__ import annotations

import asyncpg
import pytest

from es_core.config import Settings
from es_core.context import Context
from es_core.errors import InvalidArgument, NotFound
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.search.use_case import SearchContext
from es_core.suggestions import matching, use_case
from es_core.suggestions.model import (
    ListPhrasesInput,
    MatchType,
    Phrase,
    PhraseInput,
    PhraseUpdate,
    SetEdit,
    SuggestInput,
    Suggestion,
)
from tests.integration.helpers import RecordingSender, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

INDEX = TextMiniLMPlugin(Settings()).get_search_index_info()


@pytest.fixture
def ctx(pg_pool: asyncpg.Pool, settings: Settings) -> Context:
    return Context(settings, pg_pool, RecordingSender(), INDEX, TOKENS)


@pytest.fixture
def search(pg_pool: asyncpg.Pool, settings: Settings) -> SearchContext:
    return SearchContext(settings, pg_pool, None, TOKENS)  # type: ignore[arg-type]


async def add(ctx: Context, domain: str, *phrases: str | tuple[str, float]) -> list[str]:
    inputs = [
        PhraseInput(p, domains=[domain])
        if isinstance(p, str)
        else PhraseInput(p[0], weight=p[1], domains=[domain])
        for p in phrases
    ]
    return await use_case.add_phrases(ctx, inputs)


async def suggest(
    search: SearchContext, prefix: str, domain: str, **kwargs: object
) -> list[Suggestion]:
    return await use_case.suggest(search, SuggestInput(prefix, domains=[domain], **kwargs))  # type: ignore[arg-type]


def texts(suggestions: list[Suggestion]) -> list[str]:
    return [s.phrase.phrase for s in suggestions]


def highlighted(suggestion: Suggestion) -> list[str]:
    return [suggestion.phrase.phrase[s.start : s.end] for s in suggestion.spans]


# --- the store ------------------------------------------------------------------------------------


async def test_adding_the_same_phrase_again_updates_it(ctx: Context) -> None:
    a, b = unique_id("sa"), unique_id("sb")
    [first] = await use_case.add_phrases(
        ctx, [PhraseInput("Café  Noir", weight=2.0, labels=["drink"], domains=[a])]
    )
    [again] = await use_case.add_phrases(
        ctx, [PhraseInput("cafe noir", weight=5.0, labels=["coffee"], domains=[b])]
    )
    assert again == first
    [stored] = await use_case.get_phrases(ctx, [first])
    assert stored.phrase == "Café  Noir"
    assert stored.weight == 5.0 and stored.labels == ["coffee"] and stored.domains == [a, b]


async def test_one_request_may_name_a_phrase_twice(ctx: Context) -> None:
    d = unique_id("sd")
    ids = await use_case.add_phrases(
        ctx,
        [
            PhraseInput("twice told", weight=1.0, domains=[d]),
            PhraseInput("other", domains=[d]),
            PhraseInput("TWICE told", weight=3.0, domains=[d, d + "x"]),
        ],
    )
    assert ids[0] == ids[2] != ids[1]
    [stored] = await use_case.get_phrases(ctx, [ids[0]])
    assert stored.weight == 3.0 and stored.domains == [d, d + "x"]


async def test_a_thousand_phrases_are_added_in_one_call(ctx: Context) -> None:
    d = unique_id("bulk")
    ids = await use_case.add_phrases(
        ctx, [PhraseInput(f"bulk phrase number {i}", domains=[d]) for i in range(1000)]
    )
    assert len(set(ids)) == 1000
    page, _ = await use_case.list_phrases(ctx, ListPhrasesInput(page_size=1000, domains=[d]))
    assert len(page) == 1000 and all(p.weight == 1.0 for p in page)


async def test_get_returns_request_order_and_skips_unknown_ids(ctx: Context) -> None:
    d = unique_id("sg")
    ids = await add(ctx, d, "one", "two")
    got = await use_case.get_phrases(ctx, [ids[1], "no-such-phrase", ids[0]])
    assert [p.phrase for p in got] == ["two", "one"]


async def test_delete_counts_what_existed(ctx: Context) -> None:
    d = unique_id("sx")
    ids = await add(ctx, d, "gone soon", "kept")
    assert await use_case.delete_phrases(ctx, [ids[0], "no-such-phrase"]) == 1
    assert await use_case.delete_phrases(ctx, [ids[0]]) == 0
    assert [p.phrase for p in await use_case.get_phrases(ctx, ids)] == ["kept"]


async def test_partial_updates_set_add_and_remove(ctx: Context) -> None:
    d = unique_id("su")
    [pid] = await use_case.add_phrases(
        ctx, [PhraseInput("partial", weight=2.0, labels=["a", "b"], domains=[d])]
    )
    [after] = await use_case.update_phrases(
        ctx,
        [
            PhraseUpdate(
                pid,
                labels=SetEdit(add=["c"], remove=["a"]),
                domains=SetEdit(add=[d + "-2", d]),
            )
        ],
    )
    assert after.weight == 2.0 and after.labels == ["b", "c"] and after.domains == [d, d + "-2"]
    [after] = await use_case.update_phrases(
        ctx, [PhraseUpdate(pid, weight=0.5, domains=SetEdit(replace=True, values=[d + "-3"]))]
    )
    assert after.weight == 0.5 and after.labels == ["b", "c"] and after.domains == [d + "-3"]
    with pytest.raises(InvalidArgument) as info:
        await use_case.update_phrases(
            ctx, [PhraseUpdate(pid, weight=9.0, domains=SetEdit(remove=[d + "-3"]))]
        )
    assert info.value.violations[0].field == "updates[0].domains"
    [unchanged] = await use_case.get_phrases(ctx, [pid])
    assert unchanged.weight == 0.5 and unchanged.domains == [d + "-3"]


async def test_updates_of_unknown_phrases_are_not_found_and_change_nothing(ctx: Context) -> None:
    d = unique_id("sn")
    [pid] = await add(ctx, d, "known")
    with pytest.raises(NotFound) as info:
        await use_case.update_phrases(
            ctx, [PhraseUpdate(pid, weight=7.0), PhraseUpdate("no-such-phrase", weight=1.0)]
        )
    assert info.value.violations[0].field == "updates[1].phrase_id"
    [stored] = await use_case.get_phrases(ctx, [pid])
    assert stored.weight == 1.0


async def test_replacing_keeps_the_text_and_refuses_a_new_one(ctx: Context) -> None:
    d = unique_id("sr")
    [pid] = await add(ctx, d, "Replace Me")
    [after] = await use_case.replace_phrases(
        ctx, [Phrase(pid, "replace me", 4.0, ["x"], [d, d + "-b"])]
    )
    assert (after.phrase, after.weight, after.labels, after.domains) == (
        "Replace Me",
        4.0,
        ["x"],
        [d, d + "-b"],
    )
    with pytest.raises(InvalidArgument) as info:
        await use_case.replace_phrases(ctx, [Phrase(pid, "something else", 1.0, [], [d])])
    assert info.value.violations[0].field == "phrases[0].phrase"
    with pytest.raises(NotFound):
        await use_case.replace_phrases(ctx, [Phrase("no-such-phrase", "", 1.0, [], [d])])


async def test_listing_filters_and_pages_with_signed_tokens(ctx: Context) -> None:
    d, other = unique_id("sl"), unique_id("sl")
    await use_case.add_phrases(
        ctx,
        [
            PhraseInput(f"list item {i:02d}", labels=["even"] if i % 2 == 0 else [], domains=[d])
            for i in range(7)
        ]
        + [PhraseInput("listed elsewhere", domains=[other])],
    )
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page, token = await use_case.list_phrases(
            ctx, ListPhrasesInput(page_size=3, page_token=token, domains=[d])
        )
        seen += [p.phrase for p in page]
        pages += 1
        if not token:
            break
    assert pages == 3 and seen == [f"list item {i:02d}" for i in range(7)]
    even, _ = await use_case.list_phrases(ctx, ListPhrasesInput(domains=[d], labels=["even"]))
    assert [p.phrase for p in even] == [f"list item {i:02d}" for i in (0, 2, 4, 6)]
    both, _ = await use_case.list_phrases(
        ctx, ListPhrasesInput(domains=[d, other], text_prefix="LIST ")
    )
    assert [p.phrase for p in both] == [f"list item {i:02d}" for i in range(7)]
    _, token = await use_case.list_phrases(ctx, ListPhrasesInput(page_size=3, domains=[d]))
    with pytest.raises(InvalidArgument) as info:
        await use_case.list_phrases(
            ctx, ListPhrasesInput(page_size=3, page_token=token, domains=[other])
        )
    assert info.value.violations[0].field == "page_token"
    with pytest.raises(InvalidArgument):
        await use_case.list_phrases(ctx, ListPhrasesInput(page_token=token[:-2] + "xx"))


# --- suggest --------------------------------------------------------------------------------------


async def test_each_match_type_ranks_in_order_then_by_weight(
    ctx: Context, search: SearchContext
) -> None:
    d = unique_id("sm")
    await add(
        ctx,
        d,
        ("red shoes", 1.0),
        ("red shoes for running", 5.0),
        ("red shoestring budget", 9.0),
        ("bright red shoes", 50.0),
        ("red shows", 100.0),
    )
    got = await suggest(search, "red shoes", d)
    assert texts(got) == [
        "red shoes",
        "red shoestring budget",
        "red shoes for running",
        "red shows",
        "bright red shoes",
    ]
    assert [s.match_type for s in got] == [
        MatchType.EXACT,
        MatchType.PREFIX,
        MatchType.PREFIX,
        MatchType.FUZZY,
        MatchType.MID_PHRASE,
    ]
    assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
    assert [highlighted(s) for s in got] == [
        ["red", "shoes"],
        ["red", "shoes"],
        ["red", "shoes"],
        ["red", "shows"],
        ["red", "shoes"],
    ]
    assert [sp.edits for sp in got[3].spans] == [0, 1]


async def test_match_types_narrow_what_is_returned(ctx: Context, search: SearchContext) -> None:
    d = unique_id("st")
    await add(ctx, d, "lamp", "lamp shade", "desk lamp", "lump")
    only_mid = await suggest(search, "lamp", d, match_types=[MatchType.MID_PHRASE])
    assert texts(only_mid) == ["desk lamp"]
    only_exact = await suggest(search, "lamp", d, match_types=[MatchType.EXACT])
    assert texts(only_exact) == ["lamp"]
    only_fuzzy = await suggest(search, "lamp ", d, match_types=[MatchType.FUZZY])
    assert texts(only_fuzzy) == ["lump"]
    no_typos = await suggest(search, "lamp ", d, match_types=[MatchType.EXACT, MatchType.PREFIX])
    assert texts(no_typos) == ["lamp", "lamp shade"]


async def test_mid_phrase_completes_the_last_word(ctx: Context, search: SearchContext) -> None:
    d = unique_id("sw")
    await add(ctx, d, "red waterproof headphones", "waterproof jacket", "blue headphones")
    [hit] = await suggest(search, "waterproof he", d)
    assert hit.phrase.phrase == "red waterproof headphones"
    assert hit.match_type == MatchType.MID_PHRASE
    assert [(s.start, s.end, s.typed_word, s.edits) for s in hit.spans] == [
        (4, 14, "waterproof", 0),
        (15, 17, "he", 0),
    ]
    [typo] = await suggest(search, "waterprof he", d)
    assert typo.phrase.phrase == "red waterproof headphones"
    assert typo.match_type == MatchType.MID_PHRASE
    assert [(s.start, s.end, s.edits) for s in typo.spans] == [(4, 14, 1), (15, 17, 0)]


async def test_one_and_two_typos_are_found(ctx: Context, search: SearchContext) -> None:
    d = unique_id("sf")
    await add(ctx, d, "wireless headphones", "wired keyboard", "waterproof jacket")
    # one substitution in a complete word, the last word a prefix
    [hit, *_] = await suggest(search, "wireles headp", d)
    assert hit.phrase.phrase == "wireless headphones" and hit.match_type == MatchType.FUZZY
    assert [(s.typed_word, s.edits) for s in hit.spans] == [("wireles", 1), ("headp", 0)]
    # a transposition counts as one edit, in a prefix too
    [hit, *_] = await suggest(search, "wierless haedp", d)
    assert hit.phrase.phrase == "wireless headphones"
    assert [s.edits for s in hit.spans] == [1, 1]
    assert highlighted(hit) == ["wireless", "headp"]
    # two typos in a long word
    [hit, *_] = await suggest(search, "watrprof", d)
    assert hit.phrase.phrase == "waterproof jacket" and hit.spans[0].edits == 2
    # max_edits 0 turns typos off; short words get none by default
    assert await suggest(search, "watrprof", d, max_edits=0) == []
    assert await suggest(search, "wirel keybo", d, max_edits=0) == []
    assert texts(await suggest(search, "wird", d, max_edits=1)) == [
        "wired keyboard",
        "wireless headphones",
    ]
    assert await suggest(search, "wrd", d) == []


async def test_one_typo_in_short_words_is_found_through_keys(
    ctx: Context, search: SearchContext
) -> None:
    d = unique_id("sk")
    await add(ctx, d, "blue socks", "black sock puppet")
    got = await suggest(search, "bleu sock", d)
    assert texts(got) == ["blue socks"]
    assert [(s.typed_word, s.edits) for s in got[0].spans] == [("bleu", 1), ("sock", 0)]
    # three characters tolerate no typo unless asked
    assert await suggest(search, "bleu sox", d) == []
    assert texts(await suggest(search, "bleu sox", d, max_edits=1)) == ["blue socks"]


async def test_domains_are_respected(ctx: Context, search: SearchContext) -> None:
    shop, other = unique_id("sdom"), unique_id("sdom")
    await add(ctx, shop, "green tea")
    await add(ctx, other, "green tea bags")
    assert texts(await suggest(search, "green t", shop)) == ["green tea"]
    assert texts(await suggest(search, "green t", other)) == ["green tea bags"]
    both = await use_case.suggest(search, SuggestInput("green t", domains=[shop, other]))
    assert texts(both) == ["green tea", "green tea bags"]


async def test_spans_count_code_points_of_the_stored_text(
    ctx: Context, search: SearchContext
) -> None:
    d = unique_id("ss")
    await add(ctx, d, "Crème  Brûlée  Straße")
    [hit] = await suggest(search, "creme brulee strass", d)
    assert hit.match_type == MatchType.PREFIX
    assert highlighted(hit) == ["Crème", "Brûlée", "Straß"]
    assert [(s.start, s.end) for s in hit.spans] == [(0, 5), (7, 13), (15, 20)]


async def test_limit_and_weight_order(ctx: Context, search: SearchContext) -> None:
    d = unique_id("sw")
    await add(ctx, d, *[(f"tier {i}", float(i)) for i in range(12)])
    got = await suggest(search, "tier", d, limit=3)
    assert texts(got) == ["tier 11", "tier 10", "tier 9"]


async def test_bad_requests_name_the_field(search: SearchContext) -> None:
    cases = [
        (SuggestInput(""), "prefix"),
        (SuggestInput("   "), "prefix"),
        (SuggestInput("x" * 257), "prefix"),
        (SuggestInput("a\x00b"), "prefix"),
        (SuggestInput("!!!"), "prefix"),
        (SuggestInput("red", limit=101), "limit"),
        (SuggestInput("red", domains=[f"d{i}" for i in range(33)]), "domains"),
        (SuggestInput("red", domains=["ok", "ok", "ok", "a\x00"]), "domains[3]"),
        (SuggestInput("red", match_types=[0]), "match_types[0]"),
        (SuggestInput("red", match_types=[2, 9]), "match_types[1]"),
        (SuggestInput("red", max_edits=3), "max_edits"),
    ]
    for request, field in cases:
        with pytest.raises(InvalidArgument) as info:
            await use_case.suggest(search, request)
        assert [v.field for v in info.value.violations] == [field], request


# --- suggest in tiers -----------------------------------------------------------------------------


async def single_statement(
    pg_pool: asyncpg.Pool, prefix: str, domain: str, limit: int = 10
) -> list[tuple[str, MatchType, float]]:
    """Every tier in one aligned statement (what Suggest did before it went tier by tier)."""
    typed = matching.typed_words(prefix, None, True)
    async with pg_pool.acquire() as conn:
        found = await matching.resolve(conn, typed)
        got = await matching.find(conn, prefix, typed, found, [domain], set(MatchType), limit)
    return [(s.phrase.phrase, s.match_type, s.score) for s in got]


async def test_prefix_filling_the_limit_stops_before_the_later_tiers(
    ctx: Context, search: SearchContext, pg_pool: asyncpg.Pool
) -> None:
    d = unique_id("tp")
    await add(
        ctx,
        d,
        ("red shoes", 1.0),
        ("red shoestring", 3.0),
        ("red shoes for running", 2.0),
        ("red shows", 100.0),
        ("bright red shoes", 500.0),
    )
    got = await suggest(search, "red shoe", d, limit=2)
    assert texts(got) == ["red shoestring", "red shoes for running"]
    assert [s.match_type for s in got] == [MatchType.PREFIX, MatchType.PREFIX]
    assert [highlighted(s) for s in got] == [["red", "shoe"], ["red", "shoe"]]
    # the exact phrase leads even when lighter than the prefixes
    exact = await suggest(search, "red shoes", d, limit=2)
    assert texts(exact) == ["red shoes", "red shoestring"]
    assert [s.match_type for s in exact] == [MatchType.EXACT, MatchType.PREFIX]
    for prefix, limit in [("red shoe", 2), ("red shoes", 2)]:
        assert [
            (s.phrase.phrase, s.match_type, s.score)
            for s in await suggest(search, prefix, d, limit=limit)
        ] == await single_statement(pg_pool, prefix, d, limit)


async def test_an_unfilled_limit_goes_on_to_fuzzy_then_mid_phrase(
    ctx: Context, search: SearchContext, pg_pool: asyncpg.Pool
) -> None:
    d = unique_id("tf")
    await add(
        ctx,
        d,
        ("garden hose", 1.0),
        ("garden hoes", 30.0),
        ("garden house plants", 20.0),
        ("long garden hose reel", 900.0),
        ("gardens hose", 60.0),
        ("hose garden", 1000.0),
    )
    got = await suggest(search, "garden hose", d)
    assert [(s.phrase.phrase, s.match_type) for s in got] == [
        ("garden hose", MatchType.EXACT),
        ("gardens hose", MatchType.FUZZY),
        ("garden hoes", MatchType.FUZZY),
        ("garden house plants", MatchType.FUZZY),
        ("long garden hose reel", MatchType.MID_PHRASE),
    ]
    assert [s.score for s in got] == sorted((s.score for s in got), reverse=True)
    # a limit that the fuzzy tier fills leaves the mid-phrase one out
    assert texts(await suggest(search, "garden hose", d, limit=3)) == texts(got)[:3]
    # a complete word (a space after it) is not a prefix of a longer one
    assert texts(await suggest(search, "hose ", d, match_types=[MatchType.PREFIX])) == [
        "hose garden"
    ]
    for prefix in ["garden hose", "garden ho", "gardn hose", "garden hose ", "hose", "hose g"]:
        for limit in (1, 3, 10):
            assert [
                (s.phrase.phrase, s.match_type, s.score)
                for s in await suggest(search, prefix, d, limit=limit)
            ] == await single_statement(pg_pool, prefix, d, limit), (prefix, limit)


async def test_a_short_word_looks_mid_phrase_only_among_the_heaviest(
    ctx: Context, search: SearchContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = unique_id("th")
    # 80 words starting "zqv": more than a short word's candidate set may hold for the index
    await add(ctx, d, *[(f"lead zqv{i:02d}x", float(i + 1)) for i in range(80)])
    got = await suggest(search, "zq", d)
    assert texts(got) == [f"lead zqv{i:02d}x" for i in range(79, 69, -1)]
    assert {s.match_type for s in got} == {MatchType.MID_PHRASE}
    assert [highlighted(s) for s in got[:1]] == [["zq"]]
    monkeypatch.setattr(matching, "MID_SCAN_PHRASES", 3)
    assert texts(await suggest(search, "zq", d)) == [f"lead zqv{i:02d}x" for i in range(79, 76, -1)]


# --- resolve: the candidates function (migration 0015) --------------------------------------------


async def test_candidates_do_not_depend_on_or_change_the_session_settings(
    ctx: Context, pg_pool: asyncpg.Pool
) -> None:
    d = unique_id("cs")
    await add(ctx, d, "waterproof jacket")
    typed = matching.typed_words("watrprof ", None, True)
    async with pg_pool.acquire() as conn:
        # thresholds no candidate passes, and plans free to scan: the function brings its own
        await conn.execute(
            "SELECT set_config('pg_trgm.similarity_threshold', '0.99', false),"
            " set_config('plan_cache_mode', 'force_custom_plan', false)"
        )
        found = await matching.resolve(conn, typed)
        assert found[0]["waterproof"] == matching.Candidate(2, len("waterproof"))
        assert await conn.fetchval("SELECT current_setting('pg_trgm.similarity_threshold')") == (
            "0.99"
        )
        assert await conn.fetchval("SELECT current_setting('enable_seqscan')") == "on"


async def test_candidates_of_a_whole_word_differ_in_length_by_at_most_its_edits(
    ctx: Context, pg_pool: asyncpg.Pool
) -> None:
    d = unique_id("cl")
    await add(ctx, d, "blue socks", "blueberry jam", "glue stick")
    async with pg_pool.acquire() as conn:
        [whole] = await matching.resolve(conn, matching.typed_words("bleu ", None, True))
        [prefix] = await matching.resolve(conn, matching.typed_words("bleu", None, True))
    # "blueberry" shares the keys of its beginning with "bleu", but as a whole word it is five
    # edits away; as the beginning of the word being typed it is one
    assert whole["blue"] == matching.Candidate(1, 4) and "blueberry" not in whole
    assert prefix["blueberry"] == matching.Candidate(1, 4)


async def test_a_long_word_with_one_typo_allowed_is_found_by_trigrams(
    ctx: Context, search: SearchContext
) -> None:
    d = unique_id("ct")
    await add(ctx, d, "waterproof jacket")
    # longer than the keys reach (8 characters), one typo: only the trigram index finds it
    got = await suggest(search, "watreproof jack", d, max_edits=1)
    assert texts(got) == ["waterproof jacket"]
    assert [(s.typed_word, s.edits) for s in got[0].spans] == [("watreproof", 1), ("jack", 0)]


def test_index_positions_take_up_to_three_words_with_few_candidates() -> None:
    def sizes(*n: int) -> list[dict[str, matching.Candidate]]:
        return [{f"w{i}": matching.Candidate(0, 1) for i in range(k)} for k in n]

    assert matching.index_positions(sizes(9, 98)) == [0, 1]
    assert matching.index_positions(sizes(400, 5, 300, 2)) == [3, 1, 2]
    # a word with many candidates is looked up only when no word has few
    assert matching.index_positions(sizes(9, 301)) == [0]
    assert matching.index_positions(sizes(900, 400)) == [1]


async def test_two_typos_sharing_few_trigrams_are_found_by_a_looser_lookup(
    ctx: Context, search: SearchContext
) -> None:
    d = unique_id("cf")
    await add(ctx, d, "gretral ronadeand lazail", "gretral rondo")
    # "rwnadaend" and "ronadeand" share too few trigrams for the first lookup (similarity
    # 0.18): with no candidate for it, Suggest looks again, more loosely
    [hit] = await suggest(search, "gretral rwnadaend laz", d)
    assert hit.phrase.phrase == "gretral ronadeand lazail" and hit.match_type == MatchType.FUZZY
    assert [(s.typed_word, s.edits) for s in hit.spans] == [
        ("gretral", 0),
        ("rwnadaend", 2),
        ("laz", 0),
    ]
    # the looser lookup still measures: three typos are not two
    assert await suggest(search, "gretral rwnadaenx laz", d) == []
