"""Ranking specs, score fusion, the choice of a search's ranking and the pure parts of learning
fusion weights from clicks (es_core.ranking: spec, fusion, choice, fit)."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.domain import Collection, Model
from es_core.errors import InvalidArgument
from es_core.evaluation.click_gains import MAX_POSITION_FACTOR, debiased_gains, ndcg_of_clicks
from es_core.fine_tuning.examples import Example
from es_core.ranking import fit
from es_core.ranking.choice import check_words, choose_ranking
from es_core.ranking.fit import (
    QueryCase,
    gate,
    mean_ndcg,
    rerank_shown,
    search_settings,
)
from es_core.ranking.fusion import (
    Candidate,
    boost_value,
    fused_scores,
    payload_value,
    ranked,
    standardised,
)
from es_core.ranking.ranked_search import RankedQuery, _Cursor, _cursor, _page
from es_core.ranking.spec import (
    MAX_BOOSTS,
    MAX_SIGNAL_FIELDS,
    VECTOR_RANKING,
    Boost,
    RankingSpec,
    SignalField,
    check_ranking_spec,
    check_signal_fields,
    live_spec,
    with_window,
)
from es_core.search.query import SearchHit
from tests.page_tokens import TOKENS

SETTINGS = Settings(data_dir=Path("/nonexistent"))
NOW = 1_700_000_000.0
HOUR = 3600.0
HYBRID = RankingSpec(method="hybrid")


def _collection(
    signals: tuple[tuple[str, str], ...] = (),
    live: RankingSpec | None = None,
    version: int | None = None,
) -> Collection:
    model = Model(
        model_id="m",
        name="m",
        version="1",
        dimensions=3,
        metric="cosine",
        aggregation="min",
        source="test:none",
    )
    return Collection(
        collection_id="c",
        model=model,
        table_name="items_c",
        state="blue",
        hnsw_m=16,
        hnsw_ef_construction=64,
        ranking_spec=None if live is None else live.to_json(),
        ranking_version=version,
        signal_fields=tuple({"field": f, "kind": k} for f, k in signals),
    )


SIGNALS = _collection((("pop", "number"), ("published", "timestamp"), ("stats.sales", "number")))


def _refused_field(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    violations = error.value.violations
    assert len(violations) == 1, violations
    assert error.value.message.startswith(violations[0].field + ": ")
    return violations[0].field


def _ids(pairs: list[tuple[float, Candidate]]) -> list[str]:
    return [c.object_id for _, c in pairs]


def _z(values: list[float]) -> list[float]:
    mean, std = statistics.fmean(values), statistics.pstdev(values)
    return [(v - mean) / std for v in values]


# --- standardised scores --------------------------------------------------------------------------


def test_standardised_gives_z_scores_over_the_pool() -> None:
    z = standardised(np.array([1.0, 2.0, 3.0, 6.0]))
    assert z == pytest.approx(_z([1.0, 2.0, 3.0, 6.0]), abs=1e-12)
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-12)
    assert float(z.std()) == pytest.approx(1.0, abs=1e-12)


def test_standardised_constant_or_empty_values_are_zeros() -> None:
    assert standardised(np.array([4.2, 4.2, 4.2])).tolist() == [0.0, 0.0, 0.0]
    assert standardised(np.array([7.0])).tolist() == [0.0]
    assert standardised(np.zeros(0)).tolist() == []


# --- weighted fusion ------------------------------------------------------------------------------

# Vector order (nearest first) a, b, c; BM25 order c, b, a.
POOL = [
    Candidate("a", distance=0.1, lexical=0.0),
    Candidate("b", distance=0.2, lexical=5.0),
    Candidate("c", distance=0.4, lexical=9.0),
]


def test_a_pure_lexical_weight_orders_by_bm25_and_a_pure_vector_weight_by_distance() -> None:
    lexical_only = replace(HYBRID, vector_weight=0.0, lexical_weight=1.0)
    vector_only = replace(HYBRID, vector_weight=1.0, lexical_weight=0.0)
    assert _ids(ranked(POOL, lexical_only, NOW)) == ["c", "b", "a"]
    assert _ids(ranked(POOL, vector_only, NOW)) == ["a", "b", "c"]


def test_weighted_fusion_sums_the_weighted_z_scores() -> None:
    spec = replace(HYBRID, vector_weight=0.75, lexical_weight=0.25)
    similarity = _z([-c.distance for c in POOL])
    lexical = _z([c.lexical for c in POOL])
    expected = [0.75 * s + 0.25 * w for s, w in zip(similarity, lexical, strict=True)]
    assert fused_scores(POOL, spec, NOW).tolist() == pytest.approx(expected, abs=1e-12)
    # Scales never matter: BM25 times 1000 and distances shifted give the same scores.
    scaled = [Candidate(c.object_id, c.distance + 3.0, c.lexical * 1000) for c in POOL]
    assert fused_scores(scaled, spec, NOW).tolist() == pytest.approx(expected, abs=1e-9)


def test_fused_scores_of_an_empty_pool() -> None:
    assert fused_scores([], HYBRID, NOW).tolist() == []
    assert ranked([], HYBRID, NOW) == []


def test_ranked_breaks_ties_by_object_id() -> None:
    same = [Candidate(i, distance=0.3, lexical=2.0) for i in ("m", "c", "x", "a")]
    result = ranked(same, HYBRID, NOW)
    assert _ids(result) == ["a", "c", "m", "x"]
    assert [s for s, _ in result] == [0.0] * 4
    rrf = replace(HYBRID, fusion="rrf", vector_weight=1.0, lexical_weight=1.0)
    tied = [Candidate(i, 0.3, 2.0, vector_rank=r) for i, r in (("z", 1), ("b", None), ("k", 1))]
    assert _ids(ranked(tied, rrf, NOW)) == ["k", "z", "b"]


# --- reciprocal-rank fusion -----------------------------------------------------------------------


def _rrf(k: float = 60.0, **weights: float) -> RankingSpec:
    return replace(
        HYBRID,
        fusion="rrf",
        rrf_k=k,
        vector_weight=weights.get("vector", 1.0),
        lexical_weight=weights.get("lexical", 1.0),
    )


def test_rrf_scores_exactly_and_a_missing_list_contributes_nothing() -> None:
    pool = [
        Candidate("a", 0.1, 0.0, vector_rank=1),
        Candidate("b", 0.2, 3.0, vector_rank=2, lexical_rank=1),
        Candidate("c", 0.9, 2.0, lexical_rank=2),
    ]
    scores = fused_scores(pool, _rrf(), NOW).tolist()
    assert scores == pytest.approx([1 / 61, 1 / 62 + 1 / 61, 1 / 62], abs=1e-15)
    assert _ids(ranked(pool, _rrf(), NOW)) == ["b", "a", "c"]
    # Raw scores play no part: only ranks do.
    moved = [replace(c, distance=c.distance * 7, lexical=c.lexical + 100) for c in pool]
    assert fused_scores(moved, _rrf(), NOW).tolist() == pytest.approx(scores, abs=1e-15)
    weighted = fused_scores(pool, _rrf(vector=2.0, lexical=0.5), NOW).tolist()
    assert weighted == pytest.approx([2 / 61, 2 / 62 + 0.5 / 61, 0.5 / 62], abs=1e-15)


def test_rrf_k_decides_between_one_top_rank_and_two_middling_ones() -> None:
    pool = [
        Candidate("top", 0.1, 0.0, vector_rank=1),
        Candidate("both", 0.4, 1.0, vector_rank=4, lexical_rank=4),
    ]
    # k = 1: 1/2 against 2/5; k = 60: 1/61 against 2/64.
    assert _ids(ranked(pool, _rrf(k=1.0), NOW)) == ["top", "both"]
    assert _ids(ranked(pool, _rrf(k=60.0), NOW)) == ["both", "top"]
    assert fused_scores(pool, _rrf(k=1.0), NOW).tolist() == pytest.approx([1 / 2, 2 / 5])


def test_rrf_boosts_rank_the_items_that_have_the_field() -> None:
    spec = replace(_rrf(), boosts=(Boost("pop", "log", 1.0),))
    pool = [
        Candidate("a", 0.1, 0.0, {"pop": 5}, vector_rank=1),
        Candidate("b", 0.2, 0.0, {}, vector_rank=2),
        Candidate("c", 0.3, 0.0, {"pop": 10}, vector_rank=3),
    ]
    scores = fused_scores(pool, spec, NOW).tolist()
    assert scores == pytest.approx([1 / 61 + 1 / 62, 1 / 62, 1 / 63 + 1 / 61], abs=1e-15)


# --- boosts ---------------------------------------------------------------------------------------


def test_log_and_linear_boosts_of_a_number_field() -> None:
    log, linear = Boost("pop", "log", 1.0), Boost("stats.sales", "linear", 1.0)
    assert boost_value(log, {"pop": 99}, NOW) == pytest.approx(math.log(100))
    assert boost_value(log, {"pop": 0.5}, NOW) == pytest.approx(math.log1p(0.5))
    assert boost_value(log, {"pop": -7}, NOW) == 0.0  # negatives count as 0
    assert boost_value(linear, {"stats": {"sales": -2.5}}, NOW) == -2.5
    assert boost_value(linear, {"stats": {"sales": 12}}, NOW) == 12.0
    for payload in (
        {},
        {"pop": "12"},
        {"pop": True},
        {"pop": None},
        {"pop": [1]},
        {"pop": float("nan")},
        {"pop": float("inf")},
    ):
        assert boost_value(log, payload, NOW) is None, payload
    assert boost_value(linear, {"stats": 3}, NOW) is None
    assert payload_value({"a": {"b": {"c": 1}}}, "a.b.c") == 1
    assert payload_value({"a": {"b": 1}}, "a.b.c") is None


def test_decay_halves_the_boost_at_each_half_life() -> None:
    decay = Boost("published", "decay", 1.0, half_life_seconds=10 * HOUR)
    assert boost_value(decay, {"published": NOW}, NOW) == 1.0
    assert boost_value(decay, {"published": NOW - 10 * HOUR}, NOW) == pytest.approx(0.5)
    assert boost_value(decay, {"published": NOW - 20 * HOUR}, NOW) == pytest.approx(0.25)
    assert boost_value(decay, {"published": int(NOW) - 36000}, NOW) == pytest.approx(0.5)
    # A moment in the future counts as fresh, not as more than fresh.
    assert boost_value(decay, {"published": NOW + 99 * HOUR}, NOW) == 1.0


def test_decay_reads_iso_strings_like_epoch_seconds() -> None:
    decay = Boost("published", "decay", 1.0, half_life_seconds=10 * HOUR)
    moment = datetime.fromtimestamp(NOW - 10 * HOUR, UTC)
    for text in (
        moment.isoformat(),
        moment.isoformat().replace("+00:00", "Z"),
        moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(),
    ):
        assert boost_value(decay, {"published": text}, NOW) == pytest.approx(0.5), text
    for bad in ("yesterday", "", True, None, {"t": 1}, float("nan")):
        assert boost_value(decay, {"published": bad}, NOW) is None, bad
    assert boost_value(decay, {}, NOW) is None


@pytest.fixture
def new_york_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is not UTC while the test runs."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_a_timestamp_without_offset_is_utc_whatever_the_local_zone(new_york_time: None) -> None:
    """ranking.proto: "an ISO 8601 string (UTC when no offset)"."""
    decay = Boost("published", "decay", 1.0, half_life_seconds=10 * HOUR)
    naive = datetime.fromtimestamp(NOW - 10 * HOUR, UTC).replace(tzinfo=None).isoformat()
    assert boost_value(decay, {"published": naive}, NOW) == pytest.approx(0.5)


def test_weighted_boosts_are_standardised_and_missing_values_count_zero() -> None:
    spec = replace(
        HYBRID, vector_weight=0.0, lexical_weight=0.0, boosts=(Boost("pop", "linear", 2.0),)
    )
    pool = [
        Candidate("a", 0.2, 1.0, {"pop": 4}),
        Candidate("b", 0.2, 1.0, {}),
        Candidate("c", 0.2, 1.0, {"pop": "many"}),
        Candidate("d", 0.2, 1.0, {"pop": 8}),
    ]
    expected = [2.0 * z for z in _z([4.0, 0.0, 0.0, 8.0])]
    assert fused_scores(pool, spec, NOW).tolist() == pytest.approx(expected, abs=1e-12)
    assert _ids(ranked(pool, spec, NOW)) == ["d", "a", "b", "c"]


def test_a_log_boost_orders_otherwise_equal_items_by_popularity() -> None:
    spec = replace(HYBRID, boosts=(Boost("pop", "log", 0.1),))
    pool = [Candidate(f"i{p}", 0.3, 1.5, {"pop": p}) for p in (10, 1000, 1, 100)]
    assert _ids(ranked(pool, spec, NOW)) == ["i1000", "i100", "i10", "i1"]


def test_a_decay_boost_orders_otherwise_equal_items_newest_first() -> None:
    spec = replace(HYBRID, boosts=(Boost("published", "decay", 0.1, 7 * 24 * HOUR),))
    ages = {"old": 400, "new": 1, "mid": 10, "older": 100}
    pool = [Candidate(k, 0.3, 1.5, {"published": NOW - d * 24 * HOUR}) for k, d in ages.items()]
    assert _ids(ranked(pool, spec, NOW)) == ["new", "mid", "older", "old"]


def test_later_pages_of_a_hybrid_ranking_score_boosts_at_the_first_pages_moment() -> None:
    """Recency boosts scored at each page's own moment move every score a little between
    pages, and the (score, object_id) cursor then repeats or skips items."""
    spec = replace(HYBRID, boosts=(Boost("published", "decay", 0.5, 30 * 24 * HOUR),))
    pool = [
        Candidate(f"o{i}", 0.05 * i, float(i % 3), {"published": NOW - 1.7 * 24 * HOUR * i})
        for i in range(12)
    ]
    drift = fused_scores(pool, spec, NOW + 1.234) - fused_scores(pool, spec, NOW)
    assert np.abs(drift).max() < 1e-12  # the same ranking up to rounding...
    assert (drift != 0).any()  # ...but not the same floats: a cursor needs the same moment

    collection = _collection()
    query = RankedQuery(spec=spec, words="w", limit=2)
    hits = [SearchHit(f"o{i}", 0.1, score=1.0 - i) for i in range(3)]
    page, token = _page(query, collection, hits, 4, TOKENS, t=NOW, w=30)
    assert [h.object_id for h in page] == ["o0", "o1"]
    resumed = _cursor(replace(query, page_token=token), collection, TOKENS)
    assert resumed == _Cursor((0.0, "o1"), 6, NOW, 30)
    assert _cursor(query, collection, TOKENS) == _Cursor()
    scope = query.scope(collection.collection_id)
    for name, bad in (
        ("t", "soon"),
        ("t", True),
        ("t", [1]),
        ("w", 0),
        ("w", 2.5),
        ("w", "9"),
        ("w", True),
        ("n", -1),
        ("n", 2**31),
        ("k", ["0.5", "o1"]),
    ):
        cursor = {"k": [0.0, "o1"], "n": 6, "col": "c", name: bad}
        forged = TOKENS.encode(cursor, scope)
        with pytest.raises(InvalidArgument) as info:
            _cursor(replace(query, page_token=forged), collection, TOKENS)
        assert _refused_field(info) == "page_token"


# --- ranking specs --------------------------------------------------------------------------------


def _spec_refusal(spec: RankingSpec, path: str = "ranking") -> str:
    with pytest.raises(InvalidArgument) as info:
        check_ranking_spec(spec, SIGNALS, SETTINGS, path)
    return _refused_field(info)


def _boosted(*boosts: Boost, **changes: Any) -> RankingSpec:
    return replace(HYBRID, boosts=boosts, **changes)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (replace(HYBRID, method="bm25"), "ranking.method"),  # type: ignore[arg-type]
        (replace(HYBRID, fusion="sum"), "ranking.fusion"),  # type: ignore[arg-type]
        (replace(HYBRID, vector_weight=-0.1), "ranking.vector_weight"),
        (replace(HYBRID, lexical_weight=-1.0), "ranking.lexical_weight"),
        (replace(HYBRID, vector_weight=math.nan), "ranking.vector_weight"),
        (replace(HYBRID, lexical_weight=math.inf), "ranking.lexical_weight"),
        (replace(VECTOR_RANKING, lexical_weight=math.nan), "ranking.lexical_weight"),
        (replace(HYBRID, window=-1), "ranking.window"),
        (replace(HYBRID, window=SETTINGS.max_ranking_window + 1), "ranking.window"),
        (replace(HYBRID, rrf_k=0.0), "ranking.rrf_k"),
        (replace(HYBRID, rrf_k=-60.0), "ranking.rrf_k"),
        (replace(HYBRID, rrf_k=math.nan), "ranking.rrf_k"),
        (replace(HYBRID, vector_weight=0.0, lexical_weight=0.0), "ranking.vector_weight"),
        (_boosted(Boost("nope", "log", 1.0)), "ranking.boosts[0].field"),
        (_boosted(Boost("pop", "log", 1.0), Boost("x", "log", 1.0)), "ranking.boosts[1].field"),
        (_boosted(Boost("pop", "decay", 1.0, HOUR)), "ranking.boosts[0].function"),
        (_boosted(Boost("published", "log", 1.0)), "ranking.boosts[0].function"),
        (_boosted(Boost("published", "linear", 1.0)), "ranking.boosts[0].function"),
        (_boosted(Boost("published", "decay", 1.0)), "ranking.boosts[0].half_life_seconds"),
        (
            _boosted(Boost("published", "decay", 1.0, -HOUR)),
            "ranking.boosts[0].half_life_seconds",
        ),
        (
            _boosted(Boost("published", "decay", 1.0, math.inf)),
            "ranking.boosts[0].half_life_seconds",
        ),
        (_boosted(Boost("pop", "log", -1.0)), "ranking.boosts[0].weight"),
        (_boosted(Boost("pop", "log", math.nan)), "ranking.boosts[0].weight"),
        (
            _boosted(Boost("pop", "log", 1.0), Boost("pop", "linear", 1.0)),
            "ranking.boosts[1].field",
        ),
        (replace(VECTOR_RANKING, boosts=(Boost("pop", "log", 1.0),)), "ranking.boosts"),
        (
            RankingSpec(method="lexical", boosts=(Boost("pop", "log", 1.0),)),
            "ranking.boosts",
        ),
        (_boosted(*[Boost("pop", "log", 1.0)] * (MAX_BOOSTS + 1)), "ranking.boosts"),
    ],
)
def test_check_ranking_spec_names_the_field_it_refuses(spec: RankingSpec, field: str) -> None:
    assert _spec_refusal(spec) == field


def test_check_ranking_spec_uses_the_callers_field_path() -> None:
    assert _spec_refusal(replace(HYBRID, lexical_weight=-1.0), "spec") == "spec.lexical_weight"
    assert _spec_refusal(_boosted(Boost("zz", "log", 1.0)), "spec") == "spec.boosts[0].field"


def test_check_ranking_spec_accepts_what_is_allowed() -> None:
    for spec in (
        VECTOR_RANKING,
        RankingSpec(method="lexical", vector_weight=0.0, lexical_weight=0.0),
        replace(HYBRID, vector_weight=0.0, lexical_weight=1.0, window=0),
        replace(HYBRID, window=SETTINGS.max_ranking_window, fusion="rrf", rrf_k=0.5),
        _boosted(
            Boost("pop", "log", 0.0),
            Boost("stats.sales", "linear", 2.0),
            Boost("published", "decay", 0.3, 3600.0),
        ),
    ):
        check_ranking_spec(spec, SIGNALS, SETTINGS)
    # A boost on a field another collection declared is refused on this one.
    with pytest.raises(InvalidArgument):
        check_ranking_spec(_boosted(Boost("pop", "log", 1.0)), _collection(), SETTINGS)


def test_spec_json_round_trip_and_window_default() -> None:
    spec = _boosted(
        Boost("pop", "log", 0.2), Boost("published", "decay", 0.1, 60.0), fusion="rrf", rrf_k=7.0
    )
    assert RankingSpec.from_json(spec.to_json()) == spec
    assert with_window(spec, SETTINGS).window == SETTINGS.ranking_window
    assert with_window(replace(spec, window=7), SETTINGS).window == 7
    assert live_spec(_collection()) == VECTOR_RANKING
    assert live_spec(_collection(live=spec, version=4)) == spec


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ([SignalField("", "number")], "fields[0].field"),
        ([SignalField("a..b", "number")], "fields[0].field"),
        ([SignalField(".".join(["s"] * 17), "number")], "fields[0].field"),
        ([SignalField("x" * 129, "number")], "fields[0].field"),
        ([SignalField("a\x00b", "number")], "fields[0].field"),
        ([SignalField("pop", "number"), SignalField("pop", "timestamp")], "fields[1].field"),
        ([SignalField("pop", "string")], "fields[0].kind"),  # type: ignore[arg-type]
        ([SignalField(f"f{i}", "number") for i in range(MAX_SIGNAL_FIELDS + 1)], "fields"),
    ],
)
def test_check_signal_fields_names_the_field_it_refuses(
    fields: list[SignalField], field: str
) -> None:
    with pytest.raises(InvalidArgument) as info:
        check_signal_fields(fields)
    assert _refused_field(info) == field


def test_check_signal_fields_accepts_dotted_paths_and_no_fields() -> None:
    check_signal_fields([])
    check_signal_fields(
        [
            SignalField("stats.sales", "number"),
            SignalField(".".join(["s"] * 16), "timestamp"),
            SignalField("x" * 128, "number"),
        ]
    )


# --- choosing a search's ranking ------------------------------------------------------------------

LIVE_HYBRID = _collection(live=replace(HYBRID, lexical_weight=0.4, vector_weight=0.6), version=3)
LIVE_LEXICAL = _collection(live=RankingSpec(method="lexical"), version=5)


def _choose(
    requested: RankingSpec | None,
    collection: Collection = LIVE_HYBRID,
    words: str = "",
    sorted_by_field: bool = False,
    max_distance: float | None = None,
) -> tuple[RankingSpec, int]:
    chosen = choose_ranking(
        requested,
        collection,
        SETTINGS,
        words=words,
        sorted_by_field=sorted_by_field,
        max_distance=max_distance,
    )
    return chosen.spec, chosen.version


def test_the_live_spec_ranks_requests_that_ask_for_none() -> None:
    assert _choose(None, words="red shoes") == (live_spec(LIVE_HYBRID), 3)
    assert _choose(None, words="red shoes", max_distance=0.5) == (live_spec(LIVE_HYBRID), 3)
    assert _choose(None, LIVE_LEXICAL, words="red") == (RankingSpec(method="lexical"), 5)
    assert _choose(None, _collection(), words="red") == (VECTOR_RANKING, 0)


def test_a_hybrid_collection_answers_vector_only_and_sorted_requests_by_vector() -> None:
    assert _choose(None, words="") == (VECTOR_RANKING, 0)
    assert _choose(None, words="red shoes", sorted_by_field=True) == (VECTOR_RANKING, 0)
    assert _choose(None, LIVE_LEXICAL, words="") == (VECTOR_RANKING, 0)
    assert _choose(None, LIVE_LEXICAL, words="red", max_distance=0.3) == (VECTOR_RANKING, 0)


def test_a_requested_spec_is_used_as_it_is_with_version_zero() -> None:
    lexical = RankingSpec(method="lexical")
    assert _choose(lexical, words="red") == (lexical, 0)
    assert _choose(VECTOR_RANKING, words="", sorted_by_field=True) == (VECTOR_RANKING, 0)
    assert _choose(HYBRID, _collection(), words="red", max_distance=0.2) == (HYBRID, 0)


def _choice_refusal(requested: RankingSpec, **kwargs: Any) -> str:
    with pytest.raises(InvalidArgument) as info:
        _choose(requested, **kwargs)
    return _refused_field(info)


def test_requests_whose_ranking_cannot_run_are_refused_naming_the_field() -> None:
    assert _choice_refusal(HYBRID, words="") == "ranking.method"
    assert _choice_refusal(RankingSpec(method="lexical"), words="") == "ranking.method"
    assert _choice_refusal(HYBRID, words="red", sorted_by_field=True) == "sort"
    assert _choice_refusal(RankingSpec(method="lexical"), words="red", sorted_by_field=True) == (
        "sort"
    )
    assert (
        _choice_refusal(RankingSpec(method="lexical"), words="red", max_distance=0.4)
        == "max_distance"
    )
    # The spec is checked first, against the collection's signal fields.
    assert _choice_refusal(replace(HYBRID, lexical_weight=-2.0), words="") == (
        "ranking.lexical_weight"
    )
    assert _choice_refusal(_boosted(Boost("pop", "log", 1.0)), words="red") == (
        "ranking.boosts[0].field"
    )


def test_check_words_takes_the_query_text_else_the_lexical_query() -> None:
    assert check_words("  red shoes ", "", 100) == "red shoes"
    assert check_words("", " blue hat ", 100) == "blue hat"
    assert check_words("", "", 100) == ""
    for text, lexical, field in (
        ("red", "red", "lexical_query"),
        ("", "x" * 101, "lexical_query"),
        ("", "a\x00b", "lexical_query"),
        ("a\x00b", "", "query_text"),
        ("x" * 101, "", "query_text"),
    ):
        with pytest.raises(InvalidArgument) as info:
            check_words(text, lexical, 100)
        assert _refused_field(info) == field, (text[:5], lexical[:5])


# --- learning fusion weights: NDCG of clicks, re-ranking, the search, the gate -------------------


def test_ndcg_of_clicks() -> None:
    assert ndcg_of_clicks(["a", "b", "c"], {"a": 1.0}) == 1.0
    assert ndcg_of_clicks(["a", "b", "c"], {"b": 1.0}) == pytest.approx(1 / math.log2(3))
    assert ndcg_of_clicks(["a", "b", "c"], {}) == 0.0
    # Gains weigh: a purchase (3) above a click (1) is the ideal order.
    ideal = 3 + 1 / math.log2(3)
    assert ndcg_of_clicks(["p", "c"], {"p": 3.0, "c": 1.0}) == pytest.approx(1.0)
    assert ndcg_of_clicks(["c", "p"], {"p": 3.0, "c": 1.0}) == pytest.approx(
        (1 + 3 / math.log2(3)) / ideal
    )
    # Only the first k count.
    assert ndcg_of_clicks(["a", "b", "c"], {"c": 1.0}, k=2) == 0.0


def _case(
    rows: list[tuple[str, float, float, dict[str, Any]]],
    clicked: dict[str, float],
    shown: list[str] | None = None,
    query: str = "q",
) -> QueryCase:
    pool = [Candidate(o, d, lex, payload) for o, d, lex, payload in rows]
    return QueryCase(query, pool, shown or [o for o, *_ in rows], clicked)


def test_rerank_shown_puts_items_outside_the_pool_last() -> None:
    case = _case(
        [("a", 0.1, 0.0, {}), ("b", 0.2, 5.0, {}), ("c", 0.4, 9.0, {})],
        {"z": 1.0},
        shown=["y", "c", "z", "a", "b"],
    )
    assert rerank_shown(case, VECTOR_RANKING, NOW) == ["a", "b", "c", "y", "z"]
    lexical_heavy = replace(HYBRID, vector_weight=0.0, lexical_weight=1.0)
    assert rerank_shown(case, lexical_heavy, NOW) == ["c", "b", "a", "y", "z"]
    # The clicked item fell out of the pool: it ranks last among the five shown.
    assert mean_ndcg([case], VECTOR_RANKING, NOW) == pytest.approx(1 / math.log2(6))


def _lexical_clicks(n: int = 6) -> list[QueryCase]:
    """Queries whose clicked item is the lexically best and the vector-farthest of four."""
    cases = []
    for i in range(n):
        rows = [
            (f"q{i}-near", 0.10, 1.0, {}),
            (f"q{i}-mid", 0.20, 2.0, {}),
            (f"q{i}-far", 0.30, 2.5, {}),
            (f"q{i}-words", 0.35 + 0.01 * i, 9.0, {}),
        ]
        cases.append(_case(rows, {f"q{i}-words": 1.0}, query=f"q{i}"))
    return cases


def _vector_clicks(n: int = 6) -> list[QueryCase]:
    """Queries whose clicked item is the nearest and holds none of the words."""
    cases = []
    for i in range(n):
        rows = [
            (f"v{i}-near", 0.05, 0.0, {}),
            (f"v{i}-a", 0.40, 6.0, {}),
            (f"v{i}-b", 0.50, 7.0, {}),
            (f"v{i}-c", 0.60 + 0.01 * i, 8.0, {}),
        ]
        cases.append(_case(rows, {f"v{i}-near": 1.0}, query=f"v{i}"))
    return cases


def test_search_settings_picks_a_lexical_share_that_puts_the_clicked_items_first() -> None:
    cases = _lexical_clicks()
    spec, value = search_settings(VECTOR_RANKING, _collection(), cases, NOW)
    assert value == 1.0
    assert mean_ndcg(cases, spec, NOW) == 1.0
    assert mean_ndcg(cases, VECTOR_RANKING, NOW) < 0.5
    assert spec.method == "hybrid" and spec.fusion == "weighted" and spec.boosts == ()
    assert spec.vector_weight + spec.lexical_weight == pytest.approx(1.0)
    assert spec.lexical_weight > 0.5
    # Of the shares that rank every click first, the one nearest an even split was taken.
    less = replace(
        spec, lexical_weight=spec.lexical_weight - 0.05, vector_weight=spec.vector_weight + 0.05
    )
    assert mean_ndcg(cases, less, NOW) < 1.0

    vector_spec, vector_value = search_settings(
        VECTOR_RANKING, _collection(), _vector_clicks(), NOW
    )
    assert vector_value == 1.0
    assert vector_spec.lexical_weight < 0.5


def test_search_settings_weighs_a_declared_signal_when_it_explains_the_clicks() -> None:
    """Vector and words disagree evenly; the clicked item is the popular one."""
    cases = []
    for i in range(5):
        rows = [
            (f"a{i}", 0.25, 1.0, {"pop": 1}),
            (f"b{i}", 0.50, 2.0, {"pop": 1000}),
            (f"c{i}", 0.75, 3.0, {"pop": 1}),
        ]
        cases.append(_case(rows, {f"b{i}": 1.0}, query=f"p{i}"))
    collection = _collection((("pop", "number"), ("published", "timestamp")))
    spec, value = search_settings(VECTOR_RANKING, collection, cases, NOW)
    assert value == 1.0
    assert spec.boosts == (Boost("pop", "log", 0.05),)  # the smallest weight that does it
    assert (spec.vector_weight, spec.lexical_weight) == (0.5, 0.5)
    # Nothing explained by "published" (no item has it): no boost on it.
    assert mean_ndcg(cases, replace(spec, boosts=()), NOW) < 1.0


def test_search_settings_keeps_the_live_fusion_and_boost_functions() -> None:
    collection = _collection((("published", "timestamp"),))
    live = _boosted(Boost("published", "decay", 0.0, 99.0), fusion="rrf", rrf_k=10.0, window=30)
    spec, _ = search_settings(live, collection, _lexical_clicks(), NOW)
    assert (spec.fusion, spec.rrf_k, spec.window) == ("rrf", 10.0, 30)


def test_the_gate_refuses_a_setting_worse_on_held_out_queries() -> None:
    # Training clicks say "words"; held-out clicks say "vector".
    train, heldout = _lexical_clicks(), _vector_clicks()
    best, train_value = search_settings(VECTOR_RANKING, _collection(), train, NOW)
    assert train_value > mean_ndcg(train, VECTOR_RANKING, NOW)
    passed, metrics = gate(best, VECTOR_RANKING, heldout, 0.005, NOW)
    assert passed is False
    assert metrics["heldout.ndcg@10"] < metrics["heldout.live.ndcg@10"] == 1.0
    assert set(metrics) == {"heldout.ndcg@10", "heldout.live.ndcg@10"}


def test_the_gate_passes_a_better_setting_only_beyond_the_margin() -> None:
    train, heldout = _lexical_clicks(6), _lexical_clicks(9)[6:]
    best, _ = search_settings(VECTOR_RANKING, _collection(), train, NOW)
    passed, metrics = gate(best, VECTOR_RANKING, heldout, 0.005, NOW)
    assert passed is True
    assert metrics["heldout.ndcg@10"] == 1.0
    gain = metrics["heldout.ndcg@10"] - metrics["heldout.live.ndcg@10"]
    assert gate(best, VECTOR_RANKING, heldout, gain + 0.01, NOW)[0] is False
    # A setting equal to the live one never passes, even with no margin.
    assert gate(best, best, heldout, 0.0, NOW)[0] is False
    # No held-out query: nothing to judge by, refused.
    assert gate(best, VECTOR_RANKING, [], 0.0, NOW)[0] is False


class _FakePool:
    """Stands in for asyncpg.Pool where fit_ranking only hands connections to patched calls."""

    def acquire(self) -> _FakePool:
        return self

    def transaction(self) -> _FakePool:
        return self

    async def __aenter__(self) -> _FakePool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


async def test_a_fit_whose_sessions_carry_no_query_vector_learns_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sessions registered through the clickstream API (not by a search) have no query vector,
    so no query gets a candidate pool: the fit must say so, not judge on empty sets (whose
    NaN figures PostgreSQL's jsonb refuses)."""
    collection = _collection()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sessions = [
        (
            Session(
                session_id=f"s{i}",
                results=[ShownResult(f"o{i}", 0), ShownResult(f"p{i}", 1)],
                query_text=f"query number {i}",
                create_time=start + timedelta(minutes=i),
                collection_id="c",
                events=[Event(f"e{i}", f"s{i}", f"p{i}", "click")],
            ),
            None,
        )
        for i in range(25)
    ]
    stored: list[dict[str, float]] = []

    async def get_collection(conn: Any, collection_id: str) -> Collection:
        return collection

    async def collection_sessions(conn: Any, collection_id: str, limit: int) -> Any:
        return sessions

    async def add_version(conn: Any, collection_id: str, spec: Any, origin: Any, **kw: Any) -> int:
        stored.append(kw["metrics"])
        return 1

    async def progress(fraction: float, message: str) -> bool:
        return True

    monkeypatch.setattr(fit, "get_collection", get_collection)
    monkeypatch.setattr(fit, "collection_sessions", collection_sessions)
    monkeypatch.setattr(fit.store, "add_version", add_version)
    settings = Settings(data_dir=Path("/nonexistent"), ranking_fit_min_sessions=20)
    outcome = await fit.fit_ranking(_FakePool(), settings, "c", "t", progress, NOW)  # type: ignore[arg-type]
    assert stored == [], "a version was stored with figures of no query"
    assert outcome.version is None and outcome.live is False and outcome.spec is None
    assert "nothing learned" in outcome.note and "query vector" in outcome.note
    assert all(math.isfinite(v) for v in outcome.metrics.values()), outcome.metrics


