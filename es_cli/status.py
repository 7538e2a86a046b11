"""``es status``: is each part of the stack up? PostgreSQL, the broker, Triton, and the gRPC
server's health service for each service. Exit 1 when any part is down."""

from __future__ import annotations

import argparse
import asyncio
from dataclasses import dataclass

import asyncpg
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from es_cli.api_options import add_api_arguments, api_address, health_channel
from es_core.config import Settings, redacted_url

UP, DOWN, UNUSED = "up", "down", "unused"


@dataclass(frozen=True)
class Part:
    name: str
    where: str
    state: str
    detail: str = ""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_api_arguments(parser)
    parser.add_argument(
        "--timeout", type=float, default=3.0, help="seconds each check may take (default 3)"
    )


def run_status(settings: Settings, args: argparse.Namespace) -> int:
    parts = [
        _postgres(settings, args.timeout),
        _broker(settings, args.timeout),
        _triton(settings, args.timeout),
        *_server(settings, args),
    ]
    print(format_parts(parts))
    return 1 if any(p.state == DOWN for p in parts) else 0


def format_parts(parts: list[Part]) -> str:
    width = max(len(p.name) for p in parts)
    lines = [f"{'PART':<{width}}  {'STATE':<8}  WHERE"]
    for p in parts:
        detail = f"  ({p.detail})" if p.detail else ""
        lines.append(f"{p.name:<{width}}  {p.state:<8}  {p.where}{detail}")
    return "\n".join(lines)


def _postgres(settings: Settings, timeout: float) -> Part:
    dsn = settings.postgres_dsn
    if not dsn:
        return Part("postgresql", "-", DOWN, "ES_POSTGRES_DSN is not set")

    async def check() -> None:
        conn = await asyncpg.connect(dsn, timeout=timeout)
        try:
            await conn.fetchval("SELECT 1", timeout=timeout)
        finally:
            await conn.close()

    where = redacted_url(dsn) if "://" in dsn else dsn
    try:
        asyncio.run(asyncio.wait_for(check(), timeout))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return Part("postgresql", where, DOWN, _first_line(exc))
    return Part("postgresql", where, UP)


def _broker(settings: Settings, timeout: float) -> Part:
    from es_broker.celery_sender import CelerySender, broker_app

    where = redacted_url(settings.broker_url)
    up = CelerySender(broker_app(settings)).reachable(timeout)
    return Part("broker", where, UP if up else DOWN)


def _triton(settings: Settings, timeout: float) -> Part:
    if settings.triton_url:
        url = settings.triton_url
    elif settings.serve_with_triton:
        url = f"{settings.triton_host}:{settings.triton_grpc_port}"
    else:
        return Part("triton", "-", UNUSED, "models are served in-process")
    from es_core.encoders.triton import server_live

    try:
        up = server_live(url, timeout=timeout)
    except Exception as exc:  # the client raises what its transport raised
        return Part("triton", url, DOWN, _first_line(exc))
    return Part("triton", url, UP if up else DOWN)


def _server(settings: Settings, args: argparse.Namespace) -> list[Part]:
    """The server as a whole ("server"), then each service its health service reports."""
    from es_server.dependency_health import needs_by_service

    address = api_address(settings, args)
    names = sorted(needs_by_service(through_triton=False))
    parts = []
    with health_channel(settings, args) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for name in names:
            label = name.rpartition(".")[2] if name else "server"
            try:
                request = health_pb2.HealthCheckRequest(service=name)
                reply = stub.Check(request, timeout=args.timeout)
            except grpc.RpcError as exc:
                parts.append(Part(label, address, DOWN, str(exc.code().name)))
                if not name:
                    return parts  # the server does not answer: its services do not either
                continue
            serving = reply.status == health_pb2.HealthCheckResponse.SERVING
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
            parts.append(Part(label, address, UP if serving else DOWN, "" if serving else status))
    return parts


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
