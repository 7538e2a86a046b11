"""API keys on a real PostgreSQL: created hashed, verified, cached for a while, revoked; the
interceptor's decisions; and sessions scoped to the app of the caller's key."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import grpc
import pytest

from es_core.api_keys import use_case as keys
from es_core.api_keys.model import Role
from es_core.api_keys.verifier import KeyVerifier
from es_core.clickstream import use_case as clickstream
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.context import Context
from es_core.errors import AlreadyExists, InvalidArgument, NotFound
from es_core.pagination import PageRequest
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_server.auth import Refusal, authorize
from tests.integration.helpers import RecordingSender, new_collection, unique_id
from tests.page_tokens import TOKENS

pytestmark = pytest.mark.integration

INDEX = TextMiniLMPlugin(Settings()).get_search_index_info()


class Clock:
    """A clock the test moves, so the cache's expiry is decided without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_only_a_hash_of_the_secret_is_stored(pg_pool: asyncpg.Pool) -> None:
    issued = await keys.create_key(pg_pool, Role.WRITE, "shop", "ci")
    row = await pg_pool.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", issued.key.key_id)
    assert row is not None and row["role"] == "write" and row["app"] == "shop"
    secret = issued.token.split("_", 2)[2]
    stored = " ".join(str(v) for v in row.values())
    assert secret not in stored and issued.token not in stored
    assert bytes(row["secret_sha256"]) == issued.key.secret_sha256


async def test_a_key_verifies_until_revoked_and_the_cache_holds_it_only_for_its_ttl(
    pg_pool: asyncpg.Pool,
) -> None:
    issued = await keys.create_key(pg_pool, Role.SEARCH)
    clock = Clock()
    verifier = KeyVerifier(pg_pool, ttl_seconds=5, clock=clock)
    verified = await verifier.verify(issued.token)
    assert verified is not None and verified.key_id == issued.key.key_id
    assert (
        await verifier.verify(issued.token[:-1] + ("A" if issued.token[-1] != "A" else "B")) is None
    )

    revoked = await keys.revoke_key(pg_pool, issued.key.key_id)
    assert revoked.revoked
    clock.now = 4.9  # still the cached row
    assert await verifier.verify(issued.token) is not None
    clock.now = 5.0  # read again: revoked
    assert await verifier.verify(issued.token) is None
    assert issued.key.key_id not in {k.key_id for k in await keys.list_keys(pg_pool)}
    listed = await keys.list_keys(pg_pool, include_revoked=True)
    assert issued.key.key_id in {k.key_id for k in listed}


async def test_unknown_and_malformed_tokens_are_refused(pg_pool: asyncpg.Pool) -> None:
    verifier = KeyVerifier(pg_pool, ttl_seconds=5)
    assert await verifier.verify("es_0123456789abcdef_nothing") is None
    assert await verifier.verify("not a token") is None


async def test_bad_key_requests_name_the_field(pg_pool: asyncpg.Pool) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await keys.create_key(pg_pool, Role.ADMIN, app="bad app")
    assert caught.value.violations[0].field == "app"
    with pytest.raises(InvalidArgument) as caught:
        await keys.create_key(pg_pool, Role.ADMIN, description="x" * 257)
    assert caught.value.violations[0].field == "description"
    with pytest.raises(InvalidArgument) as caught:
        await keys.revoke_key(pg_pool, "nope")
    assert caught.value.violations[0].field == "key_id"
    with pytest.raises(NotFound):
        await keys.revoke_key(pg_pool, "0123456789abcdef")


