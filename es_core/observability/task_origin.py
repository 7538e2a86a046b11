"""The request a task comes from, carried in its params: the worker that runs the task logs
with that request's id and traces it as a child of the request's span."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from es_core.observability import request_context, tracing

REQUEST_ID = "request_id"
TRACEPARENT = "traceparent"


def with_origin(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` plus the current request's id and trace context, when there are any. Not part
    of a task's idempotency digest: a retry from another request is the same task."""
    origin: dict[str, str] = {}
    request = request_context.request_id.get()
    if request:
        origin[REQUEST_ID] = request
    parent = tracing.current_traceparent()
    if parent:
        origin[TRACEPARENT] = parent
    return {**params, **origin} if origin else params


@contextmanager
def running(task_id: str, kind: str, params: dict[str, Any]) -> Iterator[None]:
    """Within: logs carry the task's id and its request's id; a span (when tracing) is the
    task's, a child of its request's."""
    request = params.get(REQUEST_ID)
    request_token = request_context.request_id.set(request if isinstance(request, str) else "")
    task_token = request_context.task_id.set(task_id)
    parent = params.get(TRACEPARENT)
    try:
        with tracing.span(f"task {kind}", parent if isinstance(parent, str) else ""):
            yield
    finally:
        request_context.task_id.reset(task_token)
        request_context.request_id.reset(request_token)
