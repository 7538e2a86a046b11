"""API keys without a database: tokens, hashes, roles, the role table, bearer headers, the
exposure rule and the local TLS files."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

import embedding_studio.v1 as v1_package
from es_cli.local_tls import ensure_local_tls
from es_core.api_keys.model import (
    ApiKey,
    Role,
    check_app,
    hash_secret,
    new_token,
    secret_matches,
    split_token,
)
from es_core.config import Settings
from es_core.errors import InvalidArgument
from es_server.auth import bearer_token
from es_server.method_roles import METHOD_ROLES, required_role
from es_server.tls import UnsafeListen, check_exposure, is_loopback, server_credentials


def test_a_new_token_splits_into_its_key_id_and_a_secret_only_its_hash_matches() -> None:
    key_id, token, digest = new_token()
    assert token.startswith(f"es_{key_id}_")
    parts = split_token(token)
    assert parts is not None and parts[0] == key_id
    key = ApiKey(key_id, Role.SEARCH, secret_sha256=digest)
    assert secret_matches(key, parts[1])
    assert not secret_matches(key, parts[1] + "x")
    assert digest == hash_secret(parts[1]) and parts[1].encode() not in digest
    assert new_token()[1] != token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "es",
        "es_",
        "xx_0123456789abcdef_secret",
        "es_0123456789ABCDEF_s",
        "es_0123_s",
        "es_0123456789abcdef_",
        "Bearer es_0123456789abcdef_s",
    ],
)
def test_malformed_tokens_do_not_split(token: str) -> None:
    assert split_token(token) is None


def test_roles_include_the_ones_below_and_parse_by_name() -> None:
    assert Role.SEARCH < Role.WRITE < Role.ADMIN
    assert Role.parse("write") is Role.WRITE
    with pytest.raises(InvalidArgument) as caught:
        Role.parse("root")
    assert caught.value.violations[0].field == "role"


@pytest.mark.parametrize("app", ["a b", "x" * 65, "app\x00", "app/other"])
def test_bad_app_names_are_refused_naming_the_field(app: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_app(app)
    assert caught.value.violations[0].field == "app"


def _declared_methods() -> set[str]:
    """Every method of every service the generated modules of the contract declare."""
    import importlib
    import pkgutil

    methods = set()
    for module_info in pkgutil.iter_modules(v1_package.__path__):
        if not module_info.name.endswith("_pb2"):
            continue
        descriptor = importlib.import_module(f"embedding_studio.v1.{module_info.name}").DESCRIPTOR
        for service in descriptor.services_by_name.values():
            methods |= {f"/{service.full_name}/{m.name}" for m in service.methods}
    return methods


def test_the_role_table_maps_every_method_of_every_service_and_nothing_else() -> None:
    declared = _declared_methods()
    assert "/embedding_studio.v1.KeyService/CreateApiKey" in declared
    assert set(METHOD_ROLES) == declared


def test_the_roles_the_issue_names() -> None:
    def role(path: str) -> Role:
        return required_role(f"/embedding_studio.v1.{path}")

    assert role("SearchService/Search") is Role.SEARCH
    assert role("SuggestionService/Suggest") is Role.SEARCH
    assert role("ClickstreamService/PushEvents") is Role.SEARCH
    assert role("UpsertService/UpsertItems") is Role.WRITE
    assert role("UpsertService/DeleteItems") is Role.WRITE
    for admin in [
        "DeploymentService/DeleteCollection",
        "DeploymentService/SwitchBlueCollection",
        "TaskService/CancelTask",
        "FineTuneService/StartFineTuning",
        "KeyService/CreateApiKey",
    ]:
        assert role(admin) is Role.ADMIN
    assert required_role("/embedding_studio.v1.NewService/Anything") is Role.ADMIN


def test_the_bearer_token_is_read_from_the_authorization_header_only() -> None:
    assert bearer_token([("authorization", "Bearer es_x_y")]) == "es_x_y"
    assert bearer_token([("x-other", "1"), ("authorization", "bearer  es_x_y ")]) == "es_x_y"
    assert bearer_token([("authorization", "Basic dXNlcg==")]) is None
    assert bearer_token([("x-authorization", "Bearer es_x_y")]) is None
    assert bearer_token(None) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "10.0.0.5", "example.org", ""])
def test_hosts_beyond_loopback(host: str) -> None:
    assert not is_loopback(host)


def test_the_server_refuses_to_listen_beyond_loopback_without_keys_and_tls() -> None:
    check_exposure(Settings(grpc_host="127.0.0.1"), tls=False)
    with pytest.raises(UnsafeListen, match="ES_AUTH=required"):
        check_exposure(Settings(grpc_host="0.0.0.0"), tls=True)
    with pytest.raises(UnsafeListen, match="ES_BEHIND_TLS_PROXY"):
        check_exposure(Settings(grpc_host="0.0.0.0", auth="required"), tls=False)
    check_exposure(Settings(grpc_host="0.0.0.0", auth="required"), tls=True)
    check_exposure(Settings(grpc_host="0.0.0.0", auth="required", behind_tls_proxy=True), tls=False)


def test_tls_needs_both_the_certificate_and_its_key(tmp_path: Path) -> None:
    assert server_credentials(Settings()) is None
    with pytest.raises(UnsafeListen, match="both"):
        server_credentials(Settings(tls_cert_file=tmp_path / "server.pem"))
    with pytest.raises(UnsafeListen, match="ES_TLS_CLIENT_CA_FILE"):
        server_credentials(Settings(tls_client_ca_file=tmp_path / "ca.pem"))
    files = ensure_local_tls(tmp_path / "tls", "127.0.0.1")
    made = server_credentials(Settings(tls_cert_file=files.cert_file, tls_key_file=files.key_file))
    assert isinstance(made, grpc.ServerCredentials)


def test_the_local_ca_signs_a_server_certificate_for_loopback_and_the_host(
    tmp_path: Path,
) -> None:
    files = ensure_local_tls(tmp_path / "tls", "10.1.2.3")
    ca = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
    server = x509.load_pem_x509_certificate(files.cert_file.read_bytes())
    server.verify_directly_issued_by(ca)
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address(a) for a in ["127.0.0.1", "::1", "10.1.2.3"]
    }
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert files.key_file.stat().st_mode & 0o077 == 0
    public = server.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    # Made once: a second call keeps the files clients already trust.
    before = files.ca_file.read_bytes()
    assert ensure_local_tls(tmp_path / "tls", "10.1.2.3") == files
    assert files.ca_file.read_bytes() == before
