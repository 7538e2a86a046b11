"""Lexical and hybrid ranking, boosts and ranking settings through gRPC, against the real stack.

The items (payload suite SUITE, unique per run; every search filters on it) carry a text and a
vector both: vectors sit at known cosine distances from the query vector Q, texts hold known
words, so each retriever's order is known. 24 "base" items mix the words "amber" and "harbor";
"rk-needle" alone holds the rare word RARE and is the farthest from Q; four "boost" items have
one text and one vector and differ only in their signal fields "pop" and "published".

The blue collection is shared with the other test files of the worker: its declared signal
fields get "pop" and "published" while this module runs and are put back afterwards; the one
test that changes its live ranking spec restores it in a ``finally``.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import grpc
import numpy as np
import numpy.typing as npt
import pytest
from google.protobuf import json_format

from embedding_studio.client import Client, from_struct
from embedding_studio.v1 import (
    clickstream_pb2,
    common_pb2,
    ranking_pb2,
    search_pb2,
    upsert_pb2,
)
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

Vec = npt.NDArray[Any]
R = ranking_pb2

DIMS = 384
SUITE = f"ranking_api_{uuid.uuid4().hex[:8]}"
WORDS = "amber harbor"
RARE = "zorblaxian"
NEEDLE = "rk-needle"
BOOSTED = ["rk-b0", "rk-b1", "rk-b2", "rk-b3"]
DAY = 24 * 3600.0
NOW = time.time()
# The stack's ES_RANKING_FIT_MIN_SESSIONS (its default: the test stack does not set it).
FIT_MIN_SESSIONS = 20
Q = np.zeros(DIMS)
Q[0] = 1.0
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def F(spec: dict[str, Any]) -> common_pb2.Filter:
    return json_format.ParseDict(spec, common_pb2.Filter())


def term(field: str, value: Any) -> dict[str, Any]:
    return {"term": {"field": field, "value": value}}


def mine(*clauses: dict[str, Any]) -> common_pb2.Filter:
    return F({"bool": {"must": [term("suite", SUITE), *clauses]}})


def at_distance(d: float, rng: np.random.Generator) -> Vec:
    """A float32 unit vector whose cosine distance from Q is d (0 <= d <= 2)."""
    w = rng.normal(size=DIMS)
    w[0] = 0.0
    w /= np.linalg.norm(w)
    c = 1.0 - d
    return (c * Q + math.sqrt(1.0 - c * c) * w).astype(np.float32)


def cos_dist(a: Vec, b: Vec) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return 1.0 - float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def vector_message(v: Vec) -> common_pb2.Vector:
    return common_pb2.Vector(values=[float(x) for x in v])


def iso(seconds: float, offset_hours: int = 0) -> str:
    return datetime.fromtimestamp(seconds, timezone(timedelta(hours=offset_hours))).isoformat()


class Items:
    """What was stored: texts, vectors and payloads by object id."""

    def __init__(self) -> None:
        rng = np.random.default_rng(11)
        self.texts: dict[str, str] = {}
        self.vectors: dict[str, Vec] = {}
        self.payloads: dict[str, dict[str, Any]] = {}
        levels = rng.permutation(24)
        self.base = [f"rk-{k:02d}" for k in range(24)]
        for k, oid in enumerate(self.base):
            words = ["amber"] * (k % 4) + ["harbor"] * ((k // 4) % 3) + ["meadow"] * (1 + k % 5)
            self.texts[oid] = " ".join(words)
            self.vectors[oid] = at_distance(0.05 + 0.04 * int(levels[k]), rng)
            published = NOW - (k + 1) * 2.5 * DAY
            formats = [published, int(published), iso(published).replace("+00:00", "Z")]
            formats.append(iso(published, 2))
            self.payloads[oid] = {
                "suite": SUITE,
                "group": "odd" if k % 2 else "even",
                "pop": (k * 7) % 11 + 1,
                "published": formats[k % 4],
            }
        self.texts[NEEDLE] = f"a {RARE} lantern"
        self.vectors[NEEDLE] = at_distance(1.5, rng)
        self.payloads[NEEDLE] = {"suite": SUITE, "group": "needle"}
        same = at_distance(0.3, rng)
        pops = [10, 1000, 1, 100]
        ages = [10, 400, 1, 100]  # days: b2 newest, then b0, b3, b1
        for i, oid in enumerate(BOOSTED):
            self.texts[oid] = "velvet teapot"
            self.vectors[oid] = same
            moment = NOW - ages[i] * DAY
            self.payloads[oid] = {
                "suite": SUITE,
                "group": "boost",
                "pop": pops[i],
                "published": [int(moment), iso(moment, -5), iso(moment), moment][i],
            }
        self.ids = [*self.base, NEEDLE, *BOOSTED]

    def with_words(self, *words: str) -> set[str]:
        return {o for o in self.ids if any(w in self.texts[o].split() for w in words)}

    def distances(self) -> dict[str, float]:
        return {o: cos_dist(Q, self.vectors[o]) for o in self.ids}


def upsert_and_wait(client: Client, items: list[dict[str, Any]]) -> None:
    task = client.upsert_items(items)
    final = client.wait_for_task(task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error


def settings_of(client: Client, collection_id: str = "") -> R.RankingSettings:
    request = R.GetRankingSettingsRequest(collection_id=collection_id)
    return client.ranking.GetRankingSettings(request, timeout=60).settings


def declare(client: Client, fields: list[R.SignalField]) -> R.RankingSettings:
    request = R.DeclareSignalFieldsRequest(fields=fields)
    return client.ranking.DeclareSignalFields(request, timeout=60).settings


def set_spec(client: Client, spec: R.RankingSpec) -> R.RankingSettings:
    return client.ranking.SetRankingSpec(R.SetRankingSpecRequest(spec=spec), timeout=60).settings


@pytest.fixture(scope="module")
def items(client: Client) -> Iterator[Items]:
    original = list(settings_of(client).signal_fields)
    mine_fields = [
        R.SignalField(field="pop", kind=R.SIGNAL_KIND_NUMBER),
        R.SignalField(field="published", kind=R.SIGNAL_KIND_TIMESTAMP),
    ]
    taken = {f.field: f.kind for f in original}
    for f in mine_fields:
        assert taken.get(f.field, f.kind) == f.kind, f"blue declares {f.field} otherwise"
    declared = declare(client, original + [f for f in mine_fields if f.field not in taken])
    assert {f.field for f in declared.signal_fields} >= {"pop", "published"}
    data = Items()
    try:
        upsert_and_wait(
            client,
            [
                {
                    "object_id": oid,
                    "payload": data.payloads[oid],
                    "parts": [
                        {
                            "part_id": "0",
                            "text": data.texts[oid],
                            "vector": [float(x) for x in data.vectors[oid]],
                        }
                    ],
                }
                for oid in data.ids
            ],
        )
        yield data
    finally:
        task = client.upsert.DeleteItems(upsert_pb2.DeleteItemsRequest(object_ids=data.ids)).task
        client.wait_for_task(task.task_id, timeout_seconds=300)
        declare(client, original)


def spec(method: int = R.RANKING_METHOD_HYBRID, **kw: Any) -> R.RankingSpec:
    return R.RankingSpec(method=method, **kw)


LEXICAL = spec(R.RANKING_METHOD_LEXICAL)
VECTOR = spec(R.RANKING_METHOD_VECTOR)
HYBRID = spec()


def request(
    ranking: R.RankingSpec | None = None,
    *,
    words: str = WORDS,
    text: str | None = None,
    filter: common_pb2.Filter | None = None,
    limit: int = 100,
    **kw: Any,
) -> search_pb2.SearchRequest:
    """A search of Q (or of ``text``) among this module's items; ``words``: its lexical_query."""
    message = search_pb2.SearchRequest(
        limit=limit, filter=filter if filter is not None else mine(), **kw
    )
    if text is not None:
        message.query_text = text
    else:
        message.query_vector.CopyFrom(vector_message(Q))
        message.lexical_query = words
    if ranking is not None:
        message.ranking.CopyFrom(ranking)
    return message


