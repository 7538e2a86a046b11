"""``python -m es_server``: the gRPC server alone (``es up`` starts it with everything else)."""

from __future__ import annotations

import asyncio

from es_core.config import get_settings
from es_core.observability.logs import configure_logging
from es_core.observability.tracing import configure_tracing
from es_core.storage.migrations import SchemaNotReady
from es_server.app import serve


def main() -> None:
    settings = get_settings()
    configure_logging(settings.log_format)
    configure_tracing(settings.otel_exporter_otlp_endpoint, "embedding-studio-server")
    try:
        asyncio.run(serve(settings))
    except SchemaNotReady as exc:
        raise SystemExit(f"es server: {exc}") from None


if __name__ == "__main__":
    main()
