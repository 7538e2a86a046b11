"""The outermost interceptor: every RPC gets a request id (the caller's ``x-request-id`` or a
new one, set for logs and the tasks the call creates, and returned as trailing metadata
``x-request-id``), is counted and timed by its final status code (``es_server.metrics``), and,
when tracing is on, is a span (the child of the caller's ``traceparent``)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from es_core.observability import request_context, tracing
from es_server.cached_wrapping import CachedWrappingInterceptor
from es_server.metrics import MethodMetrics

REQUEST_ID_KEY = "x-request-id"
_NO_SPAN = contextlib.nullcontext()


class ObservingInterceptor(CachedWrappingInterceptor):
    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        return _observed(handler, method, MethodMetrics(method), tracing.enabled())


def final_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the caller gets: the one an abort or ``set_code`` set, else OK when the
    handler returned, CANCELLED when the call was cancelled, UNKNOWN for an escaped error."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return code
    if error is None:
        return grpc.StatusCode.OK
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str:
    for name, value in context.invocation_metadata() or ():
        if name == key:
            return value if isinstance(value, str) else ""
    return ""


def _observed(
    handler: grpc.RpcMethodHandler, method: str, metrics: MethodMetrics, spanning: bool
) -> grpc.RpcMethodHandler:
    def begin(context: grpc.aio.ServicerContext) -> float:
        request_id = request_context.accepted_request_id(_metadata(context, REQUEST_ID_KEY))
        # Each RPC runs in its own asyncio task (its own copy of the context): no reset needed.
        request_context.request_id.set(request_id)
        context.set_trailing_metadata(((REQUEST_ID_KEY, request_id),))
        metrics.in_flight.inc()
        return time.perf_counter()

    def end(context: grpc.aio.ServicerContext, started: float, error: BaseException | None) -> None:
        metrics.in_flight.dec()
        metrics.seconds.observe(time.perf_counter() - started)
        metrics.handled(final_code(context, error)).inc()

    def span(context: grpc.aio.ServicerContext) -> contextlib.AbstractContextManager[Any]:
        if not spanning:
            return _NO_SPAN
        return tracing.span(method, _metadata(context, "traceparent"))

    def returning(inner: Callable[[Any, grpc.aio.ServicerContext], Any]) -> Any:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> Any:
            started = begin(context)
            error: BaseException | None = None
            try:
                with span(context):
                    return await inner(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                end(context, started, error)

        return call

    def streaming(inner: Callable[[Any, grpc.aio.ServicerContext], Any]) -> Any:
        async def call(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
            started = begin(context)
            error: BaseException | None = None
            try:
                with span(context):
                    async for response in inner(request, context):
                        yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                end(context, started, error)

        return call

    kwargs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(returning(handler.unary_unary), **kwargs)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(streaming(handler.unary_stream), **kwargs)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(returning(handler.stream_unary), **kwargs)
    if handler.stream_stream:
        return grpc.stream_stream_rpc_method_handler(streaming(handler.stream_stream), **kwargs)
    return handler
