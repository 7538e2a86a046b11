#!/usr/bin/env bash
# Regenerate the Python stubs of the embedding_studio.v1 contract (and, without OUT_DIR, the
# TypeScript code of clients/typescript too: scripts/gen_ts_protos.sh).
#
# Usage: scripts/gen_protos.sh [OUT_DIR]
#   OUT_DIR defaults to clients/python/src; files land in OUT_DIR/embedding_studio/v1/ so that
#   `from embedding_studio.v1 import search_pb2, search_pb2_grpc` works.
# Output is deterministic for a given grpcio-tools and mypy-protobuf (both pinned in the dev extra).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="${1:-clients/python/src}"
PKG_DIR="$OUT/embedding_studio/v1"

if [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY="$(command -v python3)"
fi
PY_BIN="$(dirname "$PY")"

if ! "$PY" -c 'import grpc_tools.protoc' 2>/dev/null; then
    echo "gen_protos: grpcio-tools is not installed for $PY (pip install -e '.[dev]')" >&2
    exit 1
fi

mkdir -p "$PKG_DIR"
# Remove previous output so that a deleted .proto leaves no stale stub behind.
find "$PKG_DIR" -maxdepth 1 -type f \( -name '*_pb2.py' -o -name '*_pb2.pyi' \
    -o -name '*_pb2_grpc.py' -o -name '*_pb2_grpc.pyi' \) -delete
[[ -f "$PKG_DIR/__init__.py" ]] || : > "$PKG_DIR/__init__.py"

mapfile -t PROTOS < <(cd protos && find embedding_studio -name '*.proto' | LC_ALL=C sort)

ARGS=(-I protos --python_out="$OUT" --pyi_out="$OUT" --grpc_python_out="$OUT")

# Typed grpc stubs (optional: mypy-protobuf's protoc plugin, installed by the dev extra).
MYPY_GRPC="$PY_BIN/protoc-gen-mypy_grpc"
if [[ -x "$MYPY_GRPC" ]]; then
    ARGS+=(--plugin=protoc-gen-mypy_grpc="$MYPY_GRPC" --mypy_grpc_out="$OUT")
else
    echo "gen_protos: $MYPY_GRPC not found; skipping typed grpc stubs (*_pb2_grpc.pyi)" >&2
fi

"$PY" -m grpc_tools.protoc "${ARGS[@]}" "${PROTOS[@]}"
echo "gen_protos: generated $(find "$PKG_DIR" -maxdepth 1 -name '*_pb2*' | wc -l) files into $PKG_DIR"

if [[ $# -eq 0 ]]; then
    bash scripts/gen_ts_protos.sh
fi
