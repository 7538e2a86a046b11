"""The request and task the current coroutine works for: set by the server per RPC and by the
worker per task, read by log lines and by ``create_task`` (a task carries its request's id)."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

request_id: ContextVar[str] = ContextVar("request_id", default="")
task_id: ContextVar[str] = ContextVar("task_id", default="")

# A caller's id is kept only when it is short and plain: it lands in logs and task params.
_ACCEPTABLE = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accepted_request_id(sent: str | None) -> str:
    """The caller's ``x-request-id`` when acceptable, else a new one."""
    if sent and _ACCEPTABLE.fullmatch(sent):
        return sent
    return new_request_id()
