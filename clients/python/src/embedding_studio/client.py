"""Typed sync and async clients for the Embedding Studio gRPC API (package embedding_studio.v1).

Each client exposes the generated stubs as attributes (``client.search.Search(request)``) and adds
the few conveniences most callers need: a text search, an upsert from plain dicts, starting and
reading fine-tuning, and waiting for a long-running task to finish.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import grpc
import grpc.aio
from google.protobuf import json_format, struct_pb2

from embedding_studio.channel_defaults import DEFAULT_UNARY_TIMEOUT_SECONDS, channel_options
from embedding_studio.v1 import (
    categories_pb2_grpc,
    clickstream_pb2_grpc,
    common_pb2,
    deployment_pb2,
    deployment_pb2_grpc,
    fine_tune_pb2,
    fine_tune_pb2_grpc,
    keys_pb2_grpc,
    ranking_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
    source_pb2,
    suggestion_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    upsert_pb2,
    upsert_pb2_grpc,
)

#: Statuses after which a task never changes again.
TERMINAL_TASK_STATUSES = frozenset(
    {
        common_pb2.TASK_STATUS_DONE,
        common_pb2.TASK_STATUS_FAILED,
        common_pb2.TASK_STATUS_CANCELED,
    }
)

#: What ``upsert_items`` accepts per item: a ready message, or a dict with ``object_id``,
#: ``payload`` and exactly one of ``text`` / ``parts`` (parts: dicts with part_id, text, vector).
ItemInput = upsert_pb2.UpsertItem | Mapping[str, Any]

_ITEM_KEYS = frozenset({"object_id", "payload", "text", "parts", "source"})
SourceInput = source_pb2.ContentSource | Mapping[str, Any]
_PART_KEYS = frozenset({"part_id", "text", "vector"})
_ChannelOptions = Sequence[tuple[str, Any]]


class TaskTimeoutError(TimeoutError):
    """A task did not reach a terminal status in time; ``task`` is its last state seen, if any."""

    def __init__(self, task_id: str, timeout_seconds: float, task: common_pb2.Task | None) -> None:
        super().__init__(f"task {task_id!r} did not finish within {timeout_seconds:g} s")
        self.task_id = task_id
        self.task = task


def to_struct(data: Mapping[str, Any]) -> struct_pb2.Struct:
    """A JSON-like mapping (str keys; str, number, bool, None, list, dict values) as a Struct."""
    return json_format.ParseDict(dict(data), struct_pb2.Struct())


def to_value(value: Any) -> struct_pb2.Value:
    """Convert one JSON-like Python value to a google.protobuf.Value (e.g. for a TermFilter)."""
    return json_format.ParseDict(value, struct_pb2.Value())


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Convert a Struct (an item payload, a task result) back to a plain dict."""
    return json_format.MessageToDict(struct)


def build_upsert_item(item: ItemInput) -> upsert_pb2.UpsertItem:
    """One UpsertItem; refuses unknown keys and items with both or neither of text / parts."""
    if isinstance(item, upsert_pb2.UpsertItem):
        return item
    unknown = set(item) - _ITEM_KEYS
    object_id = str(item.get("object_id", ""))
    if unknown:
        raise ValueError(f"item {object_id!r}: unknown keys {sorted(unknown)}")
    if not object_id:
        raise ValueError("item without an object_id")
    if sum(key in item for key in ("text", "parts", "source")) != 1:
        raise ValueError(f"item {object_id!r}: give exactly one of 'text', 'parts' or 'source'")
    return upsert_pb2.UpsertItem(
        object_id=object_id,
        payload=to_struct(item.get("payload") or {}),
        text=str(item.get("text", "")),
        parts=[_build_part(part) for part in item.get("parts", ())],
        source=build_content_source(item["source"]) if "source" in item else None,
    )


def build_content_source(source: SourceInput) -> source_pb2.ContentSource:
    """A ContentSource from itself or its JSON form, e.g. {"loader": "s3", "bucket":
    {"bucket": "docs", "key": "a.txt"}} or {"table": {"database": "shop", "table": "products"},
    "fields": {"text": "description"}}."""
    if isinstance(source, source_pb2.ContentSource):
        return source
    return json_format.ParseDict(dict(source), source_pb2.ContentSource())


