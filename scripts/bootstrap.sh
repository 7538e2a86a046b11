#!/usr/bin/env bash
# Make .venv hold everything the project needs; quick when nothing changed since the last run.
# torch goes in first and pinned exactly: any other spec pulls a CUDA build of several GB.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-$(command -v python3.11 || command -v python3)}"
"$PYTHON" - <<'PY' || { echo "bootstrap: Python 3.11 is required (set PYTHON=...)" >&2; exit 1; }
import sys
sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)
PY

STAMP=.venv/.installed
WANT="$(cat pyproject.toml clients/python/pyproject.toml | sha256sum | cut -d' ' -f1)"
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    exit 0
fi
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
echo "bootstrap: installing into .venv (first time: a few minutes)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
.venv/bin/python -m pip install --quiet --disable-pip-version-check \
    -e clients/python -e ".[dev]"
echo "$WANT" > "$STAMP"
