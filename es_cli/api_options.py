"""How the commands that call the API reach it: address, API key, TLS (flags over ES_*)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import grpc

from embedding_studio.client import Client
from es_core.config import Settings


def add_api_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", help="the gRPC server HOST:PORT (default: $ES_GRPC_HOST:$ES_GRPC_PORT)"
    )
    parser.add_argument("--api-key", help="API key (default: $ES_API_KEY)")
    parser.add_argument(
        "--ca", help="PEM CA to trust: the server speaks TLS (default: $ES_TLS_CA_FILE)"
    )
    parser.add_argument(
        "--client-cert", help="PEM client certificate for mutual TLS ($ES_TLS_CLIENT_CERT_FILE)"
    )
    parser.add_argument("--client-key", help="PEM key of --client-cert ($ES_TLS_CLIENT_KEY_FILE)")


def api_address(settings: Settings, args: argparse.Namespace) -> str:
    return str(args.address or f"{settings.grpc_host}:{settings.grpc_port}")


def _file(flag: str | None, variable: str) -> bytes | None:
    path = flag or os.environ.get(variable)
    return Path(path).read_bytes() if path else None


def tls_files(args: argparse.Namespace) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(CA, client certificate, client key), each None when not given."""
    return (
        _file(args.ca, "ES_TLS_CA_FILE"),
        _file(args.client_cert, "ES_TLS_CLIENT_CERT_FILE"),
        _file(args.client_key, "ES_TLS_CLIENT_KEY_FILE"),
    )


def api_client(settings: Settings, args: argparse.Namespace) -> Client:
    ca, cert, key = tls_files(args)
    return Client(
        api_address(settings, args),
        api_key=args.api_key or os.environ.get("ES_API_KEY") or None,
        root_certificates=ca,
        client_certificate_chain=cert,
        client_private_key=key,
    )


def health_channel(settings: Settings, args: argparse.Namespace) -> grpc.Channel:
    """A channel for the health service (it needs no API key)."""
    ca, cert, key = tls_files(args)
    address = api_address(settings, args)
    if ca is None and cert is None:
        return grpc.insecure_channel(address)
    credentials = grpc.ssl_channel_credentials(ca, private_key=key, certificate_chain=cert)
    return grpc.secure_channel(address, credentials)


def call_failed(command: str, error: grpc.RpcError) -> int:
    """Print what the server answered to a failed call; the command's exit code."""
    code = error.code().name if isinstance(error, grpc.Call) else "UNKNOWN"
    details = error.details() if isinstance(error, grpc.Call) else str(error)
    print(f"es {command}: {code}: {details}")
    return 1


def enum_label(name: str, prefix: str) -> str:
    """``TASK_STATUS_DONE`` -> ``done``."""
    return name.removeprefix(prefix).lower()
