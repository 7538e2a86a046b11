#!/usr/bin/env bash
# Everything CI checks: the contract (buf lint/breaking, fresh stubs), lint, and the test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/bootstrap.sh
bash scripts/check_protos.sh
bash scripts/check_deploy.sh
.venv/bin/ruff check es_core es_server es_workers es_cli es_triton es_harness clients/python/src/embedding_studio scripts/check_deploy.py tests bench
.venv/bin/mypy es_core es_broker es_server es_workers es_cli es_triton es_harness bench scripts/check_deploy.py clients/python/src/embedding_studio/client.py clients/python/src/embedding_studio/channel_defaults.py clients/python/src/embedding_studio/__init__.py
# pytest exits 5 when it collected no test: that is a failure here, as any non-zero code is.
# Two pytest workers by default (ES_TEST_WORKERS; 0 = one process). A test file runs whole on
# one worker, so module fixtures and the order of a file's tests hold; each worker starts its
# own throwaway stack.
exec .venv/bin/python -m pytest -q -p no:cacheprovider \
    -n "${ES_TEST_WORKERS:-2}" --dist loadfile "$@"
