"""A task's wake-up as a Celery message carrying the task id and nothing else, on its kind's
queue. The workers' application (``es_workers.app``) starts from the same client settings."""

from __future__ import annotations

from celery import Celery
from kombu.exceptions import OperationalError

from es_core.config import Settings
from es_core.errors import Unavailable
from es_core.tasks.model import QUEUE_FOR_KIND, Task
from es_core.tasks.sender import message_name


def broker_app(settings: Settings) -> Celery:
    """A Celery application on the configured broker, sending JSON."""
    app = Celery("embedding_studio", broker=settings.broker_url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
    )
    return app


class CelerySender:
    """``TaskSender`` through a Celery application."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def send(self, task: Task) -> None:
        """Unavailable when the broker cannot be reached (after kombu's own short retries)."""
        try:
            self._app.send_task(
                message_name(task.kind), args=[task.task_id], queue=QUEUE_FOR_KIND[task.kind]
            )
        except OperationalError as exc:
            raise Unavailable("the broker cannot be reached now; retry later") from exc

    def reachable(self, timeout: float) -> bool:
        """Whether the broker accepts a connection within ``timeout`` seconds (one attempt)."""
        try:
            with self._app.connection_for_write() as connection:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0, timeout=timeout
                )
        except (OperationalError, OSError):
            return False
        return True
