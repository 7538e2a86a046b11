#!/usr/bin/env bash
# Check deploy/ offline (no Docker engine, no cluster): hadolint on the Dockerfiles, dclint and
# structure checks on the compose file, the kustomize manifests rendered and validated against
# the Kubernetes schemas, the worker queue groups, and that every `es ...` command they run
# resolves (`es <subcommand> --help`). scripts/check_deploy.py says what each check holds.
# Extra arguments go to it (--skip-commands: list the es commands without running them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
if [[ ! -x node_modules/.bin/dclint ]]; then
    echo "check_deploy: node_modules/.bin/dclint missing; installing package.json's devDependencies"
    npm install --no-package-lock --no-audit --no-fund
fi
PYTHON="${PYTHON:-.venv/bin/python}"
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PYTHON" scripts/check_deploy.py "$@"