def search(client: Client, ranking: R.RankingSpec | None = None, **kw: Any) -> Any:
    return client.search.Search(request(ranking, **kw), timeout=120)


def ids(reply: Any) -> list[str]:
    return [r.object_id for r in reply.results]


def walk(client: Client, message: search_pb2.SearchRequest) -> list[list[Any]]:
    pages: list[list[Any]] = []
    while True:
        reply = client.search.Search(message, timeout=120)
        pages.append(list(reply.results))
        if not reply.next_page_token:
            return pages
        assert len(pages) < 100, "paging does not end"
        message.page_token = reply.next_page_token


def z(values: list[float]) -> npt.NDArray[np.float64]:
    array = np.asarray(values, dtype=np.float64)
    std = array.std()
    return np.zeros_like(array) if std == 0 else (array - array.mean()) / std


# --- lexical and hybrid search --------------------------------------------------------------------


def test_lexical_ranking_finds_the_rare_word_that_vector_ranking_ranks_last(
    client: Client, items: Items
) -> None:
    by_vector = search(client, VECTOR, words="")
    assert ids(by_vector) == sorted(items.ids, key=lambda o: (items.distances()[o], o))
    assert ids(by_vector)[-1] == NEEDLE

    lexical = search(client, LEXICAL, words=RARE)
    assert ids(lexical) == [NEEDLE]
    hit = lexical.results[0]
    assert hit.score > 0 and hit.lexical_score == hit.score
    assert lexical.ranking.method == R.RANKING_METHOD_LEXICAL and lexical.ranking_version == 0
    # The same words as query text (nothing to encode for lexical ranking).
    by_text = search(client, LEXICAL, text=f"{RARE.upper()}!")
    assert ids(by_text) == [NEEDLE]
    assert by_text.results[0].score == pytest.approx(hit.score, rel=1e-9)

    # An even hybrid lifts it from last to first: the only item holding the word.
    even = search(client, spec(vector_weight=0.5, lexical_weight=0.5), words=RARE)
    assert ids(even)[0] == NEEDLE
    assert [r.lexical_score > 0 for r in even.results] == [True] + [False] * (len(items.ids) - 1)