def test_clicks_are_weighted_by_the_inverse_chance_their_rank_was_looked_at() -> None:
    """A click at 0-based rank r counts (1 + r) ** eta times its weight: clicks on lower ranks
    are rarer for position alone, not for relevance. Unshown clicks keep their weight."""
    example = Example("q", {"c": 1.0, "a": 2.0, "z": 1.0}, (), ("a", "b", "c"), ("s1",))
    assert debiased_gains(example, 1.0) == {"a": 2.0, "c": 3.0, "z": 1.0}
    assert debiased_gains(example, 2.0) == {"a": 2.0, "c": 9.0, "z": 1.0}
    assert debiased_gains(example, 0.0) == {"a": 2.0, "c": 1.0, "z": 1.0}
    # The factor is clipped: a click at rank 30 counts no more than MAX_POSITION_FACTOR times.
    deep = Example("q", {"x": 1.0}, (), tuple(f"s{i}" for i in range(30)) + ("x",), ("s1",))
    assert debiased_gains(deep, 1.0) == {"x": MAX_POSITION_FACTOR}


def test_a_single_deep_click_keeps_its_weight_against_the_raw_ideal() -> None:
    """Normalised by its own weighted ideal, a query with one click would score the same
    whatever its weight; normalised by the raw ideal, a deep click that a setting brings to
    the top counts its position factor, and one left where it was shown counts as before."""
    gains = {"d": 5.0}  # one click of weight 1, shown at rank 4, eta 1
    assert ndcg_of_clicks(["d", "a"], gains) == 1.0
    assert ndcg_of_clicks(["d", "a"], gains, ideal=1.0) == 5.0
    shown = ["a", "b", "c", "e", "d"]
    assert ndcg_of_clicks(shown, gains, ideal=1.0) == pytest.approx(5.0 / math.log2(6))
    case = _case([("d", 0.1, 0.0, {})], gains, shown=["d"])
    assert mean_ndcg([case], VECTOR_RANKING, NOW) == 1.0
    assert mean_ndcg([replace(case, ideal=1.0)], VECTOR_RANKING, NOW) == 5.0
