"""Client certificates as identities on a real stack (`es up --mtls`, ES_AUTH=required): the
operator's certificate es up made, registered as admin with `es keys create --client-cert`; the
others signed by the same local CA and registered through KeyService. One stack for all."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from embedding_studio.client import Client
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import deployment_pb2, keys_pb2, search_pb2
from es_cli.local_tls import ClientCertificate, LocalTls, ensure_local_tls, issue_client_certificate
from es_core.api_keys.model import certificate_sha256
from es_harness.keys import es_keys
from es_harness.throwaway import StackInfo, ThrowawayStack
from tests.e2e.conftest import NO_TRITON
from tests.e2e.grpc_errors import expect_error
from tests.e2e.test_auth import DENIED, UNAUTHENTICATED, new_key

pytestmark = pytest.mark.e2e

SEARCH = search_pb2.SearchRequest(query_text="cells")


@pytest.fixture(scope="module")
def mtls_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackInfo]:
    env = {
        **NO_TRITON,
        "ES_AUTH": "required",
        "ES_LOCAL_MTLS": "true",
        "ES_AUTH_CACHE_SECONDS": "1",
    }
    with ThrowawayStack(Path(tmp_path_factory.mktemp("mtls")), extra_env=env) as info:
        yield info


@pytest.fixture(scope="module")
def local_ca(mtls_stack: StackInfo) -> LocalTls:
    """The CA es up made (kept, not made again: its files are all there)."""
    tls = ensure_local_tls(mtls_stack.data_dir / "tls", "127.0.0.1")
    assert str(tls.ca_file) == mtls_stack.tls_ca_file
    return tls


@pytest.fixture(scope="module")
def operator(mtls_stack: StackInfo) -> ClientCertificate:
    """es up's own client certificate, registered as admin by `es keys create --client-cert`."""
    assert mtls_stack.tls_client_cert_file, "es up made no client certificate"
    cert = ClientCertificate(
        Path(mtls_stack.tls_client_cert_file), Path(mtls_stack.tls_client_key_file)
    )
    printed = es_keys(mtls_stack, "create", "--role", "admin", "--client-cert", str(cert.cert_file))
    fingerprint = certificate_sha256(cert.cert_file.read_bytes()).hex()
    assert f"client certificate sha256: {fingerprint}" in printed
    assert "token" not in printed.splitlines()[-1]
    return cert


def connect(stack: StackInfo, cert: ClientCertificate | None, token: str | None = None) -> Client:
    return Client(
        stack.grpc_address,
        api_key=token,
        root_certificates=Path(stack.tls_ca_file).read_bytes(),
        client_certificate_chain=cert.cert_file.read_bytes() if cert else None,
        client_private_key=cert.key_file.read_bytes() if cert else None,
    )


@pytest.fixture(scope="module")
def admin(mtls_stack: StackInfo, operator: ClientCertificate) -> Iterator[Client]:
    with connect(mtls_stack, operator) as c:
        yield c


def signed_by_the_ca(ca: LocalTls, directory: Path) -> ClientCertificate:
    name = f"caller-{uuid.uuid4().hex[:8]}"
    cert = ClientCertificate(directory / f"{name}.pem", directory / f"{name}-key.pem")
    issue_client_certificate(ca, cert, name)
    return cert


def register(
    admin: Client, cert: ClientCertificate, role: keys_pb2.ApiKeyRole, app: str = ""
) -> keys_pb2.ApiKey:
    reply = admin.keys.CreateApiKey(
        keys_pb2.CreateApiKeyRequest(
            role=role, app=app, client_cert_pem=cert.cert_file.read_text()
        ),
        timeout=30,
    )
    assert reply.token == "" and reply.key.role == role and reply.key.app == app
    assert reply.key.client_cert_sha256 == certificate_sha256(cert.cert_file.read_bytes()).hex()
    key: keys_pb2.ApiKey = reply.key
    return key


def test_es_up_serves_mutual_tls_and_a_client_without_a_certificate_cannot_connect(
    mtls_stack: StackInfo,
) -> None:
    recorded = json.loads((mtls_stack.data_dir / "stack.json").read_text())
    assert recorded["tls_client_cert_file"] == mtls_stack.tls_client_cert_file
    # Health is open: the certificate es up made is enough, with no key registered for it.
    with connect(
        mtls_stack,
        ClientCertificate(
            Path(mtls_stack.tls_client_cert_file), Path(mtls_stack.tls_client_key_file)
        ),
    ) as c:
        health = health_pb2_grpc.HealthStub(c.channel)
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=30).status == (
            health_pb2.HealthCheckResponse.SERVING
        )
    with connect(mtls_stack, None) as anonymous:
        health = health_pb2_grpc.HealthStub(anonymous.channel)
        expect_error(
            lambda: health.Check(health_pb2.HealthCheckRequest(), timeout=5),
            grpc.StatusCode.UNAVAILABLE,
        )
        expect_error(
            lambda: anonymous.search.Search(SEARCH, timeout=5), grpc.StatusCode.UNAVAILABLE
        )


