#!/usr/bin/env bash
# Check the embedding_studio.v1 contract: buf lint, buf breaking against the previous commit,
# and that the committed Python stubs and TypeScript code match what scripts/gen_protos.sh and
# scripts/gen_ts_protos.sh produce now. Runs from any directory; installs the pinned buf and
# protoc-gen-es from npm when missing; needs grpcio-tools.
# BUF_BREAKING_AGAINST overrides the breaking-change baseline (default: .git#ref=HEAD~1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

if [[ ! -x node_modules/.bin/buf ]]; then
    echo "check_protos: node_modules/.bin/buf missing; installing the pinned @bufbuild/buf"
    npm install --no-package-lock --no-audit --no-fund
fi
buf() { node_modules/.bin/buf "$@"; }
breaking() {
    echo "check_protos: buf breaking --against '$1'"
    buf breaking --against "$1" || {
        echo "check_protos: FAILED: breaking change to embedding_studio.v1; add fields instead," >&2
        echo "check_protos: or put the new contract in a new package (embedding_studio.v2)." >&2
        exit 1
    }
}

echo "check_protos: buf lint"
buf lint || { echo "check_protos: FAILED: buf lint (see above)" >&2; exit 1; }

AGAINST="${BUF_BREAKING_AGAINST:-}"
if [[ -n "$AGAINST" ]]; then
    breaking "$AGAINST"
elif ! git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null 2>&1; then
    echo "check_protos: skipping buf breaking: no previous commit (HEAD~1) in this clone"
elif ! git cat-file -e 'HEAD~1:protos' 2>/dev/null || ! git cat-file -e 'HEAD~1:buf.yaml' 2>/dev/null; then
    echo "check_protos: skipping buf breaking: HEAD~1 has no protos/ and buf.yaml to compare with"
else
    breaking '.git#ref=HEAD~1'
fi

echo "check_protos: regenerating stubs to compare with the committed ones"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
bash scripts/gen_protos.sh "$TMP" 2>"$TMP.log" || { cat "$TMP.log" >&2; rm -f "$TMP.log"; exit 1; }
rm -f "$TMP.log"

COMMITTED=clients/python/src/embedding_studio/v1
if ! diff -r -q -x __pycache__ -x '*.pyc' -x __init__.py "$TMP/embedding_studio/v1" "$COMMITTED"; then
    echo "check_protos: FAILED: the stubs in $COMMITTED are stale (they differ from the protos)." >&2
    echo "check_protos: run 'bash scripts/gen_protos.sh' and commit the result." >&2
    exit 1
fi

echo "check_protos: regenerating the TypeScript code to compare with the committed one"
bash scripts/gen_ts_protos.sh "$TMP/ts" >"$TMP.log" 2>&1 || { cat "$TMP.log" >&2; rm -f "$TMP.log"; exit 1; }
rm -f "$TMP.log"
COMMITTED_TS=clients/typescript/src/gen
if ! diff -r -q "$TMP/ts/src/gen" "$COMMITTED_TS"; then
    echo "check_protos: FAILED: the TypeScript code in $COMMITTED_TS is stale." >&2
    echo "check_protos: run 'bash scripts/gen_ts_protos.sh' and commit the result." >&2
    exit 1
fi
echo "check_protos: OK (lint clean, no breaking change, Python and TypeScript stubs up to date)"
