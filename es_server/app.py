"""Builds and runs the gRPC server: services, health (following the dependencies each service
needs: ``dependency_health``), reflection, interceptors."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from embedding_studio.v1 import (
    categories_pb2,
    categories_pb2_grpc,
    clickstream_pb2,
    clickstream_pb2_grpc,
    deployment_pb2,
    deployment_pb2_grpc,
    fine_tune_pb2,
    fine_tune_pb2_grpc,
    keys_pb2,
    keys_pb2_grpc,
    ranking_pb2,
    ranking_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
    suggestion_pb2,
    suggestion_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    upsert_pb2,
    upsert_pb2_grpc,
)
from es_broker.celery_sender import CelerySender, broker_app
from es_core.api_keys.verifier import KeyVerifier
from es_core.config import Settings
from es_core.encoders.registry import EncoderRegistry
from es_core.encoders.triton import server_live
from es_core.observability.metrics import serve_metrics
from es_core.page_token_keys import load_page_tokens
from es_core.plugins.registry import load_categories_plugin, load_plugin
from es_core.storage.bootstrap import prepare_database
from es_core.storage.db import create_pool
from es_core.tasks.updates import TaskUpdates
from es_server.auth import AuthInterceptor
from es_server.deadlines import DeadlineInterceptor
from es_server.dependency_health import (
    BROKER,
    POSTGRESQL,
    TRITON,
    PostgresProbe,
    Probe,
    follow_dependencies,
    in_thread,
    needs_by_service,
)
from es_server.interceptors import ErrorInterceptor
from es_server.observing import ObservingInterceptor
from es_server.services.categories import CategoryService
from es_server.services.clickstream import ClickstreamService
from es_server.services.deployment import DeploymentService
from es_server.services.fine_tune import FineTuneService
from es_server.services.keys import KeyService
from es_server.services.ranking import RankingService
from es_server.services.search import SearchService
from es_server.services.suggestion import SuggestionService
from es_server.services.tasks import TaskService
from es_server.services.upsert import UpsertService
from es_server.state import ServerState
from es_server.tls import check_exposure, server_credentials

log = logging.getLogger("es_server")

SERVICE_NAMES = [
    d.services_by_name[name].full_name
    for d, name in [
        (search_pb2.DESCRIPTOR, "SearchService"),
        (clickstream_pb2.DESCRIPTOR, "ClickstreamService"),
        (upsert_pb2.DESCRIPTOR, "UpsertService"),
        (fine_tune_pb2.DESCRIPTOR, "FineTuneService"),
        (deployment_pb2.DESCRIPTOR, "DeploymentService"),
        (ranking_pb2.DESCRIPTOR, "RankingService"),
        (task_pb2.DESCRIPTOR, "TaskService"),
        (suggestion_pb2.DESCRIPTOR, "SuggestionService"),
        (categories_pb2.DESCRIPTOR, "CategoryService"),
        (keys_pb2.DESCRIPTOR, "KeyService"),
    ]
]
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def server_options(settings: Settings) -> list[tuple[str, int]]:
    """Message size limits, keepalive pings and the most a connection may live (see Settings)."""

    def ms(seconds: float) -> int:
        return round(seconds * 1000)

    return [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.keepalive_time_ms", ms(settings.grpc_keepalive_seconds)),
        ("grpc.keepalive_timeout_ms", ms(settings.grpc_keepalive_timeout_seconds)),
        ("grpc.max_connection_age_ms", ms(settings.grpc_max_connection_age_seconds)),
        ("grpc.max_connection_age_grace_ms", ms(settings.grpc_max_connection_age_grace_seconds)),
    ]


def build_server(state: ServerState) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    settings = state.settings
    interceptors: list[grpc.aio.ServerInterceptor] = [
        ErrorInterceptor(),
        DeadlineInterceptor(
            settings.rpc_default_deadline_seconds, settings.rpc_max_deadline_seconds
        ),
    ]
    if settings.auth == "required":
        # Outermost: a refused call reaches nothing else.
        verifier = KeyVerifier(state.pool, settings.auth_cache_seconds)
        interceptors.insert(
            0,
            AuthInterceptor(
                verifier,
                settings.auth_open_services,
                client_certificates=settings.tls_client_ca_file is not None,
            ),
        )
    # Outermost of all: counts every call, refused ones too, by the status the caller gets.
    interceptors.insert(0, ObservingInterceptor())
    server = grpc.aio.server(
        interceptors=interceptors,
        options=server_options(settings),
        maximum_concurrent_rpcs=settings.grpc_max_concurrent_rpcs,
    )
    search_pb2_grpc.add_SearchServiceServicer_to_server(SearchService(state), server)
    clickstream_pb2_grpc.add_ClickstreamServiceServicer_to_server(ClickstreamService(state), server)
    upsert_pb2_grpc.add_UpsertServiceServicer_to_server(UpsertService(state), server)
    fine_tune_pb2_grpc.add_FineTuneServiceServicer_to_server(FineTuneService(state), server)
    task_pb2_grpc.add_TaskServiceServicer_to_server(TaskService(state), server)
    deployment_pb2_grpc.add_DeploymentServiceServicer_to_server(DeploymentService(state), server)
    ranking_pb2_grpc.add_RankingServiceServicer_to_server(RankingService(state), server)
    keys_pb2_grpc.add_KeyServiceServicer_to_server(KeyService(state), server)
    categories_pb2_grpc.add_CategoryServiceServicer_to_server(CategoryService(state), server)
    suggestion_pb2_grpc.add_SuggestionServiceServicer_to_server(SuggestionService(state), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    return server, health_servicer


async def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain in-flight calls for a few seconds and stop."""
    # Unsafe exposure, like a plugin that cannot load, stops the server before it starts.
    credentials = server_credentials(settings)
    check_exposure(settings, tls=credentials is not None)
    plugin = load_plugin(settings)
    categories_plugin = load_categories_plugin(settings)
    dsn = settings.require_postgres_dsn()
    pool = await create_pool(settings, dsn, role="api")
    blue = await prepare_database(pool, settings, plugin)
    tokens = await load_page_tokens(settings, pool)
    search_pool = await create_pool(
        settings, dsn, role="search", max_size=settings.db_search_pool_max_size
    )
    encoders = EncoderRegistry(
        plugin.get_inference_client_factory().create, batch_size=settings.encode_batch_size
    )
    # Load the blue model now, so the first search does not pay for it.
    await asyncio.to_thread(encoders.get, blue.model)
    task_sender = CelerySender(broker_app(settings))
    task_updates = TaskUpdates(dsn)
    task_updates.start()
    state = ServerState(
        settings,
        pool,
        encoders,
        plugin,
        task_sender,
        tokens,
        search_pool,
        categories_plugin,
        task_updates,
    )
    server, health_servicer = build_server(state)
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    if credentials is None:
        server.add_insecure_port(address)
    else:
        server.add_secure_port(address, credentials)
    await server.start()
    if settings.metrics_port:
        serve_metrics(settings.metrics_host, settings.metrics_port)
    postgres = PostgresProbe(dsn)
    probes: dict[str, Probe] = {POSTGRESQL: postgres, BROKER: in_thread(task_sender.reachable)}
    if settings.triton_url:
        triton_url = settings.triton_url
        probes[TRITON] = in_thread(lambda timeout: server_live(triton_url, timeout=timeout))
    health_watch = asyncio.create_task(
        follow_dependencies(
            health_servicer,
            needs_by_service(through_triton=TRITON in probes),
            probes,
            interval=settings.health_check_seconds,
            timeout=settings.health_check_timeout_seconds,
        )
    )
    log.info(
        "serving on %s (%s, auth %s; blue collection %s)",
        address,
        "TLS" if credentials else "plaintext",
        settings.auth,
        blue.collection_id,
    )

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    health_watch.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await health_watch
    await postgres.close()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace=5)
    await state.context.loaders.close()
    await task_updates.close()
    await search_pool.close()
    await pool.close()
