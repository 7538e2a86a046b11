"""The Python client against a tiny in-process gRPC server with fake Task/Search/Upsert services.

The fakes only script what the server would send; what is under test is the client code around
the generated stubs: which request it builds, and how it reads the WatchTask stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from concurrent import futures
from typing import Any

import grpc
import grpc.aio
import pytest

from embedding_studio import (
    AsyncClient,
    Client,
    TaskTimeoutError,
    build_upsert_item,
    from_struct,
    to_struct,
    to_value,
)
from embedding_studio.client import build_start_fine_tuning_request
from embedding_studio.v1 import (
    common_pb2,
    fine_tune_pb2,
    search_pb2,
    search_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    upsert_pb2,
    upsert_pb2_grpc,
)
from es_cli.local_tls import (
    ClientCertificate,
    LocalTls,
    ensure_client_certificate,
    ensure_local_tls,
)

PENDING = common_pb2.TASK_STATUS_PENDING
PROCESSING = common_pb2.TASK_STATUS_PROCESSING
DONE = common_pb2.TASK_STATUS_DONE
FAILED = common_pb2.TASK_STATUS_FAILED

# What the fake WatchTask sends for each task id: a list of (status, progress) steps, then what to
# do at the end: "end" closes the stream, "hang" keeps it open (bounded by HANG_SECONDS).
SCENARIOS: dict[str, tuple[list[tuple[common_pb2.TaskStatus, float]], str]] = {
    "done": ([(PENDING, 0.0), (PROCESSING, 0.5), (DONE, 1.0), (PROCESSING, 0.9)], "hang"),
    "failed": ([(PENDING, 0.0), (FAILED, 0.3)], "end"),
    "stuck": ([(PENDING, 0.0)], "hang"),
    "dropped": ([(PENDING, 0.0), (PROCESSING, 0.2)], "end"),
}
HANG_SECONDS = 5.0


def _task(task_id: str, status: common_pb2.TaskStatus, progress: float) -> common_pb2.Task:
    task = common_pb2.Task(task_id=task_id, status=status, progress=progress)
    if status == DONE:
        task.result.CopyFrom(to_struct({"upserted": 2}))
    return task


class FakeTasks(task_pb2_grpc.TaskServiceServicer):
    def WatchTask(self, request: Any, context: Any) -> Iterator[task_pb2.WatchTaskResponse]:
        steps, end = SCENARIOS[request.task_id]
        for status, progress in steps:
            yield task_pb2.WatchTaskResponse(task=_task(request.task_id, status, progress))
        deadline = time.monotonic() + HANG_SECONDS
        while end == "hang" and context.is_active() and time.monotonic() < deadline:
            time.sleep(0.01)


class FakeAsyncTasks(task_pb2_grpc.TaskServiceServicer):
    async def WatchTask(
        self, request: Any, context: Any
    ) -> AsyncIterator[task_pb2.WatchTaskResponse]:
        steps, end = SCENARIOS[request.task_id]
        for status, progress in steps:
            yield task_pb2.WatchTaskResponse(task=_task(request.task_id, status, progress))
        if end == "hang":
            await asyncio.sleep(HANG_SECONDS)


class FakeSearch(search_pb2_grpc.SearchServiceServicer):
    def __init__(self) -> None:
        self.requests: list[search_pb2.SearchRequest] = []

    def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:
        self.requests.append(request)
        return search_pb2.SearchResponse(
            results=[common_pb2.SearchResult(object_id="a", distance=0.25)],
            collection_id=request.collection_id or "blue-1",
        )


class FakeAsyncSearch(FakeSearch):
    async def Search(self, request: Any, context: Any) -> search_pb2.SearchResponse:  # type: ignore[override]
        return FakeSearch.Search(self, request, context)


class FakeUpsert(upsert_pb2_grpc.UpsertServiceServicer):
    def __init__(self) -> None:
        self.requests: list[upsert_pb2.UpsertItemsRequest] = []

    def UpsertItems(self, request: Any, context: Any) -> upsert_pb2.UpsertItemsResponse:
        self.requests.append(request)
        return upsert_pb2.UpsertItemsResponse(task=_task("t-1", PENDING, 0.0))


@pytest.fixture(scope="module")
def sync_server() -> Iterator[tuple[str, FakeSearch, FakeUpsert]]:
    # The fakes implement only what the client calls; the others answer UNIMPLEMENTED.
    search, upsert = FakeSearch(), FakeUpsert()  # type: ignore[abstract]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    task_pb2_grpc.add_TaskServiceServicer_to_server(FakeTasks(), server)  # type: ignore[abstract]
    search_pb2_grpc.add_SearchServiceServicer_to_server(search, server)
    upsert_pb2_grpc.add_UpsertServiceServicer_to_server(upsert, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}", search, upsert
    server.stop(grace=None)


@pytest.fixture
def client(sync_server: tuple[str, FakeSearch, FakeUpsert]) -> Iterator[Client]:
    with Client(sync_server[0]) as c:
        yield c


def test_wait_for_task_returns_the_first_terminal_state(client: Client) -> None:
    started = time.monotonic()
    task = client.wait_for_task("done", timeout_seconds=10)
    assert (task.task_id, task.status, task.progress) == ("done", DONE, 1.0)
    assert from_struct(task.result) == {"upserted": 2}
    assert time.monotonic() - started < 2, "must not wait for the stream to end"


def test_wait_for_task_returns_a_failed_task_instead_of_raising(client: Client) -> None:
    assert client.wait_for_task("failed", timeout_seconds=10).status == FAILED


def test_wait_for_task_times_out_with_the_last_state_seen(client: Client) -> None:
    started = time.monotonic()
    with pytest.raises(TaskTimeoutError) as caught:
        client.wait_for_task("stuck", timeout_seconds=0.3)
    assert 0.25 < time.monotonic() - started < 3
    assert caught.value.task is not None and caught.value.task.status == PENDING


def test_wait_for_task_raises_when_the_stream_ends_early(client: Client) -> None:
    with pytest.raises(RuntimeError, match="TASK_STATUS_PROCESSING"):
        client.wait_for_task("dropped", timeout_seconds=10)


def test_search_text_builds_the_request(
    client: Client, sync_server: tuple[str, FakeSearch, FakeUpsert]
) -> None:
    flt = common_pb2.Filter(term=common_pb2.TermFilter(field="author.name", value=to_value("Ann")))
    response = client.search_text("red shoes", limit=5, filter=flt, user_id="u1")
    request = sync_server[1].requests[-1]
    assert request.WhichOneof("query") == "query_text" and request.query_text == "red shoes"
    assert (request.limit, request.user_id, request.collection_id) == (5, "u1", "")
    assert request.filter == flt and not request.create_session
    assert [r.object_id for r in response.results] == ["a"] and response.collection_id == "blue-1"

    client.search_text("boots")
    assert not sync_server[1].requests[-1].HasField("filter")
    assert sync_server[1].requests[-1].limit == 10


def test_start_fine_tuning_requests_carry_the_target() -> None:
    categories = fine_tune_pb2.FINE_TUNING_TARGET_CATEGORIES
    request = build_start_fine_tuning_request("b-1", True, {"epochs": [1]}, "k", categories)
    assert request.target == categories and request.deploy_as_blue
    assert (request.batch_id, request.idempotency_key) == ("b-1", "k")
    assert from_struct(request.hyperparameters) == {"epochs": [1]}
    unset = build_start_fine_tuning_request("", False, None, "")
    assert unset.target == fine_tune_pb2.FINE_TUNING_TARGET_UNSPECIFIED
    # Both clients pass it on.
    for method in (Client.start_fine_tuning, AsyncClient.start_fine_tuning):
        assert "target" in method.__code__.co_varnames


def test_upsert_items_converts_dicts(
    client: Client, sync_server: tuple[str, FakeSearch, FakeUpsert]
) -> None:
    task = client.upsert_items(
        [
            {"object_id": "a", "payload": {"tags": ["x", 1], "n": {"m": None}}, "text": "hello"},
            {"object_id": "b", "parts": [{"text": "t"}, {"part_id": "v", "vector": [1, 0.5]}]},
        ],
        idempotency_key="k1",
    )
    assert task.task_id == "t-1" and task.status == PENDING
    request = sync_server[2].requests[-1]
    assert request.idempotency_key == "k1" and request.collection_id == ""
    first, second = request.items
    assert from_struct(first.payload) == {"tags": ["x", 1], "n": {"m": None}}
    assert first.text == "hello" and not first.parts
    assert [(p.part_id, p.text, list(p.vector)) for p in second.parts] == [
        ("", "t", []),
        ("v", "", [1.0, 0.5]),
    ]


@pytest.mark.parametrize(
    "item",
    [
        {"object_id": "a", "text": "x", "parts": []},
        {"object_id": "a"},
        {"text": "x"},
        {"object_id": "a", "text": "x", "paylod": {}},
    ],
)
def test_build_upsert_item_rejects_malformed_items(item: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_upsert_item(item)


def test_client_over_an_existing_channel_leaves_it_open(
    sync_server: tuple[str, FakeSearch, FakeUpsert],
) -> None:
    channel = grpc.insecure_channel(sync_server[0])
    with Client(channel) as c:
        assert c.search_text("a").results
    assert Client(channel).search_text("b").results  # still usable after the first client closed
    channel.close()


@pytest.fixture
async def async_target() -> AsyncIterator[tuple[str, FakeAsyncSearch]]:
    search = FakeAsyncSearch()  # type: ignore[abstract]
    server = grpc.aio.server()
    task_pb2_grpc.add_TaskServiceServicer_to_server(FakeAsyncTasks(), server)  # type: ignore[abstract]
    search_pb2_grpc.add_SearchServiceServicer_to_server(search, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", search
    await server.stop(grace=None)


async def test_async_client_waits_searches_and_times_out(
    async_target: tuple[str, FakeAsyncSearch],
) -> None:
    async with AsyncClient(async_target[0]) as c:
        task = await c.wait_for_task("done", timeout_seconds=10)
        assert task.status == DONE and from_struct(task.result) == {"upserted": 2}
        assert (await c.wait_for_task("failed", timeout_seconds=10)).status == FAILED

        started = time.monotonic()
        with pytest.raises(TaskTimeoutError) as caught:
            await c.wait_for_task("stuck", timeout_seconds=0.3)
        assert time.monotonic() - started < 3
        assert caught.value.task is not None and caught.value.task.status == PENDING

        with pytest.raises(RuntimeError, match="ended before a terminal status"):
            await c.wait_for_task("dropped", timeout_seconds=10)

        response = await c.search_text("lamp", limit=3, collection_id="c-7", create_session=True)
        request = async_target[1].requests[-1]
        assert (request.query_text, request.limit, request.collection_id) == ("lamp", 3, "c-7")
        assert request.create_session and response.collection_id == "c-7"


def test_struct_helpers_round_trip() -> None:
    data = {"a": 1, "b": [True, None, "x"], "c": {"d": 2.5}}
    assert from_struct(to_struct(data)) == data
    assert to_value([1, "a"]).list_value.values[1].string_value == "a"


@pytest.fixture(scope="module")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, LocalTls, ClientCertificate]]:
    """The fake Search behind mutual TLS: callers must present a certificate the CA signed."""
    tls = ensure_local_tls(tmp_path_factory.mktemp("mtls"), "127.0.0.1")
    client = ensure_client_certificate(tls)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    search_pb2_grpc.add_SearchServiceServicer_to_server(FakeSearch(), server)  # type: ignore[abstract]
    credentials = grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=tls.ca_file.read_bytes(),
        require_client_auth=True,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    yield f"localhost:{port}", tls, client
    server.stop(grace=None)


def test_sync_and_async_clients_present_a_client_certificate(
    mtls_server: tuple[str, LocalTls, ClientCertificate],
) -> None:
    target, tls, cert = mtls_server
    ca, chain, key = (
        tls.ca_file.read_bytes(),
        cert.cert_file.read_bytes(),
        cert.key_file.read_bytes(),
    )
    with Client(
        target, root_certificates=ca, client_certificate_chain=chain, client_private_key=key
    ) as c:
        assert c.search_text("a").results

    async def search_async() -> int:
        async with AsyncClient(
            target, root_certificates=ca, client_certificate_chain=chain, client_private_key=key
        ) as c:
            return len((await c.search_text("a")).results)

    assert asyncio.run(search_async()) == 1
    # Without a certificate the handshake fails: no call reaches the server.
    with Client(target, root_certificates=tls.ca_file.read_bytes()) as anonymous:
        with pytest.raises(grpc.RpcError) as caught:
            anonymous.search.Search(search_pb2.SearchRequest(query_text="a"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_client_certificate_needs_its_key_and_a_target(
    mtls_server: tuple[str, LocalTls, ClientCertificate],
) -> None:
    target, tls, cert = mtls_server
    chain, key = cert.cert_file.read_bytes(), cert.key_file.read_bytes()
    with pytest.raises(ValueError, match="both"):
        Client(target, client_certificate_chain=chain)
    with pytest.raises(ValueError, match="both"):
        AsyncClient(target, client_private_key=key)
    with pytest.raises(ValueError, match="credentials"):
        Client(
            target,
            credentials=grpc.ssl_channel_credentials(),
            client_certificate_chain=chain,
            client_private_key=key,
        )
    channel = grpc.insecure_channel(target)
    with pytest.raises(ValueError, match="target"):
        Client(channel, client_certificate_chain=chain, client_private_key=key)
    channel.close()


def _public_methods(cls: type) -> set[str]:
    return {name for name in vars(cls) if not name.startswith("_") and callable(vars(cls)[name])}


def test_the_async_client_has_every_method_of_the_blocking_one() -> None:
    # The context-manager protocols differ by design (__enter__ / __aenter__).
    assert _public_methods(AsyncClient) == _public_methods(Client)


def test_the_package_has_a_version() -> None:
    import embedding_studio

    assert isinstance(embedding_studio.__version__, str)
    assert embedding_studio.__version__[0].isdigit()
