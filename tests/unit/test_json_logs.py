"""JSON logs (ES_LOG_FORMAT=json): one object per line with time, level, logger and message,
and the request and task the line was written for when there are any; and how a task carries
its request's id from the server to the worker."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from es_core.observability import request_context
from es_core.observability.logs import JsonFormatter, configure_logging
from es_core.observability.task_origin import running, with_origin


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("bad value")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("es.test", logging.WARNING, __file__, 1, message, args, exc_info)


def test_a_line_is_one_json_object_with_the_fields() -> None:
    line = JsonFormatter().format(_record("encoded %d items for «%s»", 3, "ünïcode"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert set(parsed) == {"time", "level", "logger", "message"}
    assert parsed["level"] == "WARNING" and parsed["logger"] == "es.test"
    assert parsed["message"] == "encoded 3 items for «ünïcode»"
    assert datetime.fromisoformat(parsed["time"]).utcoffset() is not None


def test_a_traceback_stays_inside_the_one_line() -> None:
    line = JsonFormatter().format(_record("failed", exc=True))
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "failed"
    assert "ValueError: bad value" in parsed["exc_info"]


def test_a_line_carries_the_request_and_task_it_was_written_for() -> None:
    request = request_context.request_id.set("req-1")
    task = request_context.task_id.set("task-1")
    try:
        parsed = json.loads(JsonFormatter().format(_record("hello")))
    finally:
        request_context.task_id.reset(task)
        request_context.request_id.reset(request)
    assert parsed["request_id"] == "req-1" and parsed["task_id"] == "task-1"
    assert "request_id" not in json.loads(JsonFormatter().format(_record("hello")))


@pytest.fixture
def root_handlers() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configured_json_every_logger_writes_json_lines(
    root_handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("json")
    logging.getLogger("es_server.rpc").info("one")
    logging.getLogger("celery.worker").warning("two\nlines")
    logging.getLogger("es.quiet").debug("not at INFO")
    lines = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["one", "two\nlines"]


def test_configured_text_writes_text(
    root_handlers: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("text")
    logging.getLogger("es_server").info("plain")
    err = capsys.readouterr().err
    assert err.rstrip().endswith("es_server INFO plain")
    with pytest.raises(json.JSONDecodeError):
        json.loads(err)


def test_a_task_created_in_a_request_carries_its_id_and_the_worker_takes_it_up() -> None:
    params = {"collection_id": "c"}
    assert with_origin(params) == params  # no request, nothing added
    token = request_context.request_id.set("req-7")
    try:
        carried = with_origin(params)
    finally:
        request_context.request_id.reset(token)
    assert carried == {"collection_id": "c", "request_id": "req-7"}
    assert params == {"collection_id": "c"}  # the request's params are left as they were

    with running("task-9", "upsertion", carried):
        assert request_context.request_id.get() == "req-7"
        assert request_context.task_id.get() == "task-9"
        # A task the running one starts comes from the same request.
        assert with_origin({})["request_id"] == "req-7"
    assert request_context.request_id.get() == "" and request_context.task_id.get() == ""


@pytest.mark.parametrize("carried", [{}, {"request_id": 42}])
def test_a_task_without_a_usable_request_id_runs_with_none(carried: dict[str, object]) -> None:
    with running("task-1", "import", carried):
        assert request_context.request_id.get() == ""
        assert request_context.task_id.get() == "task-1"
