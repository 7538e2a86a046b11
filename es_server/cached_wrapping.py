"""An interceptor that wraps each method's handler once and reuses the wrapper for every call
(building wrappers per call would cost on the search path)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import grpc


class CachedWrappingInterceptor(grpc.aio.ServerInterceptor):
    """Subclasses say how to wrap one method's handler (``wrap``)."""

    def __init__(self) -> None:
        # Per method, the last handler wrapped and its wrapper: the wrapper depends on nothing
        # else, so a call reuses it instead of building it again.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler:
        raise NotImplementedError

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None:
            return handler
        known = self._wrapped.get(details.method)
        if known is not None and known[0] is handler:
            return known[1]
        wrapped = self.wrap(handler, details.method)
        self._wrapped[details.method] = (handler, wrapped)
        return wrapped