def build_import_request(
    sources: Iterable[SourceInput],
    collection_id: str,
    page_size: int,
    max_failed_items: int,
    idempotency_key: str,
) -> upsert_pb2.ImportItemsRequest:
    return upsert_pb2.ImportItemsRequest(
        sources=[build_content_source(source) for source in sources],
        collection_id=collection_id,
        page_size=page_size,
        max_failed_items=max_failed_items,
        idempotency_key=idempotency_key,
    )


def _build_part(part: common_pb2.ItemPart | Mapping[str, Any]) -> common_pb2.ItemPart:
    if isinstance(part, common_pb2.ItemPart):
        return part
    unknown = set(part) - _PART_KEYS
    if unknown:
        raise ValueError(f"item part: unknown keys {sorted(unknown)}")
    return common_pb2.ItemPart(
        part_id=str(part.get("part_id", "")),
        text=str(part.get("text", "")),
        vector=[float(x) for x in part.get("vector", ())],
    )


def build_search_request(
    text: str,
    limit: int,
    filter: common_pb2.Filter | None,
    collection_id: str,
    user_id: str,
    create_session: bool,
) -> search_pb2.SearchRequest:
    """The SearchRequest behind ``search_text``."""
    request = search_pb2.SearchRequest(
        query_text=text,
        limit=limit,
        collection_id=collection_id,
        user_id=user_id,
        create_session=create_session,
    )
    if filter is not None:
        request.filter.CopyFrom(filter)
    return request


def build_start_fine_tuning_request(
    batch_id: str,
    deploy_as_blue: bool,
    hyperparameters: Mapping[str, Any] | None,
    idempotency_key: str,
    target: fine_tune_pb2.FineTuningTarget = fine_tune_pb2.FINE_TUNING_TARGET_UNSPECIFIED,
) -> fine_tune_pb2.StartFineTuningRequest:
    """The StartFineTuningRequest behind ``start_fine_tuning``."""
    request = fine_tune_pb2.StartFineTuningRequest(
        batch_id=batch_id,
        deploy_as_blue=deploy_as_blue,
        idempotency_key=idempotency_key,
        target=target,
    )
    if hyperparameters is not None:
        request.hyperparameters.CopyFrom(to_struct(hyperparameters))
    return request


_FIELD_TYPES = {
    "keyword": deployment_pb2.FIELD_TYPE_KEYWORD,
    "number": deployment_pb2.FIELD_TYPE_NUMBER,
}


def _filterable_request(
    fields: Mapping[str, str], collection_id: str, idempotency_key: str
) -> deployment_pb2.SetFilterableFieldsRequest:
    """A type other than "keyword" or "number" is sent unset, for the server to refuse."""
    return deployment_pb2.SetFilterableFieldsRequest(
        collection_id=collection_id,
        idempotency_key=idempotency_key,
        fields=[
            deployment_pb2.FilterableField(
                field=name, type=_FIELD_TYPES.get(kind, deployment_pb2.FIELD_TYPE_UNSPECIFIED)
            )
            for name, kind in fields.items()
        ],
    )


def _ended_early(task_id: str, last: common_pb2.Task | None) -> RuntimeError:
    return RuntimeError(
        f"WatchTask stream for task {task_id!r} ended before a terminal status"
        f" (last status: {common_pb2.TaskStatus.Name(last.status) if last else 'none'})"
    )


