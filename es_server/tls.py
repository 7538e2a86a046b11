"""How the server listens: TLS credentials from the settings, and the refusal to expose a
plaintext or unauthenticated server beyond loopback."""

from __future__ import annotations

import ipaddress

import grpc

from es_core.config import Settings


class UnsafeListen(RuntimeError):
    """The settings would expose the server beyond this machine without TLS or keys."""


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials when a certificate is configured (mutual TLS with a client CA); None
    for plaintext."""
    cert, key, client_ca = (
        settings.tls_cert_file,
        settings.tls_key_file,
        settings.tls_client_ca_file,
    )
    if (cert is None) != (key is None):
        raise UnsafeListen("set both ES_TLS_CERT_FILE and ES_TLS_KEY_FILE, or neither")
    if cert is None or key is None:
        if client_ca is not None:
            raise UnsafeListen("ES_TLS_CLIENT_CA_FILE needs ES_TLS_CERT_FILE and ES_TLS_KEY_FILE")
        return None
    return grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca is not None else None,
        require_client_auth=client_ca is not None,
    )


def check_exposure(settings: Settings, tls: bool) -> None:
    """Beyond loopback the server needs API keys and TLS (its own, or a proxy's in front)."""
    if is_loopback(settings.grpc_host):
        return
    where = f"ES_GRPC_HOST={settings.grpc_host} is not a loopback address"
    if settings.auth != "required":
        raise UnsafeListen(f"{where}: set ES_AUTH=required so callers need an API key")
    if not tls and not settings.behind_tls_proxy:
        raise UnsafeListen(
            f"{where}: set ES_TLS_CERT_FILE and ES_TLS_KEY_FILE, or ES_BEHIND_TLS_PROXY=true"
            " when a proxy in front terminates TLS"
        )
