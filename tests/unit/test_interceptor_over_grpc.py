"""The interceptor on a real in-process grpc.aio server: bytes that are not a request, unknown
enum values and NUL characters are INVALID_ARGUMENT before a servicer runs (unary and client
streaming), and a database or service that cannot be reached is UNAVAILABLE with a short reason.
The servicers here are the test's own; the whole stack: tests/e2e/test_honest_errors.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.rpc import error_details_pb2, status_pb2

from embedding_studio.v1 import (
    clickstream_pb2,
    clickstream_pb2_grpc,
    common_pb2,
    search_pb2,
    search_pb2_grpc,
)
from es_cli.embedded import free_port
from es_core.storage.db import connect_or_unavailable
from es_server.interceptors import ErrorInterceptor
from tests.unit.test_request_checks import over_nested_count_request, truncated_count_request

COUNT_ITEMS = "/embedding_studio.v1.SearchService/CountItems"
CLOSED_PORT = free_port()


class Search(search_pb2_grpc.SearchServiceServicer):
    """CountItems answers the filter's match operator, or fails as its collection_id says."""

    async def CountItems(
        self, request: search_pb2.CountItemsRequest, context: grpc.aio.ServicerContext
    ) -> search_pb2.CountItemsResponse:
        if request.collection_id == "connection-refused":
            raise ConnectionRefusedError(111, "Connection refused")
        if request.collection_id == "database-shut-down":
            raise asyncpg.exceptions.AdminShutdownError(
                "terminating connection due to administrator command"
            )
        if request.collection_id == "database-down":
            await connect_or_unavailable(host="127.0.0.1", port=CLOSED_PORT, timeout=5)
        return search_pb2.CountItemsResponse(count=request.filter.match.operator)


class Clickstream(clickstream_pb2_grpc.ClickstreamServiceServicer):
    async def StreamEvents(
        self,
        request_iterator: AsyncIterator[clickstream_pb2.StreamEventsRequest],
        context: grpc.aio.ServicerContext,
    ) -> clickstream_pb2.StreamEventsResponse:
        count = 0
        async for message in request_iterator:
            count += len(message.events)
        return clickstream_pb2.StreamEventsResponse(accepted_count=count)


@pytest_asyncio.fixture(loop_scope="function")
async def channel() -> AsyncIterator[grpc.aio.Channel]:
    server = grpc.aio.server(interceptors=[ErrorInterceptor()])
    search_pb2_grpc.add_SearchServiceServicer_to_server(Search(), server)
    clickstream_pb2_grpc.add_ClickstreamServiceServicer_to_server(Clickstream(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield channel
    await server.stop(None)


async def _count(channel: grpc.aio.Channel, request: search_pb2.CountItemsRequest) -> int:
    stub = search_pb2_grpc.SearchServiceStub(channel)
    return int((await stub.CountItems(request, timeout=30)).count)


async def _failure(call: object) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    return info.value


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The BadRequest field paths in the status details the call's trailers carry."""
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if details is None:
        return []
    fields = []
    for detail in status_pb2.Status.FromString(details).details:
        bad_request = error_details_pb2.BadRequest()
        assert detail.Unpack(bad_request)
        fields += [v.field for v in bad_request.field_violations]
    return fields


def _match(operator: int) -> common_pb2.Filter:
    message = common_pb2.Filter()
    message.match.field, message.match.query = "title", "fever"
    message.match.operator = operator  # type: ignore[assignment]
    return message


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(truncated_count_request(), id="truncated"),
        pytest.param(over_nested_count_request(60), id="over-nested"),
    ],
)
@pytest.mark.asyncio(loop_scope="function")
async def test_bytes_that_are_not_a_request_are_invalid_argument(
    channel: grpc.aio.Channel, data: bytes
) -> None:
    raw = channel.unary_unary(COUNT_ITEMS)  # bytes go out as they are
    error = await _failure(raw(data, timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details() or ""
    assert details.startswith("the SearchService.CountItems request cannot be decoded")
    assert "Error" not in details and "Exception" not in details and "class" not in details
    # The same bytes, whole and within the depth limit, are answered.
    reply = await raw(over_nested_count_request(40), timeout=30)
    assert search_pb2.CountItemsResponse.FromString(reply).count == 0


@pytest.mark.asyncio(loop_scope="function")
async def test_unknown_enum_and_nul_are_invalid_argument_naming_the_field(
    channel: grpc.aio.Channel,
) -> None:
    assert await _count(channel, search_pb2.CountItemsRequest(filter=_match(2))) == 2
    for request, field in [
        (search_pb2.CountItemsRequest(filter=_match(3)), "filter.match.operator"),
        (search_pb2.CountItemsRequest(collection_id="blue\x00"), "collection_id"),
    ]:
        error = await _failure(_count(channel, request))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violated_fields(error) == [field]


@pytest.mark.asyncio(loop_scope="function")
async def test_a_refused_message_in_a_client_stream_ends_the_call(
    channel: grpc.aio.Channel,
) -> None:
    stub = clickstream_pb2_grpc.ClickstreamServiceStub(channel)

    def batch(session_id: str) -> clickstream_pb2.StreamEventsRequest:
        event = clickstream_pb2.SessionEvent(event_id="e", session_id=session_id, object_id="o")
        return clickstream_pb2.StreamEventsRequest(events=[event])

    accepted = await stub.StreamEvents(iter([batch("s1"), batch("s2")]), timeout=30)
    assert accepted.accepted_count == 2
    error = await _failure(stub.StreamEvents(iter([batch("s1"), batch("s\x00")]), timeout=30))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["events[0].session_id"]


@pytest.mark.parametrize(
    ("collection_id", "reason"),
    [
        ("database-down", "the database cannot be reached now (Connection refused)"),
        ("database-shut-down", "terminating connection due to administrator command"),
        ("connection-refused", "cannot be reached now (Connection refused)"),
    ],
)
@pytest.mark.asyncio(loop_scope="function")
async def test_an_unreachable_dependency_is_unavailable_with_a_short_reason(
    channel: grpc.aio.Channel, collection_id: str, reason: str
) -> None:
    error = await _failure(
        _count(channel, search_pb2.CountItemsRequest(collection_id=collection_id))
    )
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    details = error.details() or ""
    assert reason in details and str(CLOSED_PORT) not in details
    assert violated_fields(error) == []