def _channel_credentials(
    credentials: grpc.ChannelCredentials | None,
    root_certificates: bytes | None,
    client_certificate_chain: bytes | None = None,
    client_private_key: bytes | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials: the ones given, else TLS trusting ``root_certificates`` (PEM; None =
    the system's roots when a client certificate is given) and presenting the client
    certificate (mutual TLS); None = plaintext."""
    if (client_certificate_chain is None) != (client_private_key is None):
        raise ValueError("give both client_certificate_chain and client_private_key, or neither")
    if credentials is not None:
        if client_certificate_chain is not None:
            raise ValueError(
                "credentials already say how to connect; put the client certificate in them"
            )
        return credentials
    if root_certificates is None and client_certificate_chain is None:
        return None
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates,
        private_key=client_private_key,
        certificate_chain=client_certificate_chain,
    )


def _no_tls_for_a_given_channel(
    root_certificates: bytes | None, client_certificate_chain: bytes | None
) -> None:
    """A channel made by the caller has its credentials already; certificates given besides
    would silently do nothing."""
    if root_certificates is not None or client_certificate_chain is not None:
        raise ValueError("certificates need a target; put them in your own channel's credentials")


def _with_key(details: Any, api_key: str | None) -> Any:
    """The call's details with ``authorization: Bearer <api_key>`` added to its metadata."""
    if not api_key:
        return details
    return details._replace(
        metadata=[*(details.metadata or ()), ("authorization", f"Bearer {api_key}")]
    )


def _with_deadline(details: Any, timeout: float | None) -> Any:
    """The call's details with ``timeout`` when the caller gave none."""
    if details.timeout is not None or timeout is None:
        return details
    return details._replace(timeout=timeout)


class _CallDefaults(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Sends the API key (if any) with every call of a blocking channel and gives a unary call
    made without a timeout the default deadline (streams keep none)."""

    def __init__(self, api_key: str | None, unary_timeout: float | None) -> None:
        self.api_key = api_key
        self.unary_timeout = unary_timeout

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details = _with_deadline(_with_key(details, self.api_key), self.unary_timeout)
        return continuation(details, request)

    def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return continuation(_with_key(details, self.api_key), request)

    def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(_with_key(details, self.api_key), requests)

    def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return continuation(_with_key(details, self.api_key), requests)


class _AioCallDefaults(
    grpc.aio.UnaryUnaryClientInterceptor,
    grpc.aio.UnaryStreamClientInterceptor,
    grpc.aio.StreamUnaryClientInterceptor,
    grpc.aio.StreamStreamClientInterceptor,
):
    """``_CallDefaults`` for an asyncio channel."""

    def __init__(self, api_key: str | None, unary_timeout: float | None) -> None:
        self.api_key = api_key
        self.unary_timeout = unary_timeout

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        details = _with_deadline(_with_key(details, self.api_key), self.unary_timeout)
        return await continuation(details, request)

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_key(details, self.api_key), request)

    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_key(details, self.api_key), requests)

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with_key(details, self.api_key), requests)


def _deadline(code: grpc.StatusCode) -> bool:
    return bool(code == grpc.StatusCode.DEADLINE_EXCEEDED)


def _time_left(ends: float) -> bool:
    """Whether a wait that ends at ``ends`` (time.monotonic) has a moment left: a watch cut
    before then was cut by the server's cap (ES_WATCH_TASK_MAX_SECONDS), not by the wait."""
    return ends - time.monotonic() > 0.05


def _aio_stub(stub_class: Callable[[Any], object], channel: grpc.aio.Channel) -> Any:
    """A generated stub over an aio channel; its ``XAsyncStub`` type exists only in the .pyi."""
    return stub_class(channel)


class Client:
    """Blocking client. Built from a target ("127.0.0.1:50051") or an existing ``grpc.Channel``.

    ``api_key`` (a token from ``es keys create`` or KeyService) goes with every call;
    ``root_certificates`` (PEM, e.g. the CA ``es up --tls`` wrote) makes the channel TLS;
    ``client_certificate_chain`` and ``client_private_key`` (PEM, e.g. the ``tls/client.pem``
    and ``tls/client-key.pem`` of ``es up --mtls``) make it mutual TLS: a server with
    ``ES_AUTH=required`` takes a certificate registered with ``es keys create --client-cert``
    for a key. ``close()`` closes the channel only when the client created it.

    A channel the client makes starts with ``channel_defaults.channel_options`` (the server's
    message size limit, keepalive, retries of UNAVAILABLE for reads), ``options`` put over them;
    a unary call without a ``timeout`` gets ``default_timeout`` seconds (None: no deadline).
    """

    def __init__(
        self,
        target: str | grpc.Channel,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: _ChannelOptions = (),
        api_key: str | None = None,
        root_certificates: bytes | None = None,
        client_certificate_chain: bytes | None = None,
        client_private_key: bytes | None = None,
        default_timeout: float | None = DEFAULT_UNARY_TIMEOUT_SECONDS,
    ) -> None:
        self._owns_channel = isinstance(target, str)
        if isinstance(target, str):
            tls = _channel_credentials(
                credentials, root_certificates, client_certificate_chain, client_private_key
            )
            merged = channel_options(options)
            self._own: grpc.Channel = (
                grpc.secure_channel(target, tls, options=merged)
                if tls
                else grpc.insecure_channel(target, options=merged)
            )
        else:
            _no_tls_for_a_given_channel(root_certificates, client_certificate_chain)
            self._own = target
        self.channel: grpc.Channel = grpc.intercept_channel(
            self._own, _CallDefaults(api_key, default_timeout)
        )
        self.search = search_pb2_grpc.SearchServiceStub(self.channel)
        self.clickstream = clickstream_pb2_grpc.ClickstreamServiceStub(self.channel)
        self.upsert = upsert_pb2_grpc.UpsertServiceStub(self.channel)
        self.fine_tune = fine_tune_pb2_grpc.FineTuneServiceStub(self.channel)
        self.deployment = deployment_pb2_grpc.DeploymentServiceStub(self.channel)
        self.tasks = task_pb2_grpc.TaskServiceStub(self.channel)
        self.suggestions = suggestion_pb2_grpc.SuggestionServiceStub(self.channel)
        self.categories = categories_pb2_grpc.CategoryServiceStub(self.channel)
        self.ranking = ranking_pb2_grpc.RankingServiceStub(self.channel)
        self.keys = keys_pb2_grpc.KeyServiceStub(self.channel)

    def search_text(
        self,
        text: str,
        limit: int = 10,
        filter: common_pb2.Filter | None = None,
        collection_id: str = "",
        user_id: str = "",
        *,
        create_session: bool = False,
        timeout: float | None = None,
    ) -> search_pb2.SearchResponse:
        """Search by free text; ``limit`` at most 1000; empty collection_id = the blue one."""
        request = build_search_request(text, limit, filter, collection_id, user_id, create_session)
        response: search_pb2.SearchResponse = self.search.Search(request, timeout=timeout)
        return response

    def upsert_items(
        self,
        items: Iterable[ItemInput],
        *,
        collection_id: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> common_pb2.Task:
        """Start an upsertion of 1..1000 items; returns its task (wait with ``wait_for_task``)."""
        request = upsert_pb2.UpsertItemsRequest(
            items=[build_upsert_item(item) for item in items],
            collection_id=collection_id,
            idempotency_key=idempotency_key,
        )
        response: upsert_pb2.UpsertItemsResponse = self.upsert.UpsertItems(request, timeout=timeout)
        return response.task

    def import_items(
        self,
        sources: Iterable[SourceInput],
        *,
        collection_id: str = "",
        page_size: int = 0,
        max_failed_items: int = 0,
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> common_pb2.Task:
        """Start an import of every item of 1..16 sources (a bucket prefix, a table, a file of
        records, a URL); returns its task, whose ``import_result`` counts what was written and
        lists what failed (wait with ``wait_for_task``)."""
        request = build_import_request(
            sources, collection_id, page_size, max_failed_items, idempotency_key
        )
        response: upsert_pb2.ImportItemsResponse = self.upsert.ImportItems(request, timeout=timeout)
        return response.task

    def start_fine_tuning(
        self,
        *,
        batch_id: str = "",
        deploy_as_blue: bool = False,
        hyperparameters: Mapping[str, Any] | None = None,
        idempotency_key: str = "",
        target: fine_tune_pb2.FineTuningTarget = (fine_tune_pb2.FINE_TUNING_TARGET_UNSPECIFIED),
        timeout: float | None = None,
    ) -> fine_tune_pb2.FineTuningTask:
        """Start training on a batch of sessions (empty batch_id = the current one, which is
        closed); ``hyperparameters`` override the search space, e.g. {"learning_rate": [1e-5]};
        ``target``: what to train for (FINE_TUNING_TARGET_CATEGORIES: PredictCategories;
        unspecified = items). Returns the pending task (wait with
        ``wait_for_task(task.task.task_id, ...)``)."""
        request = build_start_fine_tuning_request(
            batch_id, deploy_as_blue, hyperparameters, idempotency_key, target
        )
        response: fine_tune_pb2.StartFineTuningResponse = self.fine_tune.StartFineTuning(
            request, timeout=timeout
        )
        return response.task

    def get_fine_tuning_task(
        self, task_id: str, *, timeout: float | None = None
    ) -> fine_tune_pb2.FineTuningTask:
        """One fine-tuning task: its state and, once done, the model, metrics and gate."""
        request = fine_tune_pb2.GetFineTuningTaskRequest(task_id=task_id)
        response: fine_tune_pb2.GetFineTuningTaskResponse = self.fine_tune.GetFineTuningTask(
            request, timeout=timeout
        )
        return response.task

    def start_reindex(
        self,
        destination_model_id: str,
        *,
        source_collection_id: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> deployment_pb2.StartReindexResponse:
        """Fill a new green collection for ``destination_model_id`` from a source collection
        (empty = the blue one); returns its task and the green collection's id."""
        request = deployment_pb2.StartReindexRequest(
            source_collection_id=source_collection_id,
            destination_model_id=destination_model_id,
            idempotency_key=idempotency_key,
        )
        response: deployment_pb2.StartReindexResponse = self.deployment.StartReindex(
            request, timeout=timeout
        )
        return response

    def switch_blue_collection(
        self, collection_id: str, *, timeout: float | None = None
    ) -> deployment_pb2.SwitchBlueCollectionResponse:
        """Make a reindexed green collection blue; the old blue stays as the rollback target."""
        request = deployment_pb2.SwitchBlueCollectionRequest(collection_id=collection_id)
        response: deployment_pb2.SwitchBlueCollectionResponse = (
            self.deployment.SwitchBlueCollection(request, timeout=timeout)
        )
        return response

    def rollback_blue_collection(
        self, *, timeout: float | None = None
    ) -> deployment_pb2.RollbackBlueCollectionResponse:
        """Make the previous blue collection blue again."""
        request = deployment_pb2.RollbackBlueCollectionRequest()
        response: deployment_pb2.RollbackBlueCollectionResponse = (
            self.deployment.RollbackBlueCollection(request, timeout=timeout)
        )
        return response

    def get_blue_collection(self, *, timeout: float | None = None) -> deployment_pb2.Collection:
        """The collection searches use when they name none."""
        request = deployment_pb2.GetBlueCollectionRequest()
        response: deployment_pb2.GetBlueCollectionResponse = self.deployment.GetBlueCollection(
            request, timeout=timeout
        )
        return response.collection

    def get_interleaving_verdict(
        self,
        green_collection_id: str = "",
        *,
        confidence: float = 0.0,
        timeout: float | None = None,
    ) -> deployment_pb2.GetInterleavingVerdictResponse:
        """What interleaved searches say about a green collection against blue (empty = the
        newest green ready to search); ``confidence`` 0 = the server's setting."""
        request = deployment_pb2.GetInterleavingVerdictRequest(
            green_collection_id=green_collection_id, confidence=confidence
        )
        response: deployment_pb2.GetInterleavingVerdictResponse = (
            self.deployment.GetInterleavingVerdict(request, timeout=timeout)
        )
        return response

    def list_collections(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> list[deployment_pb2.Collection]:
        """Every live collection, newest first (all pages)."""
        collections: list[deployment_pb2.Collection] = []
        token = ""
        while True:
            request = deployment_pb2.ListCollectionsRequest(page_size=page_size, page_token=token)
            response: deployment_pb2.ListCollectionsResponse = self.deployment.ListCollections(
                request, timeout=timeout
            )
            collections.extend(response.collections)
            token = response.next_page_token
            if not token:
                return collections

    def set_filterable_fields(
        self,
        fields: Mapping[str, str],
        collection_id: str = "",
        *,
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> deployment_pb2.SetFilterableFieldsResponse:
        """Declare the collection's (empty: blue's) filterable payload fields, replacing the
        previous set: ``{"price": "number", "brand": "keyword"}``. Returns at once with the task
        that builds the new fields' indexes (``.task``; wait with ``wait_for_task``) and the
        collection as it is now (``.collection``, its previous declaration until the task is
        done)."""
        request = _filterable_request(fields, collection_id, idempotency_key)
        response: deployment_pb2.SetFilterableFieldsResponse = self.deployment.SetFilterableFields(
            request, timeout=timeout
        )
        return response

    def delete_collection(self, collection_id: str, *, timeout: float | None = None) -> None:
        """Delete a collection that is not blue, with its items."""
        request = deployment_pb2.DeleteCollectionRequest(collection_id=collection_id)
        self.deployment.DeleteCollection(request, timeout=timeout)

    def wait_for_task(self, task_id: str, timeout_seconds: float) -> common_pb2.Task:
        """Watch a task until it is DONE, FAILED or CANCELED and return that final state.
        A watch the server ends at its cap (DEADLINE_EXCEEDED while time is left) is resumed.

        Raises TaskTimeoutError when it is still running after ``timeout_seconds``.
        """
        last: common_pb2.Task | None = None
        ends = time.monotonic() + timeout_seconds
        while True:
            call = self.tasks.WatchTask(
                task_pb2.WatchTaskRequest(task_id=task_id),
                timeout=max(0.0, ends - time.monotonic()),
            )
            try:
                for response in call:
                    last = response.task
                    if last.status in TERMINAL_TASK_STATUSES:
                        return last
            except grpc.RpcError as error:
                if not isinstance(error, grpc.Call) or not _deadline(error.code()):
                    raise
                if not _time_left(ends):
                    raise TaskTimeoutError(task_id, timeout_seconds, last) from error
                continue
            finally:
                call.cancel()
            raise _ended_early(task_id, last)

    def close(self) -> None:
        """Close the channel if this client created it."""
        if self._owns_channel:
            self._own.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient:
    """Asyncio client over ``grpc.aio``; same shape as ``Client`` with awaitable methods. A
    channel given to it keeps its own options, interceptors and deadlines."""

    def __init__(
        self,
        target: str | grpc.aio.Channel,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        options: _ChannelOptions = (),
        api_key: str | None = None,
        root_certificates: bytes | None = None,
        client_certificate_chain: bytes | None = None,
        client_private_key: bytes | None = None,
        default_timeout: float | None = DEFAULT_UNARY_TIMEOUT_SECONDS,
    ) -> None:
        self._owns_channel = isinstance(target, str)
        if isinstance(target, str):
            tls = _channel_credentials(
                credentials, root_certificates, client_certificate_chain, client_private_key
            )
            # An aio channel takes its interceptors when it is made, so only an own channel
            # can carry the key and the default deadline.
            interceptors = [_AioCallDefaults(api_key, default_timeout)]
            merged = channel_options(options)
            self.channel: grpc.aio.Channel = (
                grpc.aio.secure_channel(target, tls, options=merged, interceptors=interceptors)
                if tls
                else grpc.aio.insecure_channel(target, options=merged, interceptors=interceptors)
            )
        else:
            if api_key:
                raise ValueError("api_key needs a target; add the key to your own channel")
            _no_tls_for_a_given_channel(root_certificates, client_certificate_chain)
            self.channel = target
        c = self.channel
        self.search: search_pb2_grpc.SearchServiceAsyncStub = _aio_stub(
            search_pb2_grpc.SearchServiceStub, c
        )
        self.clickstream: clickstream_pb2_grpc.ClickstreamServiceAsyncStub = _aio_stub(
            clickstream_pb2_grpc.ClickstreamServiceStub, c
        )
        self.upsert: upsert_pb2_grpc.UpsertServiceAsyncStub = _aio_stub(
            upsert_pb2_grpc.UpsertServiceStub, c
        )
        self.fine_tune: fine_tune_pb2_grpc.FineTuneServiceAsyncStub = _aio_stub(
            fine_tune_pb2_grpc.FineTuneServiceStub, c
        )
        self.deployment: deployment_pb2_grpc.DeploymentServiceAsyncStub = _aio_stub(
            deployment_pb2_grpc.DeploymentServiceStub, c
        )
        self.tasks: task_pb2_grpc.TaskServiceAsyncStub = _aio_stub(task_pb2_grpc.TaskServiceStub, c)
        self.suggestions: suggestion_pb2_grpc.SuggestionServiceAsyncStub = _aio_stub(
            suggestion_pb2_grpc.SuggestionServiceStub, c
        )
        self.categories: categories_pb2_grpc.CategoryServiceAsyncStub = _aio_stub(
            categories_pb2_grpc.CategoryServiceStub, c
        )
        self.ranking: ranking_pb2_grpc.RankingServiceAsyncStub = _aio_stub(
            ranking_pb2_grpc.RankingServiceStub, c
        )
        self.keys: keys_pb2_grpc.KeyServiceAsyncStub = _aio_stub(keys_pb2_grpc.KeyServiceStub, c)

    async def search_text(
        self,
        text: str,
        limit: int = 10,
        filter: common_pb2.Filter | None = None,
        collection_id: str = "",
        user_id: str = "",
        *,
        create_session: bool = False,
        timeout: float | None = None,
    ) -> search_pb2.SearchResponse:
        """Search by free text; ``limit`` at most 1000; empty collection_id = the blue one."""
        request = build_search_request(text, limit, filter, collection_id, user_id, create_session)
        response: search_pb2.SearchResponse = await self.search.Search(request, timeout=timeout)
        return response

    async def upsert_items(
        self,
        items: Iterable[ItemInput],
        *,
        collection_id: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> common_pb2.Task:
        """Start an upsertion of 1..1000 items; returns its task (wait with ``wait_for_task``)."""
        request = upsert_pb2.UpsertItemsRequest(
            items=[build_upsert_item(item) for item in items],
            collection_id=collection_id,
            idempotency_key=idempotency_key,
        )
        response: upsert_pb2.UpsertItemsResponse = await self.upsert.UpsertItems(
            request, timeout=timeout
        )
        return response.task

    async def import_items(
        self,
        sources: Iterable[SourceInput],
        *,
        collection_id: str = "",
        page_size: int = 0,
        max_failed_items: int = 0,
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> common_pb2.Task:
        """As ``Client.import_items``."""
        request = build_import_request(
            sources, collection_id, page_size, max_failed_items, idempotency_key
        )
        response: upsert_pb2.ImportItemsResponse = await self.upsert.ImportItems(
            request, timeout=timeout
        )
        return response.task

    async def start_fine_tuning(
        self,
        *,
        batch_id: str = "",
        deploy_as_blue: bool = False,
        hyperparameters: Mapping[str, Any] | None = None,
        idempotency_key: str = "",
        target: fine_tune_pb2.FineTuningTarget = (fine_tune_pb2.FINE_TUNING_TARGET_UNSPECIFIED),
        timeout: float | None = None,
    ) -> fine_tune_pb2.FineTuningTask:
        """Start training on a batch of sessions (empty batch_id = the current one, which is
        closed); ``hyperparameters`` override the search space, e.g. {"learning_rate": [1e-5]};
        ``target``: what to train for (FINE_TUNING_TARGET_CATEGORIES: PredictCategories;
        unspecified = items). Returns the pending task (wait with
        ``wait_for_task(task.task.task_id, ...)``)."""
        request = build_start_fine_tuning_request(
            batch_id, deploy_as_blue, hyperparameters, idempotency_key, target
        )
        response: fine_tune_pb2.StartFineTuningResponse = await self.fine_tune.StartFineTuning(
            request, timeout=timeout
        )
        return response.task

    async def get_fine_tuning_task(
        self, task_id: str, *, timeout: float | None = None
    ) -> fine_tune_pb2.FineTuningTask:
        """One fine-tuning task: its state and, once done, the model, metrics and gate."""
        request = fine_tune_pb2.GetFineTuningTaskRequest(task_id=task_id)
        response: fine_tune_pb2.GetFineTuningTaskResponse = await self.fine_tune.GetFineTuningTask(
            request, timeout=timeout
        )
        return response.task

    async def start_reindex(
        self,
        destination_model_id: str,
        *,
        source_collection_id: str = "",
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> deployment_pb2.StartReindexResponse:
        """Fill a new green collection for ``destination_model_id`` from a source collection
        (empty = the blue one); returns its task and the green collection's id."""
        request = deployment_pb2.StartReindexRequest(
            source_collection_id=source_collection_id,
            destination_model_id=destination_model_id,
            idempotency_key=idempotency_key,
        )
        response: deployment_pb2.StartReindexResponse = await self.deployment.StartReindex(
            request, timeout=timeout
        )
        return response

    async def switch_blue_collection(
        self, collection_id: str, *, timeout: float | None = None
    ) -> deployment_pb2.SwitchBlueCollectionResponse:
        """Make a reindexed green collection blue; the old blue stays as the rollback target."""
        request = deployment_pb2.SwitchBlueCollectionRequest(collection_id=collection_id)
        response: deployment_pb2.SwitchBlueCollectionResponse = (
            await self.deployment.SwitchBlueCollection(request, timeout=timeout)
        )
        return response

    async def rollback_blue_collection(
        self, *, timeout: float | None = None
    ) -> deployment_pb2.RollbackBlueCollectionResponse:
        """Make the previous blue collection blue again."""
        request = deployment_pb2.RollbackBlueCollectionRequest()
        response: deployment_pb2.RollbackBlueCollectionResponse = (
            await self.deployment.RollbackBlueCollection(request, timeout=timeout)
        )
        return response

    async def get_interleaving_verdict(
        self,
        green_collection_id: str = "",
        *,
        confidence: float = 0.0,
        timeout: float | None = None,
    ) -> deployment_pb2.GetInterleavingVerdictResponse:
        """What interleaved searches say about a green collection against blue (empty = the
        newest green ready to search); ``confidence`` 0 = the server's setting."""
        request = deployment_pb2.GetInterleavingVerdictRequest(
            green_collection_id=green_collection_id, confidence=confidence
        )
        response: deployment_pb2.GetInterleavingVerdictResponse = (
            await self.deployment.GetInterleavingVerdict(request, timeout=timeout)
        )
        return response

    async def get_blue_collection(
        self, *, timeout: float | None = None
    ) -> deployment_pb2.Collection:
        """The collection searches use when they name none."""
        request = deployment_pb2.GetBlueCollectionRequest()
        response: deployment_pb2.GetBlueCollectionResponse = (
            await self.deployment.GetBlueCollection(request, timeout=timeout)
        )
        return response.collection

    async def list_collections(
        self, *, page_size: int = 0, timeout: float | None = None
    ) -> list[deployment_pb2.Collection]:
        """Every live collection, newest first (all pages)."""
        collections: list[deployment_pb2.Collection] = []
        token = ""
        while True:
            request = deployment_pb2.ListCollectionsRequest(page_size=page_size, page_token=token)
            response: deployment_pb2.ListCollectionsResponse = (
                await self.deployment.ListCollections(request, timeout=timeout)
            )
            collections.extend(response.collections)
            token = response.next_page_token
            if not token:
                return collections

    async def set_filterable_fields(
        self,
        fields: Mapping[str, str],
        collection_id: str = "",
        *,
        idempotency_key: str = "",
        timeout: float | None = None,
    ) -> deployment_pb2.SetFilterableFieldsResponse:
        """Declare the collection's (empty: blue's) filterable payload fields, replacing the
        previous set: ``{"price": "number", "brand": "keyword"}``. Returns at once with the task
        that builds the new fields' indexes (``.task``; wait with ``wait_for_task``) and the
        collection as it is now (``.collection``, its previous declaration until the task is
        done)."""
        request = _filterable_request(fields, collection_id, idempotency_key)
        response: deployment_pb2.SetFilterableFieldsResponse = (
            await self.deployment.SetFilterableFields(request, timeout=timeout)
        )
        return response

    async def delete_collection(self, collection_id: str, *, timeout: float | None = None) -> None:
        """Delete a collection that is not blue, with its items."""
        request = deployment_pb2.DeleteCollectionRequest(collection_id=collection_id)
        await self.deployment.DeleteCollection(request, timeout=timeout)

    async def wait_for_task(self, task_id: str, timeout_seconds: float) -> common_pb2.Task:
        """Watch a task until it is DONE, FAILED or CANCELED and return that final state.
        A watch the server ends at its cap (DEADLINE_EXCEEDED while time is left) is resumed.

        Raises TaskTimeoutError when it is still running after ``timeout_seconds``.
        """
        last: common_pb2.Task | None = None
        ends = time.monotonic() + timeout_seconds
        while True:
            call = self.tasks.WatchTask(
                task_pb2.WatchTaskRequest(task_id=task_id),
                timeout=max(0.0, ends - time.monotonic()),
            )
            try:
                async for response in call:
                    last = response.task
                    if last.status in TERMINAL_TASK_STATUSES:
                        return last
            except grpc.aio.AioRpcError as error:
                if not _deadline(error.code()):
                    raise
                if not _time_left(ends):
                    raise TaskTimeoutError(task_id, timeout_seconds, last) from error
                continue
            finally:
                call.cancel()
            raise _ended_early(task_id, last)

    async def close(self) -> None:
        """Close the channel if this client created it."""
        if self._owns_channel:
            await self.channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
