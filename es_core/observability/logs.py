"""Log setup of every process: text as before, or one JSON object per line (``ES_LOG_FORMAT``)
carrying the request and task the line was written for."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

from es_core.observability import request_context

TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


class JsonFormatter(logging.Formatter):
    """time (ISO 8601, UTC), level, logger, message; request_id and task_id when set; the
    traceback as ``exc_info`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request = request_context.request_id.get()
        if request:
            line["request_id"] = request
        task = request_context.task_id.get()
        if task:
            line["task_id"] = task
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(
    log_format: Literal["text", "json"], level: int | str = logging.INFO, text_format: str = ""
) -> None:
    """The root logger writes to stderr in ``log_format`` (replacing its handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(text_format or TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Python's warnings become log lines too (in JSON, one line each).
    logging.captureWarnings(log_format == "json")
