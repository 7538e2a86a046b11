"""The tracing seam with OpenTelemetry's SDK and an in-memory exporter: off, nothing is carried;
on, a task created within a request's span carries its trace context and the worker's span for
that task is the request span's child."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from es_core.observability import tracing
from es_core.observability.task_origin import TRACEPARENT, running, with_origin

sdk = pytest.importorskip("opentelemetry.sdk.trace")
memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
export = pytest.importorskip("opentelemetry.sdk.trace.export")


@pytest.fixture
def spans() -> Iterator[object]:
    exporter = memory.InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    yield exporter
    tracing.use_provider(None)


def test_off_nothing_is_carried_and_spans_cost_nothing() -> None:
    assert not tracing.enabled()
    with tracing.span("rpc"):
        assert tracing.current_traceparent() == ""
        assert with_origin({"a": 1}) == {"a": 1}


def test_off_without_an_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracing.configure_tracing("", "test") is False
    assert not tracing.enabled()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")
    assert tracing.endpoint("") == "http://collector:4317"
    assert tracing.endpoint("http://mine:4317") == "http://mine:4317"


def test_a_task_span_is_the_child_of_the_request_span(spans: object) -> None:
    with tracing.span("/embedding_studio.v1.UpsertService/UpsertItems"):
        params = with_origin({"collection_id": "c"})
    assert params[TRACEPARENT].startswith("00-")
    with running("task-1", "upsertion", params):
        pass
    finished = {s.name: s for s in spans.get_finished_spans()}  # type: ignore[attr-defined]
    request, task = (
        finished["/embedding_studio.v1.UpsertService/UpsertItems"],
        finished["task upsertion"],
    )
    assert task.context.trace_id == request.context.trace_id
    assert task.parent is not None and task.parent.span_id == request.context.span_id


def test_a_caller_traceparent_makes_the_rpc_span_its_child(spans: object) -> None:
    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracing.span("rpc", caller):
        pass
    (span,) = spans.get_finished_spans()  # type: ignore[attr-defined]
    assert f"{span.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert f"{span.parent.span_id:016x}" == "b7ad6b7169203331"