def test_hybrid_results_carry_the_fused_score_and_bm25(client: Client, items: Items) -> None:
    lexical = search(client, LEXICAL)
    bm25 = {r.object_id: r.score for r in lexical.results}
    assert set(bm25) == items.with_words("amber", "harbor")
    scores = [r.score for r in lexical.results]
    assert scores == sorted(scores, reverse=True) and min(scores) > 0

    hybrid = search(client, HYBRID)
    assert hybrid.ranking == spec(
        fusion=R.FUSION_METHOD_WEIGHTED,
        vector_weight=0.75,
        lexical_weight=0.25,
        window=50,
        rrf_k=60.0,
    )
    results = list(hybrid.results)
    # The window (50) holds every item: all come back, each with its BM25 for the words.
    assert sorted(ids(hybrid)) == sorted(items.ids)
    distances = items.distances()
    for r in results:
        assert r.lexical_score == pytest.approx(bm25.get(r.object_id, 0.0), rel=1e-9, abs=0)
        assert r.distance == pytest.approx(distances[r.object_id], abs=1e-4)
    expected = 0.75 * z([-r.distance for r in results]) + 0.25 * z(
        [r.lexical_score for r in results]
    )
    assert [r.score for r in results] == pytest.approx(expected.tolist(), abs=1e-9)
    got = [r.score for r in results]
    assert got == sorted(got, reverse=True)

    # Reciprocal-rank fusion: 1 / (60 + rank) from each list that holds the item.
    rrf = search(client, spec(fusion=R.FUSION_METHOD_RECIPROCAL_RANK))
    assert (rrf.ranking.vector_weight, rrf.ranking.lexical_weight) == (1.0, 1.0)
    vector_rank = {
        o: i for i, o in enumerate(sorted(items.ids, key=lambda o: (distances[o], o)), start=1)
    }
    lexical_rank = {o: i for i, o in enumerate(ids(lexical), start=1)}
    assert sorted(ids(rrf)) == sorted(items.ids)
    for r in rrf.results:
        want = 1 / (60 + vector_rank[r.object_id])
        if r.object_id in lexical_rank:
            want += 1 / (60 + lexical_rank[r.object_id])
        assert r.score == pytest.approx(want, abs=1e-12), r.object_id


def test_hybrid_ranking_of_a_text_query_encodes_it_and_scores_its_words(
    client: Client, items: Items
) -> None:
    reply = search(client, spec(vector_weight=0.5, lexical_weight=0.5), text=f"{RARE} lantern")
    assert reply.ranking.method == R.RANKING_METHOD_HYBRID
    assert sorted(ids(reply)) == sorted(items.ids)
    assert {r.object_id for r in reply.results if r.lexical_score > 0} == {NEEDLE}
    # The vector side ranked by the encoded text: distances are the stored vectors' from it,
    # which are not Q's.
    assert any(abs(r.distance - items.distances()[r.object_id]) > 1e-3 for r in reply.results)


