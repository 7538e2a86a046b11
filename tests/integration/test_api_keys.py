"""API keys on a real PostgreSQL: created hashed, verified, cached for a while, revoked; keys of
client certificates the same way; the interceptor's decisions; and sessions scoped to the app of
the caller's key."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import grpc
import pytest

from es_cli.embedded import EmbeddedPostgres
from es_cli.local_tls import (
    ClientCertificate,
    LocalTls,
    ensure_local_tls,
    issue_client_certificate,
)
from es_core.api_keys import use_case as keys
from es_core.api_keys.model import Role, certificate_sha256, hash_secret, new_token
from es_core.api_keys.verifier import KeyVerifier
from es_core.clickstream import use_case as clickstream
from es_core.clickstream.model import Event, Session, ShownResult
from es_core.config import Settings
from es_core.context import Context
from es_core.errors import AlreadyExists, InvalidArgument, NotFound
from es_core.pagination import PageRequest
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.storage.migrations import available_migrations, migrate
from es_server.auth import Refusal, authorize
from tests.integration.helpers import RecordingSender, fresh_database, new_collection, unique_id
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


@pytest.fixture(scope="module")
def local_ca(tmp_path_factory: pytest.TempPathFactory) -> LocalTls:
    return ensure_local_tls(tmp_path_factory.mktemp("ca"), "127.0.0.1")


def new_certificate(ca: LocalTls, directory: Path) -> bytes:
    """A client certificate (PEM) the local CA signed, new each time."""
    name = unique_id("client")
    files = ClientCertificate(directory / f"{name}.pem", directory / f"{name}-key.pem")
    issue_client_certificate(ca, files, name)
    return files.cert_file.read_bytes()


async def test_a_certificates_key_stores_its_fingerprint_and_no_secret(
    pg_pool: asyncpg.Pool, local_ca: LocalTls, tmp_path: Path
) -> None:
    pem = new_certificate(local_ca, tmp_path)
    key = await keys.register_certificate(pg_pool, pem, Role.SEARCH, "shop", "a kiosk")
    assert key.cert_sha256 == certificate_sha256(pem) and key.secret_sha256 == b""
    assert (key.role, key.app, key.description) == (Role.SEARCH, "shop", "a kiosk")
    row = await pg_pool.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", key.key_id)
    assert row is not None and row["secret_sha256"] is None
    assert bytes(row["cert_sha256"]) == key.cert_sha256
    listed = {k.key_id: k for k in await keys.list_keys(pg_pool)}
    assert listed[key.key_id].cert_sha256 == key.cert_sha256
    # No token proves it, whatever its secret part.
    verifier = KeyVerifier(pg_pool, ttl_seconds=0)
    assert await verifier.verify(f"es_{key.key_id}_") is None
    assert await verifier.verify(f"es_{key.key_id}_anything") is None
    # A row is proved by a token or by a certificate: never by both, never by neither.
    for secret, cert in [(hash_secret("s"), key.cert_sha256), (None, None)]:
        with pytest.raises(asyncpg.CheckViolationError):
            await pg_pool.execute(
                "INSERT INTO api_keys (key_id, secret_sha256, cert_sha256, role)"
                " VALUES ($1, $2, $3, 'admin')",
                unique_id("k")[-16:],
                secret,
                cert,
            )


async def test_a_certificate_verifies_until_revoked_within_the_caches_ttl(
    pg_pool: asyncpg.Pool, local_ca: LocalTls, tmp_path: Path
) -> None:
    pem = new_certificate(local_ca, tmp_path)
    key = await keys.register_certificate(pg_pool, pem, Role.WRITE)
    clock = Clock()
    verifier = KeyVerifier(pg_pool, ttl_seconds=5, clock=clock)
    verified = await verifier.verify_certificate(pem)
    assert verified is not None and verified.key_id == key.key_id
    assert await verifier.verify_certificate(pem.decode()) == verified

    await keys.revoke_key(pg_pool, key.key_id)
    clock.now = 4.9  # still the cached row
    assert await verifier.verify_certificate(pem) is not None
    clock.now = 5.0  # read again: revoked
    assert await verifier.verify_certificate(pem) is None
    listed = await keys.list_keys(pg_pool, include_revoked=True)
    assert any(k.key_id == key.key_id and k.revoked for k in listed)

    # Registered again once revoked: a new key, with the role it is given now.
    again = await keys.register_certificate(pg_pool, pem, Role.ADMIN)
    assert again.key_id != key.key_id
    clock.now = 10.0
    verified = await verifier.verify_certificate(pem)
    assert verified is not None and (verified.key_id, verified.role) == (again.key_id, Role.ADMIN)


async def test_unregistered_certificates_and_non_certificates_verify_as_nobody(
    pg_pool: asyncpg.Pool, local_ca: LocalTls, tmp_path: Path
) -> None:
    verifier = KeyVerifier(pg_pool, ttl_seconds=5)
    assert await verifier.verify_certificate(new_certificate(local_ca, tmp_path)) is None
    assert await verifier.verify_certificate(b"not a certificate") is None


async def test_bad_certificate_registrations_name_the_field(
    pg_pool: asyncpg.Pool, local_ca: LocalTls, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await keys.register_certificate(pg_pool, "-----BEGIN CERTIFICATE-----\n", Role.SEARCH)
    assert caught.value.violations[0].field == "client_cert_pem"
    pem = new_certificate(local_ca, tmp_path)
    with pytest.raises(InvalidArgument) as caught:
        await keys.register_certificate(pg_pool, pem, Role.SEARCH, app="bad app")
    assert caught.value.violations[0].field == "app"
    first = await keys.register_certificate(pg_pool, pem, Role.SEARCH)
    with pytest.raises(AlreadyExists) as taken:
        await keys.register_certificate(pg_pool, pem, Role.ADMIN)
    assert taken.value.violations[0].field == "client_cert_pem"
    live = [k for k in await keys.list_keys(pg_pool) if k.cert_sha256 == first.cert_sha256]
    assert [(k.key_id, k.role) for k in live] == [(first.key_id, Role.SEARCH)]


async def test_the_interceptor_takes_a_certificate_when_the_call_has_no_token(
    pg_pool: asyncpg.Pool, local_ca: LocalTls, tmp_path: Path
) -> None:
    verifier = KeyVerifier(pg_pool, ttl_seconds=0)
    searcher_pem = new_certificate(local_ca, tmp_path)
    searcher = await keys.register_certificate(pg_pool, searcher_pem, Role.SEARCH, app="kiosk")
    admin_token = (await keys.create_key(pg_pool, Role.ADMIN)).token
    unknown_pem = new_certificate(local_ca, tmp_path)

    admitted = await authorize(verifier, [], Role.SEARCH, searcher_pem)
    assert (admitted.key_id, admitted.app) == (searcher.key_id, "kiosk")
    with pytest.raises(Refusal) as caught:
        await authorize(verifier, [], Role.ADMIN, searcher_pem)
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert searcher.key_id in caught.value.message
    with pytest.raises(Refusal) as caught:
        await authorize(verifier, [], Role.SEARCH, unknown_pem)
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "certificate is not registered" in caught.value.message

    # A bearer token, when there is one, decides alone: a good one over an unknown certificate,
    # and a bad one is refused whatever certificate comes with it.
    bearer = [("authorization", f"Bearer {admin_token}")]
    assert (await authorize(verifier, bearer, Role.ADMIN, unknown_pem)).role is Role.ADMIN
    assert (await authorize(verifier, bearer, Role.ADMIN, searcher_pem)).role is Role.ADMIN
    forged = [("authorization", "Bearer es_0123456789abcdef_x")]
    with pytest.raises(Refusal) as caught:
        await authorize(verifier, forged, Role.SEARCH, searcher_pem)
    assert caught.value.code is grpc.StatusCode.UNAUTHENTICATED
    assert "API key" in caught.value.message


async def test_token_keys_made_before_certificates_existed_still_verify(
    pg_server: EmbeddedPostgres,
) -> None:
    """Migration 0011 lets a key be of a certificate; the keys of tokens made before stay."""
    async with fresh_database(pg_server.dsn) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn, below=11)
            key_id, token, digest = new_token()
            await conn.execute(
                "INSERT INTO api_keys (key_id, secret_sha256, role, app)"
                " VALUES ($1, $2, 'write', 'shop')",
                key_id,
                digest,
            )
            assert await migrate(conn) == [v for v, _, _ in available_migrations() if v >= 11]
            verified = await KeyVerifier(conn, ttl_seconds=0).verify(token)
        finally:
            await conn.close()
    assert verified is not None and verified.key_id == key_id
    assert (verified.role, verified.app, verified.cert_sha256) == (Role.WRITE, "shop", b"")
