"""Optional OpenTelemetry traces: on only when an OTLP endpoint is configured (and the
``tracing`` extra is installed); off, every function here costs next to nothing."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_tracer: Any = None
_propagator: Any = None


def endpoint(configured: str) -> str:
    """ES_OTEL_EXPORTER_OTLP_ENDPOINT, else the standard OTEL_EXPORTER_OTLP_ENDPOINT."""
    return configured or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "")


def configure_tracing(configured_endpoint: str, service_name: str) -> bool:
    """Send spans to the OTLP endpoint, if one is set; True when tracing is on."""
    target = endpoint(configured_endpoint)
    if not target:
        return False
    try:
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        log.warning("tracing stays off: %s (install embedding-studio[tracing])", exc)
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=target)))
    trace.set_tracer_provider(provider)
    use_provider(provider)
    return True


def use_provider(provider: Any) -> None:
    """Trace with ``provider`` (an OpenTelemetry TracerProvider); None turns tracing off."""
    global _tracer, _propagator
    if provider is None:
        _tracer = _propagator = None
        return
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    _tracer = provider.get_tracer("embedding_studio")
    _propagator = TraceContextTextMapPropagator()


def enabled() -> bool:
    return _tracer is not None


@contextmanager
def span(name: str, traceparent: str = "") -> Iterator[None]:
    """A span named ``name`` around the block, the child of ``traceparent`` (W3C) if given."""
    if _tracer is None:
        yield
        return
    parent = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    with _tracer.start_as_current_span(name, context=parent):
        yield


def current_traceparent() -> str:
    """The W3C traceparent of the current span; "" when tracing is off or no span is open."""
    if _tracer is None:
        return ""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent", "")
