"""The channel a client makes, against a real in-process gRPC server: a read that meets
UNAVAILABLE is retried by the channel's service config and then answers, a write is not; a
unary call without a timeout gets the default deadline, a caller's own timeout and options win."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import grpc
import grpc.aio
import pytest
import pytest_asyncio

from embedding_studio import AsyncClient, Client
from embedding_studio.channel_defaults import (
    MAX_MESSAGE_BYTES,
    RETRY_POLICY,
    RETRYABLE_METHODS,
    channel_options,
    service_config,
)
from embedding_studio.v1 import search_pb2, upsert_pb2
from tests.flaky_grpc import Flaky, start_flaky


@pytest.fixture
def fails_twice() -> Iterator[tuple[str, Flaky]]:
    flaky = Flaky(failures=2)
    server, target = start_flaky(flaky)
    yield target, flaky
    server.stop(None)


@pytest.fixture
def fails_always() -> Iterator[tuple[str, Flaky]]:
    flaky = Flaky(failures=1000)
    server, target = start_flaky(flaky)
    yield target, flaky
    server.stop(None)


ITEM = {"object_id": "a", "text": "red socks"}


def test_a_read_that_meets_unavailable_is_retried_until_it_answers(
    fails_twice: tuple[str, Flaky],
) -> None:
    target, flaky = fails_twice
    with Client(target) as client:
        response = client.search_text("socks")
    assert [r.object_id for r in response.results] == ["socks"]
    assert flaky.calls["Search"] == 3


def test_a_read_gives_up_after_four_attempts(fails_always: tuple[str, Flaky]) -> None:
    target, flaky = fails_always
    with Client(target) as client, pytest.raises(grpc.RpcError) as info:
        client.search_text("socks")
    assert isinstance(info.value, grpc.Call)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.calls["Search"] == RETRY_POLICY["maxAttempts"] == 4


def test_a_write_is_not_retried(fails_twice: tuple[str, Flaky]) -> None:
    target, flaky = fails_twice
    with Client(target) as client, pytest.raises(grpc.RpcError) as info:
        client.upsert_items([ITEM])
    assert isinstance(info.value, grpc.Call)
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.calls["UpsertItems"] == 1


def test_retries_can_be_turned_off_by_the_callers_options(
    fails_twice: tuple[str, Flaky],
) -> None:
    target, flaky = fails_twice
    with Client(target, options=[("grpc.enable_retries", 0)]) as client:
        with pytest.raises(grpc.RpcError):
            client.search_text("socks")
    assert flaky.calls["Search"] == 1


def test_a_unary_call_without_a_timeout_gets_the_default_deadline(
    fails_twice: tuple[str, Flaky],
) -> None:
    target, flaky = fails_twice
    flaky.failures = 0
    # The server sees a deadline rounded on the wire: compare with room to spare.
    with Client(target, default_timeout=10.0) as client:
        client.search_text("socks")
        assert flaky.deadlines["Search"] is not None
        assert 0 < flaky.deadlines["Search"] < 20.0
        client.search_text("socks", timeout=100.0)
        assert flaky.deadlines["Search"] is not None
        assert 20.0 < flaky.deadlines["Search"] < 110.0
    with Client(target, default_timeout=None) as client:
        client.search_text("socks")
        assert flaky.deadlines["Search"] is not None
        assert flaky.deadlines["Search"] > 1e6  # grpc reports "no deadline" as forever


@pytest_asyncio.fixture(loop_scope="function")
async def async_fails_twice() -> AsyncIterator[tuple[str, Flaky]]:
    flaky = Flaky(failures=2)
    server, target = start_flaky(flaky)
    yield target, flaky
    server.stop(None)


async def test_the_async_client_retries_reads_not_writes(
    async_fails_twice: tuple[str, Flaky],
) -> None:
    target, flaky = async_fails_twice
    async with AsyncClient(target, default_timeout=5.0) as client:
        response = await client.search_text("socks")
        assert [r.object_id for r in response.results] == ["socks"]
        assert flaky.calls["Search"] == 3
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.upsert_items([ITEM])
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert flaky.calls["UpsertItems"] == 1
    assert flaky.deadlines["Search"] is not None and flaky.deadlines["Search"] < 10.0


def test_the_service_config_names_reads_only() -> None:
    config = json.loads(service_config())
    (method_config,) = config["methodConfig"]
    named = {(n["service"], n["method"]) for n in method_config["name"]}
    assert ("embedding_studio.v1.SearchService", "Search") in named
    assert ("embedding_studio.v1.TaskService", "WatchTask") in named
    writes = {"UpsertItems", "DeleteItems", "ImportItems", "StartFineTuning", "CancelTask"}
    assert not {method for _, method in named} & writes
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


def test_every_retryable_method_exists_in_the_contract() -> None:
    from embedding_studio.v1 import (
        categories_pb2,
        clickstream_pb2,
        deployment_pb2,
        fine_tune_pb2,
        keys_pb2,
        ranking_pb2,
        suggestion_pb2,
        task_pb2,
    )

    files = [
        categories_pb2,
        clickstream_pb2,
        deployment_pb2,
        fine_tune_pb2,
        keys_pb2,
        ranking_pb2,
        search_pb2,
        suggestion_pb2,
        task_pb2,
        upsert_pb2,
    ]
    services = {
        name: {m.name for m in service.methods}
        for module in files
        for name, service in module.DESCRIPTOR.services_by_name.items()
    }
    for service, methods in RETRYABLE_METHODS.items():
        assert set(methods) <= services[service], service


def test_callers_options_replace_the_defaults_by_name() -> None:
    options = dict(channel_options([("grpc.max_receive_message_length", 1024)]))
    assert options["grpc.max_receive_message_length"] == 1024
    assert options["grpc.max_send_message_length"] == MAX_MESSAGE_BYTES
    assert len(channel_options([("grpc.max_receive_message_length", 1024)])) == len(
        channel_options()
    )
