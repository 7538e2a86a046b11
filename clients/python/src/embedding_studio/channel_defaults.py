"""Channel options every client channel starts with: the server's message size limit, keepalive
pings the server accepts, and retries of UNAVAILABLE for the calls that are safe to repeat.

A caller's own ``options`` override these one by one (same option name = the caller's value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

#: The server's grpc.max_receive/send_message_length (es_server/app.py MAX_MESSAGE_BYTES).
MAX_MESSAGE_BYTES = 32 * 1024 * 1024

#: Keepalive pings on an idle connection. A gRPC server refuses pings closer together than its
#: grpc.http2.min_recv_ping_interval_without_data_ms (5 minutes unless set; the server sets none)
#: and closes a connection that sends too many, so the client pings no more often than that.
KEEPALIVE_TIME_MS = 5 * 60 * 1000
#: How long a ping may stay unanswered before the connection is taken as dead.
KEEPALIVE_TIMEOUT_MS = 20 * 1000

#: Deadline of a unary call made without a timeout (seconds); streams get none.
DEFAULT_UNARY_TIMEOUT_SECONDS = 30.0

#: Calls that read or only watch: repeating one after UNAVAILABLE changes nothing on the server.
#: Writes are left out: a write that failed after the server took it would run twice.
RETRYABLE_METHODS: Mapping[str, tuple[str, ...]] = {
    "SearchService": (
        "Search",
        "SearchByPayload",
        "CountItems",
        "FindSimilarItems",
        "PredictCategories",
    ),
    "UpsertService": ("GetItems",),
    "TaskService": ("GetTask", "ListTasks", "WatchTask"),
    "ClickstreamService": ("GetSession", "ListSessions"),
    "DeploymentService": (
        "ListModels",
        "ListCollections",
        "GetBlueCollection",
        "GetInterleavingVerdict",
    ),
    "FineTuneService": ("GetFineTuningTask", "ListFineTuningTasks"),
    "RankingService": ("GetRankingSettings", "ListRankingSpecs"),
    "SuggestionService": ("Suggest", "ListPhrases", "GetPhrases"),
    "CategoryService": ("ListCategories",),
    "KeyService": ("ListApiKeys",),
}

_PACKAGE = "embedding_studio.v1"

#: At most 4 attempts, waiting 0.1 s, 0.2 s, 0.4 s (randomised, capped at 2 s) between them.
RETRY_POLICY: Mapping[str, Any] = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "2s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config() -> str:
    """The gRPC service config (JSON) that gives the retryable methods ``RETRY_POLICY``."""
    names = [
        {"service": f"{_PACKAGE}.{service}", "method": method}
        for service, methods in RETRYABLE_METHODS.items()
        for method in methods
    ]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": dict(RETRY_POLICY)}]})


def channel_options(overrides: Sequence[tuple[str, Any]] = ()) -> list[tuple[str, Any]]:
    """The default options with the caller's ``overrides`` put over them by name."""
    options: dict[str, Any] = {
        "grpc.max_receive_message_length": MAX_MESSAGE_BYTES,
        "grpc.max_send_message_length": MAX_MESSAGE_BYTES,
        "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
        "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
        "grpc.keepalive_permit_without_calls": 0,
        "grpc.enable_retries": 1,
        "grpc.service_config": service_config(),
    }
    options.update(dict(overrides))
    return list(options.items())