async def test_the_interceptor_decides_by_key_and_role(pg_pool: asyncpg.Pool) -> None:
    verifier = KeyVerifier(pg_pool, ttl_seconds=0)
    search = await keys.create_key(pg_pool, Role.SEARCH)
    admin = await keys.create_key(pg_pool, Role.ADMIN)

    def bearer(token: str) -> list[tuple[str, str]]:
        return [("authorization", f"Bearer {token}")]

    async def refusal(metadata: list[tuple[str, str]], needed: Role) -> grpc.StatusCode:
        with pytest.raises(Refusal) as caught:
            await authorize(verifier, metadata, needed)
        return caught.value.code

    assert await refusal([], Role.SEARCH) is grpc.StatusCode.UNAUTHENTICATED
    assert await refusal(bearer("es_0123456789abcdef_x"), Role.SEARCH) is (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert await refusal(bearer(search.token), Role.WRITE) is grpc.StatusCode.PERMISSION_DENIED
    assert await refusal(bearer(search.token), Role.ADMIN) is grpc.StatusCode.PERMISSION_DENIED
    assert (await authorize(verifier, bearer(search.token), Role.SEARCH)).role is Role.SEARCH
    for needed in Role:
        assert (await authorize(verifier, bearer(admin.token), needed)).key_id == (admin.key.key_id)
    await keys.revoke_key(pg_pool, admin.key.key_id)
    assert await refusal(bearer(admin.token), Role.SEARCH) is grpc.StatusCode.UNAUTHENTICATED


async def test_an_apps_sessions_are_invisible_to_another_app(
    pg_pool: asyncpg.Pool, settings: Settings
) -> None:
    collection = await new_collection(pg_pool)
    ctx = Context(settings, pg_pool, RecordingSender(), INDEX, TOKENS)
    user = unique_id("user")
    mine = Session(
        unique_id("s"), [ShownResult("o1", 0)], user_id=user, collection_id=collection.collection_id
    )
    stored = await clickstream.register_session(ctx, mine, app="app-a")
    assert stored.app == "app-a"
    theirs = Session(
        unique_id("s"), [ShownResult("o1", 0)], user_id=user, collection_id=collection.collection_id
    )
    await clickstream.register_session(ctx, theirs, app="app-b")

    # Another app: as if the session did not exist.
    with pytest.raises(NotFound):
        await clickstream.get_session(ctx, mine.session_id, app="app-b")
    with pytest.raises(NotFound):
        await clickstream.mark_session_irrelevant(ctx, mine.session_id, app="app-b")
    event = Event(unique_id("e"), mine.session_id, "o1", "purchase", datetime.now(UTC))
    with pytest.raises(NotFound) as caught:
        await clickstream.push_events(ctx, [event], app="app-b")
    assert caught.value.violations[0].field == "events[0].session_id"
    queued = await clickstream.use_sessions_for_improvement(ctx, [mine.session_id], app="app-b")
    assert queued.queued_count == 0
    # Registering its id again from another app is refused, and changes nothing.
    with pytest.raises(AlreadyExists):
        await clickstream.register_session(ctx, mine, app="app-b")
    read = await clickstream.get_session(ctx, mine.session_id, app="app-a")
    assert read.events == [] and not read.irrelevant and read.app == "app-a"

    listing = clickstream.ListSessionsInput(PageRequest(100, ""), user_id=user)

    seen_by_b = await clickstream.list_sessions(ctx, listing, app="app-b")
    assert [s.session_id for s in seen_by_b.items] == [theirs.session_id]
    everyone = clickstream.ListSessionsInput(PageRequest(1000, ""))
    unfiltered = await clickstream.list_sessions(ctx, everyone, app="app-b")
    assert {s.app for s in unfiltered.items} == {"app-b"}
    # A key of no app (or auth off) sees both.
    both = await clickstream.list_sessions(ctx, listing)
    assert {s.session_id for s in both.items} == {mine.session_id, theirs.session_id}

    # Its own app pushes and queues as before.
    assert (await clickstream.push_events(ctx, [event], app="app-a")).accepted_count == 1
    queued = await clickstream.use_sessions_for_improvement(ctx, [mine.session_id], app="app-a")
    assert queued.queued_count == 1
