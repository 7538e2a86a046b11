"""The observing interceptor on a real in-process grpc.aio server, outermost as in
es_server/app.py: every call is counted by the status code the caller gets (errors mapped by
the error interceptor, aborts, refused requests, cancelled streams), timed, and answered with
its request id (the caller's, or a new one) in the trailing metadata."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from embedding_studio.v1 import search_pb2, search_pb2_grpc
from es_core.errors import NotFound
from es_core.observability import request_context
from es_server.interceptors import ErrorInterceptor
from es_server.observing import ObservingInterceptor
from tests.unit.test_interceptor_over_grpc import violated_fields
from tests.unit.test_request_checks import truncated_count_request

HEALTH = "grpc.health.v1.Health"
SEARCH = "embedding_studio.v1.SearchService"


class Health(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """Check answers, or fails as the service it is asked about says; ``seen`` records the
    request id each call's handler saw."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        self.seen.append(request_context.request_id.get())
        if request.service == "missing":
            raise NotFound.field_error("service", "no such service")
        if request.service == "aborted":
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "not yours")
        if request.service == "broken":
            raise RuntimeError("a bug")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[health_pb2.HealthCheckResponse]:
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        if request.service == "forever":
            await asyncio.sleep(3600)


class Search(search_pb2_grpc.SearchServiceServicer):
    async def CountItems(
        self, request: search_pb2.CountItemsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.CountItemsResponse:
        return search_pb2.CountItemsResponse(count=1)


@pytest_asyncio.fixture(loop_scope="function")
async def served() -> AsyncIterator[tuple[grpc.aio.Channel, Health]]:
    health = Health()
    server = grpc.aio.server(interceptors=[ObservingInterceptor(), ErrorInterceptor()])
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    search_pb2_grpc.add_SearchServiceServicer_to_server(Search(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel, health
    await server.stop(None)


def handled(service: str, method: str, code: str) -> float:
    value = REGISTRY.get_sample_value(
        "es_grpc_server_handled_total",
        {"grpc_service": service, "grpc_method": method, "grpc_code": code},
    )
    return value or 0.0


def timed(service: str, method: str) -> float:
    value = REGISTRY.get_sample_value(
        "es_grpc_server_handling_seconds_count", {"grpc_service": service, "grpc_method": method}
    )
    return value or 0.0


def in_flight(service: str, method: str) -> float:
    value = REGISTRY.get_sample_value(
        "es_grpc_server_in_flight", {"grpc_service": service, "grpc_method": method}
    )
    return value or 0.0


async def _settled(done: Callable[[], bool], seconds: float = 10.0) -> None:
    """Let the server's side of a finished call unwind, up to ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not done() and loop.time() < deadline:
        await asyncio.sleep(0.01)


async def _check(
    channel: grpc.aio.Channel, service: str, request_id: str = ""
) -> tuple[grpc.StatusCode, dict[str, str | bytes]]:
    """The final code of a Check and its trailing metadata."""
    call = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service),
        metadata=(("x-request-id", request_id),) if request_id else None,
        timeout=30,
    )
    try:
        await call
    except grpc.aio.AioRpcError:
        pass
    return await call.code(), dict(await call.trailing_metadata() or ())


@pytest.mark.parametrize(
    ("service", "code"),
    [
        ("", "OK"),
        ("missing", "NOT_FOUND"),  # an es_core error the error interceptor maps
        ("aborted", "PERMISSION_DENIED"),  # the servicer's own abort
        ("broken", "INTERNAL"),  # an unexpected error, hidden behind INTERNAL
    ],
)
@pytest.mark.asyncio(loop_scope="function")
async def test_a_call_is_counted_by_the_code_the_caller_gets(
    served: tuple[grpc.aio.Channel, Health], service: str, code: str
) -> None:
    channel, _ = served
    before = handled(HEALTH, "Check", code), timed(HEALTH, "Check")
    got, _ = await _check(channel, service)
    assert got.name == code
    # A servicer's abort reaches the caller before the server's side of the call unwinds (the
    # interceptor counts it there): on a busy machine the count can land a moment later.
    await _settled(lambda: handled(HEALTH, "Check", code) == before[0] + 1)
    assert handled(HEALTH, "Check", code) == before[0] + 1
    assert timed(HEALTH, "Check") == before[1] + 1
    assert in_flight(HEALTH, "Check") == 0


@pytest.mark.asyncio(loop_scope="function")
async def test_a_refused_request_is_counted_as_invalid_argument(
    served: tuple[grpc.aio.Channel, Health],
) -> None:
    channel, _ = served
    before = handled(SEARCH, "CountItems", "INVALID_ARGUMENT")
    raw = channel.unary_unary(f"/{SEARCH}/CountItems")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await raw(truncated_count_request(), timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert handled(SEARCH, "CountItems", "INVALID_ARGUMENT") == before + 1


@pytest.mark.asyncio(loop_scope="function")
async def test_the_callers_request_id_is_seen_by_the_handler_and_returned(
    served: tuple[grpc.aio.Channel, Health],
) -> None:
    channel, health = served
    code, trailing = await _check(channel, "", "req-42.a:b")
    assert code == grpc.StatusCode.OK
    assert trailing["x-request-id"] == "req-42.a:b"
    assert health.seen[-1] == "req-42.a:b"


@pytest.mark.asyncio(loop_scope="function")
async def test_an_error_keeps_its_details_and_the_request_id(
    served: tuple[grpc.aio.Channel, Health],
) -> None:
    channel, _ = served
    call = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service="missing"),
        metadata=(("x-request-id", "failing-1"),),
        timeout=30,
    )
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert violated_fields(info.value) == ["service"]
    assert dict(info.value.trailing_metadata() or ())["x-request-id"] == "failing-1"


@pytest.mark.parametrize(
    "sent",
    # (gRPC itself refuses control characters and non-ASCII in a metadata value.)
    ["", "has space", "x" * 129, "semi;colon", "../../etc"],
)
@pytest.mark.asyncio(loop_scope="function")
async def test_a_missing_or_unfit_request_id_is_replaced_by_a_new_one(
    served: tuple[grpc.aio.Channel, Health], sent: str
) -> None:
    channel, health = served
    metadata = (("x-request-id", sent),) if sent else None
    call = health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), metadata=metadata, timeout=30
    )
    await call
    returned = dict(await call.trailing_metadata() or ())["x-request-id"]
    assert isinstance(returned, str) and len(returned) == 32 and returned != sent
    assert health.seen[-1] == returned


@pytest.mark.asyncio(loop_scope="function")
async def test_a_stream_is_counted_ok_when_done_and_cancelled_when_the_caller_leaves(
    served: tuple[grpc.aio.Channel, Health],
) -> None:
    channel, _ = served
    stub = health_pb2_grpc.HealthStub(channel)
    ok_before = handled(HEALTH, "Watch", "OK")
    replies = [r async for r in stub.Watch(health_pb2.HealthCheckRequest(), timeout=30)]
    assert len(replies) == 1
    assert handled(HEALTH, "Watch", "OK") == ok_before + 1

    cancelled_before = handled(HEALTH, "Watch", "CANCELLED")
    call = stub.Watch(health_pb2.HealthCheckRequest(service="forever"), timeout=30)
    await call.read()
    assert in_flight(HEALTH, "Watch") == 1
    call.cancel()
    for _ in range(200):
        if handled(HEALTH, "Watch", "CANCELLED") > cancelled_before:
            break
        await asyncio.sleep(0.01)
    assert handled(HEALTH, "Watch", "CANCELLED") == cancelled_before + 1
    assert in_flight(HEALTH, "Watch") == 0
