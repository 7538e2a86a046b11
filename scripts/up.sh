#!/usr/bin/env bash
# Start the whole stack on its embedded defaults (PostgreSQL+pgvector, Redis, Celery worker,
# gRPC server on 127.0.0.1:50051). Ctrl-C or SIGTERM stops everything it started.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
exec "$ROOT/.venv/bin/es" up "$@"
