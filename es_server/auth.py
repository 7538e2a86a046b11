"""Who calls: the interceptor that checks the caller's key (a bearer token, else a client
certificate registered for a key) against the role an RPC needs, and the caller's key for the
servicers that scope what they read and write by its app."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from contextvars import ContextVar
from typing import Any

import asyncpg
import grpc

from es_core.api_keys.model import ApiKey, Role
from es_core.api_keys.verifier import KeyVerifier
from es_server.method_roles import required_role

log = logging.getLogger("es_server.auth")

_CALLER: ContextVar[ApiKey | None] = ContextVar("es_caller", default=None)
_BEARER = "bearer "
# The peer's leaf certificate in gRPC's auth context, there once TLS has verified it.
_PEER_CERTIFICATE = "x509_pem_cert"


def caller_app() -> str | None:
    """The app the caller's key is bound to; None when it may see every app (a key of no app,
    or authentication off)."""
    key = _CALLER.get()
    return key.app if key is not None and key.app else None


class Refusal(Exception):
    """Why a call is refused: UNAUTHENTICATED (no or bad key or certificate), PERMISSION_DENIED
    (role), or UNAVAILABLE (the keys cannot be read now)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bearer_token(metadata: Collection[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the call's ``authorization: Bearer <token>`` header, if it has one."""
    for name, value in metadata or ():
        if name == "authorization" and isinstance(value, str):
            if value[: len(_BEARER)].lower() == _BEARER:
                return value[len(_BEARER) :].strip()
    return None


def peer_certificate(context: grpc.aio.ServicerContext) -> bytes | None:
    """The client certificate (PEM) the caller presented and TLS verified, if any."""
    certificates = (context.auth_context() or {}).get(_PEER_CERTIFICATE) or []
    return certificates[0] if certificates else None


async def authorize(
    verifier: KeyVerifier,
    metadata: Collection[tuple[str, str | bytes]] | None,
    needed: Role,
    certificate: bytes | None = None,
) -> ApiKey:
    """The caller's key when it may call a method that needs ``needed``; else a Refusal.

    A bearer token, when the call has one, decides alone; else the client certificate, when
    the caller presented one the server's client CA verified."""
    token = bearer_token(metadata)
    if token is None and certificate is None:
        raise Refusal(
            grpc.StatusCode.UNAUTHENTICATED,
            "this server needs an API key: send metadata 'authorization: Bearer <token>'",
        )
    try:
        if token is not None:
            key = await verifier.verify(token)
        else:
            assert certificate is not None
            key = await verifier.verify_certificate(certificate)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise Refusal(grpc.StatusCode.UNAVAILABLE, "cannot check API keys now; retry") from exc
    if key is None and token is not None:
        raise Refusal(grpc.StatusCode.UNAUTHENTICATED, "the API key is unknown or revoked")
    if key is None:
        raise Refusal(
            grpc.StatusCode.UNAUTHENTICATED,
            "the client certificate is not registered (or its key was revoked): an admin"
            " registers it with `es keys create --client-cert`, or send an API key",
        )
    if key.role < needed:
        raise Refusal(
            grpc.StatusCode.PERMISSION_DENIED,
            f"this method needs the {needed.label} role; key {key.key_id} has {key.role.label}",
        )
    return key


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Checks every call outside ``open_services`` before the servicer sees it. With
    ``client_certificates`` (the server verifies them against a client CA), a call without a
    bearer token is checked by the certificate its caller presented."""

    def __init__(
        self,
        verifier: KeyVerifier,
        open_services: Collection[str],
        *,
        client_certificates: bool = False,
    ) -> None:
        self._verifier = verifier
        self._open = frozenset(open_services)
        self._client_certificates = client_certificates

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        service = details.method.lstrip("/").rpartition("/")[0]
        if handler is None or service in self._open:
            return handler
        needed = required_role(details.method)
        metadata = details.invocation_metadata

        async def admit(context: grpc.aio.ServicerContext) -> None:
            certificate = peer_certificate(context) if self._client_certificates else None
            try:
                key = await authorize(self._verifier, metadata, needed, certificate)
            except Refusal as refusal:
                log.info("%s refused: %s", details.method, refusal.message)
                await context.abort(refusal.code, refusal.message)
            _CALLER.set(key)

        return _admitted_first(handler, admit)


def _admitted_first(
    handler: grpc.RpcMethodHandler,
    admit: Callable[[grpc.aio.ServicerContext], Awaitable[None]],
) -> grpc.RpcMethodHandler:
    """``handler``, running ``admit`` (which aborts or records the caller) before the servicer."""
    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await inner_uu(request, context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            await admit(context)
            async for response in inner_us(request, context):
                yield response

        return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await inner_su(requests, context)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)
    inner_ss = handler.stream_stream

    async def stream_stream(requests: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        await admit(context)
        async for response in inner_ss(requests, context):
            yield response

    return grpc.stream_stream_rpc_method_handler(stream_stream, **kwargs)
