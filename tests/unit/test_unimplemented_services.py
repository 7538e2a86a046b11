"""The services of the contract not built yet answer every RPC with UNIMPLEMENTED, saying what is
missing (es_server/services/unimplemented.py); one of them is checked through gRPC in
tests/e2e/test_bad_input.py."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import pytest

from embedding_studio.v1 import categories_pb2
from es_server.interceptors import Unimplemented, status_for
from es_server.services.unimplemented import PENDING_SERVICES, pending_servicer

PENDING = [(categories_pb2, "CategoryService")]
PENDING_RPCS = [
    pytest.param(module, service, method.name, id=f"{service}.{method.name}")
    for module, service in PENDING
    for method in module.DESCRIPTOR.services_by_name[service].methods
]


def test_every_pending_rpc_is_listed() -> None:
    assert len(PENDING_RPCS) == 3
    served = [base.__name__.removesuffix("Servicer") for base, _, _ in PENDING_SERVICES]
    assert served == [service for _, service in PENDING]


@pytest.mark.parametrize(("module", "service", "method"), PENDING_RPCS)
def test_pending_rpc_is_unimplemented_saying_what_is_missing(
    module: Any, service: str, method: str
) -> None:
    base, _, missing = next(
        entry for entry in PENDING_SERVICES if entry[0].__name__ == f"{service}Servicer"
    )
    descriptor = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
    request = getattr(module, descriptor.input_type.name)()
    with pytest.raises(Unimplemented) as info:
        asyncio.run(getattr(pending_servicer(base, missing), method)(request, None))
    status = status_for(info.value)
    assert status.code == grpc.StatusCode.UNIMPLEMENTED
    message = status.details
    assert f"{service}.{method}" in message
    assert "not built yet" in message and len(message) > len(f"{service}.{method}") + 25
