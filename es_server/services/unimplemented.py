"""Services of the contract that later work builds: every RPC answers UNIMPLEMENTED, saying what."""

from __future__ import annotations

from typing import Any

import grpc

from embedding_studio.v1 import categories_pb2_grpc
from es_server.interceptors import Unimplemented

# (servicer base, registration function, what is missing)
PENDING_SERVICES: list[tuple[type, Any, str]] = [
    (
        categories_pb2_grpc.CategoryServiceServicer,
        categories_pb2_grpc.add_CategoryServiceServicer_to_server,
        "the categories collections",
    ),
]


def pending_servicer(base: type, missing: str) -> Any:
    """An instance of ``base`` whose every RPC raises Unimplemented naming ``missing``."""
    service = base.__name__.removesuffix("Servicer")

    def make(rpc: str) -> Any:
        async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            raise Unimplemented(f"{service}.{rpc} is not built yet: it needs {missing}")

        return method

    rpcs = [name for name in vars(base) if name[:1].isupper()]
    return type(base.__name__, (base,), {rpc: make(rpc) for rpc in rpcs})()


def add_pending_services(server: grpc.aio.Server) -> list[str]:
    names = []
    for base, register, missing in PENDING_SERVICES:
        register(pending_servicer(base, missing), server)
        names.append(base.__name__.removesuffix("Servicer"))
    return names
