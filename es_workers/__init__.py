"""Celery workers: one task module per kind of long work.

With metrics on, the multiprocess directory is chosen here, before any module imports
prometheus_client (es_core.observability.multiprocess says why)."""

from es_core.config import Settings
from es_core.observability.multiprocess import use_directory

_settings = Settings()
if _settings.resolved_worker_metrics_port:
    use_directory(_settings.metrics_multiproc_root)
del _settings