RANKINGS = {
    "weighted": HYBRID,
    "rrf": spec(fusion=R.FUSION_METHOD_RECIPROCAL_RANK),
    "boosted": spec(
        boosts=[
            R.Boost(field="pop", function=R.BOOST_FUNCTION_LOG, weight=0.3),
            R.Boost(
                field="published",
                function=R.BOOST_FUNCTION_DECAY,
                weight=0.5,
                half_life_seconds=7 * DAY,
            ),
        ]
    ),
    "lexical": LEXICAL,
}


@pytest.mark.parametrize("page_size", [4, 1])
@pytest.mark.parametrize("name", list(RANKINGS))
def test_pages_neither_repeat_nor_skip(
    client: Client, items: Items, name: str, page_size: int
) -> None:
    ranking = RANKINGS[name]
    whole = search(client, ranking, limit=1000)
    assert not whole.next_page_token
    expected = ids(whole)
    assert len(expected) == len(
        items.with_words("amber", "harbor") if name == "lexical" else items.ids
    )
    pages = walk(client, request(ranking, limit=page_size))
    assert len(pages) >= 3
    assert all(len(p) == page_size for p in pages[:-1]) and 1 <= len(pages[-1]) <= page_size
    walked = [r for page in pages for r in page]
    assert [r.object_id for r in walked] == expected
    assert [r.score for r in walked] == pytest.approx([r.score for r in whole.results], abs=1e-9)


def test_filters_restrict_hybrid_results(client: Client, items: Items) -> None:
    odd = {o for o in items.base if items.payloads[o]["group"] == "odd"}
    reply = search(client, HYBRID, filter=mine(term("group", "odd")))
    assert set(ids(reply)) == odd and len(ids(reply)) == len(odd)
    assert all(from_struct(r.payload)["group"] == "odd" for r in reply.results)
    # Lexical ranking too: only odd items that hold a word.
    lexical = search(client, LEXICAL, filter=mine(term("group", "odd")))
    assert set(ids(lexical)) == odd & items.with_words("amber", "harbor")
    # A filter that admits nothing with the words leaves the vector side only.
    boosted = search(client, HYBRID, filter=mine(term("group", "boost")))
    assert sorted(ids(boosted)) == BOOSTED
    assert all(r.lexical_score == 0 for r in boosted.results)


def test_a_hybrid_session_records_ranks_across_pages(client: Client, items: Items) -> None:
    first = search(client, HYBRID, limit=4, create_session=True, user_id="rk-session-user")
    assert first.session_id and first.next_page_token
    second = client.search.Search(
        request(
            HYBRID,
            limit=4,
            create_session=True,
            user_id="rk-session-user",
            page_token=first.next_page_token,
        ),
        timeout=60,
    )
    assert second.session_id and second.session_id != first.session_id
    blue = client.get_blue_collection().collection_id
    for reply, start in ((first, 0), (second, 4)):
        session = client.clickstream.GetSession(
            clickstream_pb2.GetSessionRequest(session_id=reply.session_id), timeout=60
        ).session
        assert [(s.object_id, s.rank) for s in session.results] == [
            (o, start + i) for i, o in enumerate(ids(reply))
        ]
        assert session.query_text == WORDS  # a vector query's words stand as its text
        assert session.user_id == "rk-session-user" and session.collection_id == blue
    assert not set(ids(first)) & set(ids(second))


