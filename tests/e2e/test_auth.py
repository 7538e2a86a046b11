"""Authentication, roles, app scopes and TLS on a real stack (`es up --tls`, ES_AUTH=required):
the first key made with `es keys create`, the others through KeyService."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import deployment_pb2, keys_pb2, search_pb2, task_pb2
from es_harness.keys import first_admin_token
from es_harness.throwaway import StackInfo, ThrowawayStack
from tests.e2e.conftest import NO_TRITON
from tests.e2e.grpc_errors import expect_error

pytestmark = pytest.mark.e2e

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED


@pytest.fixture(scope="module")
def secure_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    env = {**NO_TRITON, "ES_AUTH": "required", "ES_LOCAL_TLS": "true", "ES_AUTH_CACHE_SECONDS": "1"}
    with ThrowawayStack(Path(tmp_path_factory.mktemp("secure")), extra_env=env) as info:
        yield info


@pytest.fixture(scope="module")
def root(secure_stack: StackInfo) -> bytes:
    assert secure_stack.tls_ca_file, "es up made no local CA"
    return Path(secure_stack.tls_ca_file).read_bytes()


@pytest.fixture(scope="module")
def admin_token(secure_stack: StackInfo) -> str:
    """The first admin key, made by `es keys create` straight in the stack's database."""
    return first_admin_token(secure_stack)


@pytest.fixture(scope="module")
def admin(secure_stack: StackInfo, root: bytes, admin_token: str) -> Iterator[Client]:
    with Client(secure_stack.grpc_address, api_key=admin_token, root_certificates=root) as c:
        yield c


def new_key(admin: Client, role: int, app: str = "") -> str:
    reply = admin.keys.CreateApiKey(keys_pb2.CreateApiKeyRequest(role=role, app=app), timeout=30)
    assert reply.key.role == role and reply.key.app == app and reply.token
    return reply.token


def client(stack: StackInfo, root: bytes, token: str | None) -> Client:
    return Client(stack.grpc_address, api_key=token, root_certificates=root)


def test_health_is_open_and_a_plaintext_client_cannot_connect(
    secure_stack: StackInfo, root: bytes
) -> None:
    with grpc.secure_channel(secure_stack.grpc_address, grpc.ssl_channel_credentials(root)) as ch:
        reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(), timeout=30)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(secure_stack.grpc_address) as ch:
        expect_error(
            lambda: health_pb2_grpc.HealthStub(ch).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            ),
            grpc.StatusCode.UNAVAILABLE,
        )


def test_no_key_or_a_made_up_key_is_unauthenticated(secure_stack: StackInfo, root: bytes) -> None:
    request = search_pb2.SearchRequest(query_text="anything")
    with client(secure_stack, root, None) as anonymous:
        expect_error(lambda: anonymous.search.Search(request, timeout=30), UNAUTHENTICATED)
    with client(secure_stack, root, "es_0123456789abcdef_made-up") as forged:
        expect_error(lambda: forged.search.Search(request, timeout=30), UNAUTHENTICATED)


def test_a_search_key_searches_but_cannot_delete_collections_or_cancel_tasks(
    secure_stack: StackInfo, root: bytes, admin: Client
) -> None:
    token = new_key(admin, keys_pb2.API_KEY_ROLE_SEARCH)
    blue = admin.get_blue_collection()
    with client(secure_stack, root, token) as searcher:
        searcher.search.Search(search_pb2.SearchRequest(query_text="cells"), timeout=60)
        expect_error(
            lambda: searcher.deployment.DeleteCollection(
                deployment_pb2.DeleteCollectionRequest(collection_id=blue.collection_id),
                timeout=30,
            ),
            DENIED,
        )
        expect_error(
            lambda: searcher.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id="t"), timeout=30),
            DENIED,
        )
        expect_error(
            lambda: searcher.keys.CreateApiKey(
                keys_pb2.CreateApiKeyRequest(role=keys_pb2.API_KEY_ROLE_ADMIN), timeout=30
            ),
            DENIED,
        )
    # The blue collection is still there.
    assert admin.get_blue_collection().collection_id == blue.collection_id


def test_a_revoked_key_is_refused_within_seconds(
    secure_stack: StackInfo, root: bytes, admin: Client
) -> None:
    token = new_key(admin, keys_pb2.API_KEY_ROLE_SEARCH)
    key_id = token.split("_")[1]
    request = search_pb2.SearchRequest(query_text="cells")
    with client(secure_stack, root, token) as searcher:
        searcher.search.Search(request, timeout=60)
        admin.keys.RevokeApiKey(keys_pb2.RevokeApiKeyRequest(key_id=key_id), timeout=30)
        deadline = time.monotonic() + 15
        while True:
            try:
                searcher.search.Search(request, timeout=30)
            except grpc.RpcError as error:
                assert error.code() == UNAUTHENTICATED
                break
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.5)
    listed = admin.keys.ListApiKeys(keys_pb2.ListApiKeysRequest(include_revoked=True), timeout=30)
    assert any(k.key_id == key_id and k.HasField("revoke_time") for k in listed.keys)


def test_one_apps_key_cannot_read_or_push_into_another_apps_session(
    secure_stack: StackInfo, root: bytes, admin: Client
) -> None:
    a_token = new_key(admin, keys_pb2.API_KEY_ROLE_WRITE, app="app-a")
    b_token = new_key(admin, keys_pb2.API_KEY_ROLE_SEARCH, app="app-b")
    session_id = f"auth-{uuid.uuid4().hex[:12]}"
    session = cs.Session(session_id=session_id, results=[cs.ShownResult(object_id="o1", rank=0)])
    with client(secure_stack, root, a_token) as app_a, client(secure_stack, root, b_token) as app_b:
        app_a.clickstream.RegisterSession(cs.RegisterSessionRequest(session=session), timeout=60)
        expect_error(
            lambda: app_b.clickstream.GetSession(
                cs.GetSessionRequest(session_id=session_id), timeout=30
            ),
            grpc.StatusCode.NOT_FOUND,
        )
        purchase = cs.SessionEvent(
            event_id=f"e-{session_id}", session_id=session_id, object_id="o1", event_type="purchase"
        )
        expect_error(
            lambda: app_b.clickstream.PushEvents(
                cs.PushEventsRequest(events=[purchase]), timeout=30
            ),
            grpc.StatusCode.NOT_FOUND,
            "events[0].session_id",
        )
        queued = app_b.clickstream.UseSessionsForImprovement(
            cs.UseSessionsForImprovementRequest(session_ids=[session_id]), timeout=30
        )
        assert queued.queued_count == 0
        listed_by_b = app_b.clickstream.ListSessions(
            cs.ListSessionsRequest(page_size=1000), timeout=30
        )
        assert session_id not in {s.session_id for s in listed_by_b.sessions}
        listed_by_a = app_a.clickstream.ListSessions(
            cs.ListSessionsRequest(page_size=1000), timeout=30
        )
        assert session_id in {s.session_id for s in listed_by_a.sessions}
        read = app_a.clickstream.GetSession(cs.GetSessionRequest(session_id=session_id), timeout=30)
        assert list(read.session.events) == []
    # The admin's key is of no app: it sees every app's sessions.
    every = admin.clickstream.ListSessions(cs.ListSessionsRequest(page_size=1000), timeout=30)
    assert session_id in {s.session_id for s in every.sessions}
