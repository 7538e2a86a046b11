"""The Celery application: queues per worker kind, late acks, and the beat schedule (the
pending-task sweeper, improvement, ranking fit and suggestions harvest)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_init
from kombu.entity import Queue

from es_broker.celery_sender import broker_app
from es_core.config import get_settings
from es_core.observability.logs import configure_logging
from es_core.observability.metrics import serve_metrics
from es_core.observability.tracing import configure_tracing
from es_core.plugins.registry import PluginError, load_plugin
from es_workers.metrics import QueueDepth
from es_workers.queues import QUEUES, SWEEPER_QUEUE

__all__ = ["QUEUES", "SWEEPER_QUEUE", "celery_app", "create_app"]


def create_app() -> Celery:
    settings = get_settings()
    app = broker_app(settings)
    schedule: dict[str, dict[str, Any]] = {
        "sweep-pending-tasks": {
            "task": "es.sweep",
            "schedule": settings.sweeper_interval_seconds,
            "options": {"queue": SWEEPER_QUEUE, "expires": settings.sweeper_interval_seconds},
        },
        "improve-queued-sessions": {
            "task": "es.improvement_tick",
            "schedule": settings.improvement_seconds_interval,
            "options": {
                "queue": SWEEPER_QUEUE,
                "expires": settings.improvement_seconds_interval,
            },
        },
        "fit-ranking-weights": {
            "task": "es.ranking_fit_tick",
            "schedule": max(settings.ranking_fit_seconds_interval, 60.0),
            "options": {"queue": SWEEPER_QUEUE, "expires": 60.0},
        },
    }
    if settings.suggestions_harvest:
        schedule["harvest-suggestions"] = {
            "task": "es.suggestions_harvest",
            "schedule": settings.suggestions_harvest_interval_seconds,
            "options": {
                "queue": SWEEPER_QUEUE,
                "expires": settings.suggestions_harvest_interval_seconds,
            },
        }
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_queues=[Queue(name) for name in QUEUES],
        task_default_queue=SWEEPER_QUEUE,
        worker_hijack_root_logger=False,
        beat_schedule=schedule,
        include=[
            "es_workers.upsertion",
            "es_workers.importing",
            "es_workers.filterable_fields",
            "es_workers.sweeper",
            "es_workers.improvement",
            "es_workers.fine_tuning",
            "es_workers.reindex",
            "es_workers.deployment",
            "es_workers.ranking_fit",
            "es_workers.categories_switch",
            "es_workers.suggestions_harvest",
        ],
    )
    return app


celery_app = create_app()


@worker_init.connect
def _load_plugin_at_start(**_: object) -> None:
    """A plugin that cannot load stops the worker as it starts, not at its first task.

    Celery logs and swallows exceptions from signal handlers, so this exits explicitly."""
    try:
        load_plugin(get_settings())
    except PluginError as exc:
        raise SystemExit(f"embedding studio worker: {exc}") from exc


@worker_init.connect
def _observe_at_start(**_: object) -> None:
    """/metrics (this worker's and its pool children's, and the queue depths) and traces."""
    settings = get_settings()
    configure_tracing(settings.otel_exporter_otlp_endpoint, "embedding-studio-worker")
    port = settings.resolved_worker_metrics_port
    if port:
        serve_metrics(settings.metrics_host, port, [QueueDepth(settings.broker_url, QUEUES)])


def _json_logs(loglevel: int | str = "INFO", **_: object) -> None:
    configure_logging("json", loglevel)


if get_settings().log_format == "json":
    # Connected, it replaces Celery's own logging setup (worker and beat).
    setup_logging.connect(_json_logs, weak=False)
