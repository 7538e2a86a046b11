"""Every unary call gets a deadline: the caller's, else ES_RPC_DEFAULT_DEADLINE_SECONDS, and
never more than ES_RPC_MAX_DEADLINE_SECONDS. Past it the call's work is cancelled (a query in
flight with it) and the caller gets DEADLINE_EXCEEDED, so no call holds the server's resources
for longer than an operator allowed. The streaming calls have their own caps (WatchTask,
StreamEvents)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc


def call_budget(remaining: float | None, default_seconds: float, max_seconds: float) -> float:
    """Seconds a call may run: what its caller's deadline leaves (the default when it set
    none), at most the maximum."""
    return min(default_seconds if remaining is None else remaining, max_seconds)


class DeadlineInterceptor(grpc.aio.ServerInterceptor):
    """Runs each unary call under its budget (``call_budget``)."""

    def __init__(self, default_seconds: float, max_seconds: float) -> None:
        self.default_seconds = default_seconds
        self.max_seconds = max_seconds
        # Per method, the last handler wrapped and its wrapper (which depends on nothing else):
        # a call reuses it instead of building it again.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or not handler.unary_unary:
            return handler
        known = self._wrapped.get(details.method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self._bounded(handler, details.method)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped

    def _bounded(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        """``handler`` run under its call's budget."""
        inner = handler.unary_unary

        async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            budget = call_budget(context.time_remaining(), self.default_seconds, self.max_seconds)
            try:
                async with asyncio.timeout(budget) as timer:
                    return await inner(request, context)
            except TimeoutError:
                if not timer.expired():
                    raise
            await context.abort(
                grpc.StatusCode.DEADLINE_EXCEEDED,
                f"{method} ran past its deadline of {budget:g} s and was stopped "
                f"(ES_RPC_DEFAULT_DEADLINE_SECONDS {self.default_seconds:g}, "
                f"ES_RPC_MAX_DEADLINE_SECONDS {self.max_seconds:g})",
            )

        return grpc.unary_unary_rpc_method_handler(
            unary_unary,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