def test_a_search_certificate_searches_but_cannot_delete_collections(
    mtls_stack: StackInfo, local_ca: LocalTls, admin: Client, tmp_path: Path
) -> None:
    cert = signed_by_the_ca(local_ca, tmp_path)
    key = register(admin, cert, keys_pb2.API_KEY_ROLE_SEARCH)
    blue = admin.get_blue_collection()
    with connect(mtls_stack, cert) as searcher:
        searcher.search.Search(SEARCH, timeout=60)
        error = expect_error(
            lambda: searcher.deployment.DeleteCollection(
                deployment_pb2.DeleteCollectionRequest(collection_id=blue.collection_id),
                timeout=30,
            ),
            DENIED,
        )
        assert key.key_id in error.details()
    assert admin.get_blue_collection().collection_id == blue.collection_id
    listed = admin.keys.ListApiKeys(keys_pb2.ListApiKeysRequest(), timeout=30)
    assert key.client_cert_sha256 in {k.client_cert_sha256 for k in listed.keys}


def test_a_certificate_the_ca_signed_but_no_admin_registered_is_unauthenticated(
    mtls_stack: StackInfo, local_ca: LocalTls, tmp_path: Path
) -> None:
    with connect(mtls_stack, signed_by_the_ca(local_ca, tmp_path)) as stranger:
        error = expect_error(lambda: stranger.search.Search(SEARCH, timeout=30), UNAUTHENTICATED)
    assert "certificate is not registered" in error.details()


def test_a_revoked_certificate_is_refused_within_seconds(
    mtls_stack: StackInfo, local_ca: LocalTls, admin: Client, tmp_path: Path
) -> None:
    cert = signed_by_the_ca(local_ca, tmp_path)
    key = register(admin, cert, keys_pb2.API_KEY_ROLE_SEARCH)
    with connect(mtls_stack, cert) as searcher:
        searcher.search.Search(SEARCH, timeout=60)
        admin.keys.RevokeApiKey(keys_pb2.RevokeApiKeyRequest(key_id=key.key_id), timeout=30)
        deadline = time.monotonic() + 15
        while True:
            try:
                searcher.search.Search(SEARCH, timeout=30)
            except grpc.RpcError as error:
                assert error.code() == UNAUTHENTICATED, error.details()
                break
            assert time.monotonic() < deadline, "the revoked certificate still works"
            time.sleep(0.5)


def assert_invisible(other: Client, session_id: str) -> None:
    """Another app's session: as if it did not exist."""
    read = cs.GetSessionRequest(session_id=session_id)
    expect_error(lambda: other.clickstream.GetSession(read, timeout=30), grpc.StatusCode.NOT_FOUND)
    listed = other.clickstream.ListSessions(cs.ListSessionsRequest(page_size=1000), timeout=30)
    assert session_id not in {s.session_id for s in listed.sessions}


def test_a_certificate_bound_to_an_app_sees_only_its_apps_sessions(
    mtls_stack: StackInfo, local_ca: LocalTls, admin: Client, tmp_path: Path
) -> None:
    a_cert, b_cert = signed_by_the_ca(local_ca, tmp_path), signed_by_the_ca(local_ca, tmp_path)
    register(admin, a_cert, keys_pb2.API_KEY_ROLE_WRITE, app="app-a")
    register(admin, b_cert, keys_pb2.API_KEY_ROLE_SEARCH, app="app-b")
    b_token = new_key(admin, keys_pb2.API_KEY_ROLE_SEARCH, app="app-b")
    session_id = f"mtls-{uuid.uuid4().hex[:12]}"
    session = cs.Session(session_id=session_id, results=[cs.ShownResult(object_id="o1", rank=0)])
    read = cs.GetSessionRequest(session_id=session_id)
    with (
        connect(mtls_stack, a_cert) as app_a,
        connect(mtls_stack, b_cert) as app_b,
        # A bearer token decides over the certificate: app-a's certificate, app-b's key.
        connect(mtls_stack, a_cert, token=b_token) as a_cert_b_key,
    ):
        app_a.clickstream.RegisterSession(cs.RegisterSessionRequest(session=session), timeout=60)
        assert app_a.clickstream.GetSession(read, timeout=30).session.session_id == session_id
        for other in (app_b, a_cert_b_key):
            assert_invisible(other, session_id)
    # The operator's certificate is of no app: it sees every app's sessions.
    assert admin.clickstream.GetSession(read, timeout=30).session.session_id == session_id


def test_a_bad_or_already_registered_certificate_is_refused_naming_the_field(
    admin: Client, operator: ClientCertificate
) -> None:
    def create(pem: str) -> object:
        return admin.keys.CreateApiKey(
            keys_pb2.CreateApiKeyRequest(role=keys_pb2.API_KEY_ROLE_SEARCH, client_cert_pem=pem),
            timeout=30,
        )

    expect_error(
        lambda: create(operator.key_file.read_text()),
        grpc.StatusCode.INVALID_ARGUMENT,
        "client_cert_pem",
    )
    expect_error(
        lambda: create(operator.cert_file.read_text()),
        grpc.StatusCode.ALREADY_EXISTS,
        "client_cert_pem",
    )
