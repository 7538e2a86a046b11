"""Cross-cutting behaviour of every RPC: requests are decoded and checked before a servicer sees
them (``request_checks``), library errors become gRPC statuses with details, and a database or
service that cannot be reached is UNAVAILABLE (clients retry), never INTERNAL."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from es_core.errors import (
    Aborted,
    AlreadyExists,
    DeadlineExceeded,
    EsError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
    connection_reason,
)
from es_core.storage.db import CONNECTION_ERRORS, database_unavailable
from es_server.cached_wrapping import CachedWrappingInterceptor
from es_server.request_checks import RefusedRequest, checking_decoder

log = logging.getLogger("es_server.rpc")

_CODES: list[tuple[type[EsError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
    (Unavailable, code_pb2.UNAVAILABLE),
    (Aborted, code_pb2.ABORTED),
    (ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    (DeadlineExceeded, code_pb2.DEADLINE_EXCEEDED),
]


def status_for(error: EsError) -> grpc.Status:
    code = next((c for cls, c in _CODES if isinstance(error, cls)), None)
    if code is None:
        code = code_pb2.INTERNAL
    details = []
    if error.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=v.field, description=v.description
                )
                for v in error.violations
            ]
        )
        packed = any_pb2.Any()
        packed.Pack(bad_request)
        details.append(packed)
    return rpc_status.to_status(
        status_pb2.Status(code=code, message=error.message, details=details)
    )


def unreachable(error: BaseException) -> Unavailable | None:
    """The Unavailable error of a database or service that cannot be reached now, with a short
    reason and no address; None for any other error. (A pooled connection that cannot be
    opened is Unavailable already: ``es_core.storage.db.connect_or_unavailable``.)"""
    if isinstance(error, CONNECTION_ERRORS):
        return database_unavailable(error)
    if isinstance(error, ConnectionError):
        return Unavailable(
            f"a service this request needs cannot be reached now ({connection_reason(error)})"
        )
    return None


async def _abort(context: grpc.aio.ServicerContext, error: BaseException, method: str) -> None:
    unavailable = unreachable(error)
    if unavailable is not None:
        log.warning("%s: %s", method, unavailable.message, exc_info=error)
        error = unavailable
    if isinstance(error, asyncpg.exceptions.UndefinedTableError):
        # A collection's table dropped between resolving the collection and reading it: a
        # DeleteCollection (or a switch and then one) raced this request.
        error = Aborted(
            f"a collection {method} reads was deleted while the request ran; send it again"
        )
    if isinstance(error, asyncpg.exceptions.QueryCanceledError):
        # The role's statement_timeout (ES_DB_*_STATEMENT_TIMEOUT_SECONDS) stopped the query.
        error = ResourceExhausted(
            f"{method}: the database statement ran past its time limit and was cancelled "
            f"({error}); a narrower filter, fewer clauses or a smaller page cost less"
        )
    if isinstance(error, EsError):
        status = status_for(error)
        # Trailing metadata set before (the request id) goes with the status's details.
        trailing = (*(context.trailing_metadata() or ()), *status.trailing_metadata)
        await context.abort_with_status(status._replace(trailing_metadata=trailing))
    log.exception("%s failed", method, exc_info=error)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see server log")


class ErrorInterceptor(CachedWrappingInterceptor):
    """Decodes and checks requests (refused: INVALID_ARGUMENT); maps es_core errors to statuses
    and unreachable dependencies to UNAVAILABLE; hides unexpected errors behind INTERNAL
    (logged)."""

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        return _wrapped(handler, method)


def _wrapped(handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
    """``handler`` decoding and checking its requests, its errors mapped to statuses."""
    decode = handler.request_deserializer
    kwargs = {
        "request_deserializer": decode and checking_decoder(decode, _rpc_name(method)),
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        inner_uu = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = time.perf_counter()
            try:
                return await inner_uu(_accepted(request), context)
            except (EsError, Exception) as exc:
                if _is_abort(exc):
                    raise
                await _abort(context, exc, method)
            finally:
                log.debug("%s %.1f ms", method, (time.perf_counter() - started) * 1000)

        return grpc.unary_unary_rpc_method_handler(unary_unary, **kwargs)
    if handler.unary_stream:
        inner_us = handler.unary_stream

        async def unary_stream(
            request: Any, context: grpc.aio.ServicerContext
        ) -> AsyncIterator[Any]:
            try:
                async for response in inner_us(_accepted(request), context):
                    yield response
            except (EsError, Exception) as exc:
                if _is_abort(exc):
                    raise
                await _abort(context, exc, method)

        return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
    if handler.stream_unary:
        inner_su = handler.stream_unary

        async def stream_unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await inner_su(_accepted_stream(requests), context)
            except (EsError, Exception) as exc:
                if _is_abort(exc):
                    raise
                await _abort(context, exc, method)

        return grpc.stream_unary_rpc_method_handler(stream_unary, **kwargs)
    return handler


def _rpc_name(method: str) -> str:
    """``SearchService.Search`` for ``/embedding_studio.v1.SearchService/Search``."""
    return method.rsplit(".", 1)[-1].replace("/", ".")


def _accepted(request: Any) -> Any:
    """The decoded request, or its refusal raised as InvalidArgument."""
    if isinstance(request, RefusedRequest):
        raise request.error
    return request


async def _accepted_stream(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """A client stream's requests; the first refused one ends it with InvalidArgument."""
    async for request in requests:
        yield _accepted(request)


def _is_abort(exc: BaseException) -> bool:
    """grpc.aio signals an abort with its own exception type; let it through untouched."""
    return isinstance(exc, (grpc.aio.AbortError, grpc.RpcError))