def test_hybrid_ranking_uses_the_users_improved_copies(client: Client, items: Items) -> None:
    user = f"rk-user-{uuid.uuid4().hex[:8]}"
    shown = search(client, HYBRID, limit=10, user_id=user, create_session=True)
    assert all(r.user_id == "" for r in shown.results)  # no copies yet
    clicked = shown.results[5]
    pushed = client.clickstream.PushEvents(
        clickstream_pb2.PushEventsRequest(
            events=[
                clickstream_pb2.SessionEvent(
                    event_id=f"{shown.session_id}-click",
                    session_id=shown.session_id,
                    object_id=clicked.object_id,
                    event_type="click",
                )
            ]
        ),
        timeout=60,
    )
    assert pushed.accepted_count == 1
    queued = client.clickstream.UseSessionsForImprovement(
        clickstream_pb2.UseSessionsForImprovementRequest(session_ids=[shown.session_id]),
        timeout=60,
    )
    assert queued.queued_count == 1
    done = client.wait_for_task(queued.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert done.result["improved_sessions"] >= 1

    after = {r.object_id: r for r in search(client, HYBRID, user_id=user).results}
    assert after[clicked.object_id].user_id == user
    assert after[clicked.object_id].distance < clicked.distance - 1e-6
    # Nobody else sees the copies.
    anonymous = search(client, HYBRID).results
    assert all(r.user_id == "" for r in anonymous)
    assert {r.object_id: r.distance for r in anonymous}[clicked.object_id] == pytest.approx(
        clicked.distance, abs=1e-6
    )


def test_boosts_order_otherwise_equal_items_as_declared(client: Client, items: Items) -> None:
    group = mine(term("group", "boost"))
    plain = search(client, HYBRID, words="velvet teapot", filter=group)
    assert ids(plain) == BOOSTED and all(r.score == 0 for r in plain.results)  # all alike

    log_pop = spec(boosts=[R.Boost(field="pop", function=R.BOOST_FUNCTION_LOG, weight=1.0)])
    by_pop = search(client, log_pop, words="velvet teapot", filter=group)
    assert ids(by_pop) == ["rk-b1", "rk-b3", "rk-b0", "rk-b2"]  # pop 1000, 100, 10, 1
    pops = [items.payloads[o]["pop"] for o in ids(by_pop)]
    assert [r.score for r in by_pop.results] == pytest.approx(
        z([math.log1p(p) for p in pops]).tolist(), abs=1e-9
    )

    recent = spec(
        boosts=[
            R.Boost(
                field="published",
                function=R.BOOST_FUNCTION_DECAY,
                weight=1.0,
                half_life_seconds=30 * DAY,
            )
        ]
    )
    newest = search(client, recent, words="velvet teapot", filter=group)
    assert ids(newest) == ["rk-b2", "rk-b0", "rk-b3", "rk-b1"]  # 1, 10, 100, 400 days old
    halves = [0.5 ** (d / 30) for d in (1, 10, 100, 400)]
    assert [r.score for r in newest.results] == pytest.approx(z(halves).tolist(), abs=1e-4)

    # Both at once, by reciprocal rank: pop ranks b1 b3 b0 b2, recency b2 b0 b3 b1, and the
    # vector and word lists (equal distances, equal BM25) b0 b1 b2 b3, by object_id.
    both = spec(
        fusion=R.FUSION_METHOD_RECIPROCAL_RANK,
        vector_weight=0.5,
        lexical_weight=0.5,
        boosts=[log_pop.boosts[0], recent.boosts[0]],
    )
    rrf = search(client, both, words="velvet teapot", filter=group)
    pop_rank = {"rk-b1": 1, "rk-b3": 2, "rk-b0": 3, "rk-b2": 4}
    recency_rank = {"rk-b2": 1, "rk-b0": 2, "rk-b3": 3, "rk-b1": 4}
    want = {
        o: 1.0 / (60 + i) + 1 / (60 + pop_rank[o]) + 1 / (60 + recency_rank[o])
        for i, o in enumerate(BOOSTED, start=1)
    }
    assert {r.object_id: r.score for r in rrf.results} == pytest.approx(want, abs=1e-12)
    assert ids(rrf) == sorted(BOOSTED, key=lambda o: (-want[o], o))


# --- ranking settings -----------------------------------------------------------------------------


def test_rolling_back_without_a_previous_version_fails_and_changes_nothing(
    client: Client, items: Items
) -> None:
    fresh = [
        c.collection_id
        for c in client.list_collections()
        if not settings_of(client, c.collection_id).HasField("previous")
    ]
    if not fresh:
        pytest.skip("every collection has a previous ranking spec version")
    before = settings_of(client, fresh[0])
    expect_error(
        lambda: client.ranking.RollbackRankingSpec(
            R.RollbackRankingSpecRequest(collection_id=fresh[0]), timeout=60
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "collection_id",
    )
    assert settings_of(client, fresh[0]) == before


def test_set_list_and_roll_back_ranking_specs(client: Client, items: Items) -> None:
    before = settings_of(client)
    first = spec(
        vector_weight=0.6,
        lexical_weight=0.4,
        boosts=[R.Boost(field="pop", function=R.BOOST_FUNCTION_LOG, weight=0.2)],
    )
    try:
        one = set_spec(client, first)
        v1 = one.live.version
        assert v1 >= 1 and one.live.origin == R.RANKING_SPEC_ORIGIN_MANUAL and one.live.deployable
        assert one.live.spec == spec(
            fusion=R.FUSION_METHOD_WEIGHTED,
            vector_weight=0.6,
            lexical_weight=0.4,
            boosts=list(first.boosts),
            rrf_k=60.0,
        )
        assert one.HasField("previous") == before.HasField("live")
        if before.HasField("live"):
            assert one.previous == before.live

        # A search that names no ranking is ranked by the live spec, as if it had named it.
        default = search(client)
        assert default.ranking_version == v1
        assert default.ranking.method == R.RANKING_METHOD_HYBRID
        assert default.ranking.lexical_weight == pytest.approx(0.4)
        named = search(client, first)
        assert named.ranking_version == 0
        assert ids(default) == ids(named)
        assert [r.score for r in default.results] == [r.score for r in named.results]
        # ... as far as the request allows: no words, or a sort, is vector ranking.
        for reply in (
            search(client, words=""),
            search(client, sort=common_pb2.SortBy(field="pop")),
        ):
            assert reply.ranking.method == R.RANKING_METHOD_VECTOR
            assert reply.ranking_version == 0
        sorted_reply = search(client, sort=common_pb2.SortBy(field="pop"), limit=5)
        lowest = sorted(p["pop"] for p in items.payloads.values() if "pop" in p)[:5]
        assert [from_struct(r.payload)["pop"] for r in sorted_reply.results] == lowest

        # A field the live spec boosts cannot be undeclared.
        expect_error(
            lambda: declare(
                client, [R.SignalField(field="published", kind=R.SIGNAL_KIND_TIMESTAMP)]
            ),
            grpc.StatusCode.FAILED_PRECONDITION,
            "fields",
        )
        assert settings_of(client) == one

        two = set_spec(client, LEXICAL)
        v2 = two.live.version
        assert v2 == v1 + 1 and two.previous.version == v1
        by_words = search(client, text=RARE)
        assert by_words.ranking_version == v2 and ids(by_words) == [NEEDLE]
        assert search(client, words="").ranking_version == 0  # a vector query without words

        listed = client.ranking.ListRankingSpecs(R.ListRankingSpecsRequest(), timeout=60)
        assert [v.version for v in listed.versions][:2] == [v2, v1]
        assert [v.version for v in listed.versions] == sorted(
            (v.version for v in listed.versions), reverse=True
        )
        assert listed.versions[0] == two.live and listed.versions[1] == one.live
        page = client.ranking.ListRankingSpecs(R.ListRankingSpecsRequest(page_size=1), timeout=60)
        assert [v.version for v in page.versions] == [v2] and page.next_page_token
        following = client.ranking.ListRankingSpecs(
            R.ListRankingSpecsRequest(page_size=1, page_token=page.next_page_token), timeout=60
        )
        assert [v.version for v in following.versions] == [v1]

        back = client.ranking.RollbackRankingSpec(R.RollbackRankingSpecRequest(), timeout=60)
        assert back.settings.live == one.live and back.settings.previous == two.live
        assert settings_of(client) == back.settings
        assert search(client).ranking_version == v1
        # Rolling back again swaps them again.
        again = client.ranking.RollbackRankingSpec(R.RollbackRankingSpecRequest(), timeout=60)
        assert again.settings.live.version == v2 and again.settings.previous.version == v1
    finally:
        restored = set_spec(client, before.live.spec if before.HasField("live") else VECTOR)
        assert restored.live.spec.method == (
            before.live.spec.method if before.HasField("live") else R.RANKING_METHOD_VECTOR
        )
    assert search(client).ranking.method == (
        before.live.spec.method if before.HasField("live") else R.RANKING_METHOD_VECTOR
    )


def _boost(field: str, function: int = R.BOOST_FUNCTION_LOG, **kw: Any) -> R.Boost:
    return R.Boost(field=field, function=function, weight=kw.pop("weight", 1.0), **kw)


BAD_SEARCHES: list[tuple[search_pb2.SearchRequest, str]] = [
    (request(spec(99)), "ranking.method"),
    (request(spec(fusion=99)), "ranking.fusion"),
    (request(spec(lexical_weight=-1.0)), "ranking.lexical_weight"),
    (request(spec(vector_weight=math.nan)), "ranking.vector_weight"),
    (request(spec(vector_weight=0.0, lexical_weight=0.0)), "ranking.vector_weight"),
    (request(spec(window=5000)), "ranking.window"),
    (request(spec(window=-1)), "ranking.window"),
    (request(spec(rrf_k=-1.0)), "ranking.rrf_k"),
    (request(spec(boosts=[_boost("undeclared_rk")])), "ranking.boosts[0].field"),
    (request(spec(boosts=[_boost("pop", 0)])), "ranking.boosts[0].function"),
    (request(spec(boosts=[_boost("pop", 99)])), "ranking.boosts[0].function"),
    (request(spec(boosts=[_boost("pop", R.BOOST_FUNCTION_DECAY)])), "ranking.boosts[0].function"),
    (
        request(spec(boosts=[_boost("published", R.BOOST_FUNCTION_DECAY)])),
        "ranking.boosts[0].half_life_seconds",
    ),
    (request(spec(boosts=[_boost("pop", weight=-1.0)])), "ranking.boosts[0].weight"),
    (request(spec(boosts=[_boost("pop"), _boost("pop")])), "ranking.boosts[1].field"),
    (request(spec(R.RANKING_METHOD_VECTOR, boosts=[_boost("pop")])), "ranking.boosts"),
    (request(HYBRID, sort=common_pb2.SortBy(field="pop")), "sort"),
    (request(LEXICAL, sort=common_pb2.SortBy(field="pop")), "sort"),
    (request(HYBRID, words=""), "ranking.method"),
    (request(LEXICAL, words=""), "ranking.method"),
    (request(LEXICAL, max_distance=0.5), "max_distance"),
    (request(HYBRID, words="a\x00b"), "lexical_query"),
    (request(HYBRID, words="w" * 5000), "lexical_query"),
    (request(LEXICAL, text=f"{RARE}\x00"), "query_text"),
    (request(LEXICAL, text="w" * 5000), "query_text"),
    (request(LEXICAL, page_token="not-a-token"), "page_token"),
    (request(HYBRID, page_token="not-a-token"), "page_token"),
]


def _with_lexical_query_and_text() -> search_pb2.SearchRequest:
    message = request(HYBRID, text="amber")
    message.lexical_query = "harbor"
    return message


BAD_SEARCHES.append((_with_lexical_query_and_text(), "lexical_query"))


@pytest.mark.parametrize(("message", "field"), BAD_SEARCHES)
def test_bad_searches_are_refused_naming_the_field(
    client: Client, items: Items, message: search_pb2.SearchRequest, field: str
) -> None:
    expect_error(lambda: client.search.Search(message, timeout=60), INVALID, field)


def test_bad_settings_calls_are_refused_naming_the_field_and_change_nothing(
    client: Client, items: Items
) -> None:
    before = settings_of(client)
    versions = client.ranking.ListRankingSpecs(R.ListRankingSpecsRequest(), timeout=60)
    rk = client.ranking
    number, unset = R.SIGNAL_KIND_NUMBER, R.SIGNAL_KIND_UNSPECIFIED
    calls: list[tuple[Callable[[], object], str]] = [
        (lambda: rk.SetRankingSpec(R.SetRankingSpecRequest(), timeout=60), "spec.method"),
        (lambda: set_spec(client, R.RankingSpec(lexical_weight=0.5)), "spec.method"),
        (lambda: set_spec(client, spec(lexical_weight=-1.0)), "spec.lexical_weight"),
        (lambda: set_spec(client, spec(boosts=[_boost("nope_rk")])), "spec.boosts[0].field"),
        (
            lambda: set_spec(client, spec(R.RANKING_METHOD_LEXICAL, boosts=[_boost("pop")])),
            "spec.boosts",
        ),
        (lambda: declare(client, [R.SignalField(field="pop", kind=unset)]), "fields[0].kind"),
        (lambda: declare(client, [R.SignalField(field="pop", kind=99)]), "fields[0].kind"),
        (lambda: declare(client, [R.SignalField(field="", kind=number)]), "fields[0].field"),
        (
            lambda: declare(
                client,
                [R.SignalField(field="pop", kind=number), R.SignalField(field="pop", kind=number)],
            ),
            "fields[1].field",
        ),
        (
            lambda: rk.ListRankingSpecs(R.ListRankingSpecsRequest(page_size=-1), timeout=60),
            "page_size",
        ),
        (
            lambda: rk.ListRankingSpecs(R.ListRankingSpecsRequest(page_token="zz"), timeout=60),
            "page_token",
        ),
        (
            lambda: rk.StartRankingFit(
                R.StartRankingFitRequest(idempotency_key="a\x00b"), timeout=60
            ),
            "idempotency_key",
        ),
    ]
    for call, field in calls:
        expect_error(call, INVALID, field)
    assert settings_of(client) == before
    after = client.ranking.ListRankingSpecs(R.ListRankingSpecsRequest(), timeout=60)
    assert after == versions
    expect_error(
        lambda: rk.GetRankingSettings(
            R.GetRankingSettingsRequest(collection_id="no-such-collection-rk"), timeout=60
        ),
        grpc.StatusCode.NOT_FOUND,
    )


def _queries_by_collection(client: Client) -> dict[str, int]:
    """How many distinct query texts each collection's relevant sessions hold: at least as
    many as the queries with clicks a ranking fit of it would learn from."""
    queries: dict[str, set[str]] = {}
    token = ""
    while True:
        reply = client.clickstream.ListSessions(
            clickstream_pb2.ListSessionsRequest(page_size=1000, page_token=token), timeout=60
        )
        for s in reply.sessions:
            if not s.irrelevant and s.query_text.strip():
                text = " ".join(s.query_text.lower().split())
                queries.setdefault(s.collection_id, set()).add(text)
        token = reply.next_page_token
        if not token:
            return {c: len(q) for c, q in queries.items()}


def _collection_a_fit_cannot_change(client: Client) -> str | None:
    """ "" (the blue collection) when its sessions are too few to learn from, else another
    collection whose are, else None. A fit that learned could change the live ranking spec
    that the worker's other test files search with."""
    counts = _queries_by_collection(client)
    blue = client.get_blue_collection().collection_id
    if counts.get(blue, 0) < FIT_MIN_SESSIONS:
        return ""
    for c in client.list_collections():
        if counts.get(c.collection_id, 0) < FIT_MIN_SESSIONS:
            return c.collection_id
    return None


def test_a_ranking_fit_with_too_few_sessions_learns_nothing(client: Client, items: Items) -> None:
    target = _collection_a_fit_cannot_change(client)
    if target is None:
        pytest.skip(f"every collection holds sessions of {FIT_MIN_SESSIONS}+ queries")
    collection_id = target or client.get_blue_collection().collection_id
    before = settings_of(client, target)
    listing = R.ListRankingSpecsRequest(collection_id=target)
    versions = client.ranking.ListRankingSpecs(listing, timeout=60)
    key = f"rk-fit-{uuid.uuid4().hex}"
    fit = R.StartRankingFitRequest(collection_id=target, idempotency_key=key)
    started = client.ranking.StartRankingFit(fit, timeout=60)
    retried = client.ranking.StartRankingFit(fit, timeout=60)
    assert started.task.task_id and retried.task.task_id == started.task.task_id
    assert started.task.kind == common_pb2.TASK_KIND_RANKING_FIT
    done = client.wait_for_task(started.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    result = from_struct(done.result)
    assert result["version"] is None and result["went_live"] is False and result["spec"] is None
    assert result["note"].endswith("nothing learned"), result["note"]
    assert f"ES_RANKING_FIT_MIN_SESSIONS is {FIT_MIN_SESSIONS}" in result["note"]
    assert f"collection {collection_id!r}" in result["note"]
    assert result["metrics"]["queries"] < FIT_MIN_SESSIONS
    # A retry after the end still answers with the same task, and starts nothing.
    late = client.ranking.StartRankingFit(fit, timeout=60)
    assert late.task.task_id == started.task.task_id
    assert late.task.status == common_pb2.TASK_STATUS_DONE
    assert settings_of(client, target) == before
    assert client.ranking.ListRankingSpecs(listing, timeout=60) == versions
    # Without a key, each call is a new task.
    other = client.ranking.StartRankingFit(
        R.StartRankingFitRequest(collection_id=target), timeout=60
    )
    assert other.task.task_id != started.task.task_id
    final = client.wait_for_task(other.task.task_id, timeout_seconds=300)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    assert from_struct(final.result)["version"] is None
    assert settings_of(client, target) == before
