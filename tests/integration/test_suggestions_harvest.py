"""Suggestions that learn, on a real PostgreSQL: sessions registered and events pushed with
``es_core.clickstream.store``, a harvest pass run, and the clickstream domain read back through
the phrase store and Suggest.

The harvest is global (every session, the one clickstream domain), so each test searches for
query texts of its own (a unique word in each) and looks only at its own phrases."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from pydantic import ValidationError

import es_workers.suggestions_harvest as harvest_worker
from es_cli.embedded import EmbeddedPostgres
from es_core.clickstream import store as clickstream
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings, get_settings
from es_core.domain import Collection
from es_core.search.use_case import SearchContext
from es_core.suggestions import harvest as harvesting
from es_core.suggestions import store, use_case
from es_core.suggestions.harvest import DOMAIN, LABEL, HarvestReport, harvest, weight_of
from es_core.suggestions.model import Phrase, PhraseInput, SuggestInput
from es_core.suggestions.text import normalise
from es_workers import runtime
from tests.integration.helpers import fresh_database, new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

DAY = 24 * 3600.0


@pytest_asyncio.fixture
async def collection(pg_pool: asyncpg.Pool) -> Collection:
    return await new_collection(pg_pool, "cosine", "min")


def word() -> str:
    """A word no other test searches for (letters only, so it is one token)."""
    return "q" + "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:12])


async def search_session(
    pool: asyncpg.Pool,
    collection: Collection,
    user_id: str,
    query_text: str,
    *,
    events: tuple[str, ...] = ("click",),
    age_seconds: float = 60.0,
    now: datetime | None = None,
    on_shown: bool = True,
    app: str = "",
) -> str:
    """Register a session that showed o0..o2 and push ``events`` (on o1, or on an object it did
    not show); returns its id."""
    session_id = unique_id("hs")
    created = (now or datetime.now(UTC)) - timedelta(seconds=age_seconds)
    session = Session(
        session_id=session_id,
        results=[ShownResult(f"o{r}", r) for r in range(3)],
        user_id=user_id,
        query_text=query_text,
        collection_id=collection.collection_id,
        app=app,
    )
    async with pool.acquire() as conn:
        _, made = await clickstream.register_session(conn, session, created, None)
        assert made
        if events:
            target = "o1" if on_shown else "elsewhere"
            pushed = [
                Event(f"{session_id}-e{i}", session_id, target, kind, created)
                for i, kind in enumerate(events)
            ]
            await clickstream.push_events(conn, pushed, created, app=app or None)
    return session_id


async def phrase_of(pool: asyncpg.Pool, text: str) -> Phrase | None:
    row = await pool.fetchrow(
        "SELECT phrase_id FROM suggestion_phrases WHERE normalised = $1", normalise(text)
    )
    if row is None:
        return None
    [phrase] = await store.get_phrases(pool, [row["phrase_id"]])
    return phrase


async def run(pool: asyncpg.Pool, settings: Settings, now: datetime | None = None) -> HarvestReport:
    report = await harvest(pool, settings, now or datetime.now(UTC))
    assert report.ran
    return report


# --- what is harvested ---------------------------------------------------------------------------


async def test_a_query_two_users_succeeded_with_is_harvested_and_suggested(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    await search_session(pg_pool, collection, unique_id("u"), f"Red  {w.upper()} shoes")
    await search_session(pg_pool, collection, unique_id("u"), f"red {w} shoes")
    await search_session(pg_pool, collection, unique_id("u"), f"red {w} shoes")

    report = await run(pg_pool, settings)

    phrase = await phrase_of(pg_pool, f"red {w} shoes")
    assert phrase is not None
    assert phrase.phrase == f"red {w} shoes"  # the most frequent spelling
    assert phrase.domains == [DOMAIN]
    assert phrase.labels == [LABEL]
    assert 0.7 < phrase.weight < 0.76  # three successes a minute old: s ~ 3, s / (1 + s)
    assert report.harvested >= 1 and report.successes >= 3
    suggestions = await use_case.suggest(
        SearchContext(settings, pg_pool, None, TOKENS),  # type: ignore[arg-type]
        SuggestInput(f"red {w[:6]}", domains=[DOMAIN]),
    )
    assert [s.phrase.phrase_id for s in suggestions] == [phrase.phrase_id]


async def test_a_query_of_one_user_only_is_never_harvested(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w, user = word(), unique_id("u")
    for _ in range(5):
        await search_session(pg_pool, collection, user, f"lonely {w}")
    # The same user id from another app is not another user.
    await search_session(pg_pool, collection, user, f"lonely {w}", app="other-app")
    # Anonymous sessions never count, however many.
    await search_session(pg_pool, collection, "", f"lonely {w}")
    await search_session(pg_pool, collection, "", f"lonely {w}")

    await run(pg_pool, settings)

    assert await phrase_of(pg_pool, f"lonely {w}") is None


async def test_sessions_marked_irrelevant_are_never_harvested(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    first = await search_session(pg_pool, collection, unique_id("u"), f"noisy {w}")
    await search_session(pg_pool, collection, unique_id("u"), f"noisy {w}")
    async with pg_pool.acquire() as conn:
        await clickstream.mark_irrelevant(conn, first)
    await run(pg_pool, settings)
    assert await phrase_of(pg_pool, f"noisy {w}") is None

    # A harvested phrase leaves when a session it relied on is marked irrelevant.
    v = word()
    ids = [await search_session(pg_pool, collection, unique_id("u"), f"noisy {v}") for _ in "ab"]
    await run(pg_pool, settings)
    assert await phrase_of(pg_pool, f"noisy {v}") is not None
    async with pg_pool.acquire() as conn:
        await clickstream.mark_irrelevant(conn, ids[0])
    report = await run(pg_pool, settings)
    assert await phrase_of(pg_pool, f"noisy {v}") is None
    assert report.removed >= 1


async def test_sessions_without_a_positive_event_are_never_harvested(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    # No event; an event type of weight 0 (not in ES_EVENT_WEIGHTS); a click on an object the
    # search did not show.
    await search_session(pg_pool, collection, unique_id("u"), f"idle {w}", events=())
    await search_session(pg_pool, collection, unique_id("u"), f"idle {w}", events=("view",))
    await search_session(pg_pool, collection, unique_id("u"), f"idle {w}", on_shown=False)
    # A click on a shown result, by a fourth user: positive only while clicks weigh above 0.
    await search_session(pg_pool, collection, unique_id("u"), f"idle {w}")
    clicks_ignored = settings.model_copy(update={"event_weights": {"click": 0.0, "buy": 1.0}})

    await run(pg_pool, clicks_ignored)
    assert await phrase_of(pg_pool, f"idle {w}") is None
    # Clicks count again: one user succeeded, still too few.
    await run(pg_pool, settings)
    assert await phrase_of(pg_pool, f"idle {w}") is None
    await search_session(pg_pool, collection, unique_id("u"), f"idle {w}", events=("view", "buy"))
    await run(pg_pool, settings)
    assert await phrase_of(pg_pool, f"idle {w}") is None
    await run(
        pg_pool, clicks_ignored.model_copy(update={"event_weights": {"click": 1.0, "buy": 1.0}})
    )
    assert await phrase_of(pg_pool, f"idle {w}") is not None


async def test_texts_outside_the_limits_are_not_harvested(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    long_text = f"{w} " + "x" * settings.suggestions_harvest_max_chars
    for text in (long_text, "!!", "?"):
        for _ in "ab":
            await search_session(pg_pool, collection, unique_id("u"), text)
    await run(pg_pool, settings)
    assert await phrase_of(pg_pool, long_text) is None
    assert await phrase_of(pg_pool, "!!") is None
    assert await phrase_of(pg_pool, "?") is None


# --- weight ----------------------------------------------------------------------------------


async def test_weight_grows_with_successes_and_with_recency(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    now = datetime.now(UTC)
    base, more, older = word(), word(), word()
    for text, count, age in ((base, 2, 0.0), (more, 4, 0.0), (older, 2, 14 * DAY)):
        for _ in range(count):
            await search_session(
                pg_pool, collection, unique_id("u"), f"w {text}", age_seconds=age, now=now
            )
    await run(pg_pool, settings, now)
    weights = {}
    for text in (base, more, older):
        phrase = await phrase_of(pg_pool, f"w {text}")
        assert phrase is not None
        weights[text] = phrase.weight
    assert weights[more] > weights[base] > weights[older]
    # s / (1 + s) with s the successes, each halved per half-life (7 days) of age.
    assert math.isclose(weights[base], weight_of(2.0), rel_tol=1e-9)
    assert math.isclose(weights[more], weight_of(4.0), rel_tol=1e-9)
    assert math.isclose(weights[older], weight_of(0.5), rel_tol=1e-9)


def test_the_weight_function() -> None:
    assert weight_of(0.0) == 0.0
    assert weight_of(1.0) == 0.5
    assert 0.0 < weight_of(0.01) < weight_of(2.0) < weight_of(50.0) < 1.0


async def test_decayed_phrases_leave_the_clickstream_domain(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    now = datetime.now(UTC)
    w = word()
    for _ in "ab":
        await search_session(pg_pool, collection, unique_id("u"), f"fading {w}", now=now)
    await run(pg_pool, settings, now)
    assert await phrase_of(pg_pool, f"fading {w}") is not None

    # Two weeks on, two successes count 0.5: weight 1/3, below a floor of 0.5.
    strict = settings.model_copy(update={"suggestions_harvest_min_weight": 0.5})
    await run(pg_pool, strict, now + timedelta(days=14))
    assert await phrase_of(pg_pool, f"fading {w}") is None
    # Back within the floor, it returns; out of the lookback window, it goes for good.
    await run(pg_pool, settings, now)
    assert await phrase_of(pg_pool, f"fading {w}") is not None
    await run(pg_pool, settings, now + timedelta(days=31))
    assert await phrase_of(pg_pool, f"fading {w}") is None


# --- curated phrases -------------------------------------------------------------------------


async def test_a_curated_phrase_keeps_its_weight_labels_and_domains(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    now = datetime.now(UTC)
    w, shop = word(), unique_id("shop")
    [curated_id] = await store.add_phrases(
        pg_pool, [PhraseInput(f"Blue {w}", weight=5.0, labels=["curated"], domains=[shop])]
    )
    for _ in "ab":
        await search_session(pg_pool, collection, unique_id("u"), f"blue {w}", now=now)

    await run(pg_pool, settings, now)
    phrase = await phrase_of(pg_pool, f"blue {w}")
    assert phrase is not None
    assert (phrase.phrase_id, phrase.phrase) == (curated_id, f"Blue {w}")
    assert (phrase.weight, phrase.labels, phrase.domains) == (5.0, ["curated"], [shop, DOMAIN])

    # Decayed: it leaves the clickstream domain and stays curated.
    await run(pg_pool, settings, now + timedelta(days=31))
    phrase = await phrase_of(pg_pool, f"blue {w}")
    assert phrase is not None
    assert (phrase.weight, phrase.labels, phrase.domains) == (5.0, ["curated"], [shop])


async def test_a_harvested_phrase_later_curated_is_no_longer_reweighted(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w, shop = word(), unique_id("shop")
    for _ in "ab":
        await search_session(pg_pool, collection, unique_id("u"), f"green {w}")
    await run(pg_pool, settings)
    await store.add_phrases(pg_pool, [PhraseInput(f"green {w}", weight=3.0, domains=[shop])])
    await search_session(pg_pool, collection, unique_id("u"), f"green {w}")
    await run(pg_pool, settings)
    phrase = await phrase_of(pg_pool, f"green {w}")
    assert phrase is not None
    assert (phrase.weight, sorted(phrase.domains)) == (3.0, sorted([shop, DOMAIN]))


# --- turned off, run twice, bad settings ---------------------------------------------------------


async def test_nothing_is_harvested_when_the_setting_is_off(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    for _ in "ab":
        await search_session(pg_pool, collection, unique_id("u"), f"off {w}")
    off = settings.model_copy(update={"suggestions_harvest": False})
    report = await harvest(pg_pool, off, datetime.now(UTC))
    assert report == HarvestReport(ran=False)
    assert await phrase_of(pg_pool, f"off {w}") is None


async def test_a_pass_that_finds_another_running_does_nothing(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    for _ in "ab":
        await search_session(pg_pool, collection, unique_id("u"), f"busy {w}")
    async with pg_pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", harvesting.LOCK)
        report = await harvest(pg_pool, settings, datetime.now(UTC))
    assert report == HarvestReport(ran=False)
    assert await phrase_of(pg_pool, f"busy {w}") is None


async def test_two_passes_at_once_leave_one_consistent_result(
    pg_pool: asyncpg.Pool, settings: Settings, collection: Collection
) -> None:
    w = word()
    for _ in "ab":
        await search_session(pg_pool, collection, unique_id("u"), f"twice {w}")
    now = datetime.now(UTC)
    reports = await asyncio.gather(*(harvest(pg_pool, settings, now) for _ in range(3)))
    assert any(r.ran for r in reports)
    phrase = await phrase_of(pg_pool, f"twice {w}")
    assert phrase is not None and phrase.domains == [DOMAIN]


@pytest.mark.parametrize(
    "name, value",
    [
        ("suggestions_harvest_min_users", 1),
        ("suggestions_harvest_min_users", 0),
        ("suggestions_harvest_min_weight", 0),
        ("suggestions_harvest_half_life_seconds", 0),
        ("suggestions_harvest_max_chars", 257),
        ("suggestions_harvest_interval_seconds", 0),
    ],
)
def test_settings_out_of_range_are_refused(name: str, value: float) -> None:
    with pytest.raises(ValidationError, match=name):
        Settings(**{name: value})  # type: ignore[arg-type]


# --- the worker's task -----------------------------------------------------------------------


@pytest_asyncio.fixture
async def worker_pool(
    pg_server: EmbeddedPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[asyncpg.Pool]:
    """The worker's own context on a fresh database (so its pass sees only this test's rows)."""
    async with fresh_database(pg_server.dsn) as dsn:
        monkeypatch.setenv("ES_POSTGRES_DSN", dsn)
        monkeypatch.setenv("ES_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("ES_TRITON_URL", "")
        get_settings.cache_clear()
        monkeypatch.setattr(runtime, "_context", None)
        ctx = await runtime.context()
        try:
            yield ctx.pool
        finally:
            await ctx.pool.close()
            runtime._context = None
            get_settings.cache_clear()


async def test_the_worker_task_harvests(worker_pool: asyncpg.Pool) -> None:
    collection = await new_collection(worker_pool, "cosine", "min")
    for user in ("ann", "bob"):
        await search_session(worker_pool, collection, user, "warm socks")
    await search_session(worker_pool, collection, "ann", "ann's own query")

    report = await harvest_worker._harvest()

    assert report == {
        "ran": True,
        "successes": 3,
        "candidates": 2,
        "harvested": 1,
        "removed": 0,
    }
    rows = await worker_pool.fetch("SELECT phrase, domains FROM suggestion_phrases")
    assert [(r["phrase"], list(r["domains"])) for r in rows] == [("warm socks", [DOMAIN])]


async def test_the_worker_task_does_nothing_when_turned_off(
    worker_pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ES_SUGGESTIONS_HARVEST", "false")
    get_settings.cache_clear()
    runtime._context = replace(await runtime.context(), settings=get_settings())
    collection = await new_collection(worker_pool, "cosine", "min")
    for user in ("ann", "bob"):
        await search_session(worker_pool, collection, user, "warm socks")

    assert (await harvest_worker._harvest())["ran"] is False
    assert await worker_pool.fetchval("SELECT count(*) FROM suggestion_phrases") == 0
