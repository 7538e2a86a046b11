#!/usr/bin/env bash
# Regenerate the TypeScript code of the embedding_studio.v1 contract (clients/typescript/src/gen).
#
# Usage: scripts/gen_ts_protos.sh [OUT_DIR]
#   OUT_DIR defaults to clients/typescript; files land in OUT_DIR/src/gen/embedding_studio/v1/.
# Uses the buf of the root package.json and the protoc-gen-es pinned in
# clients/typescript/package-lock.json; installs either when missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="${1:-clients/typescript}"

if [[ ! -x node_modules/.bin/buf ]]; then
    echo "gen_ts_protos: node_modules/.bin/buf missing; installing the pinned @bufbuild/buf"
    npm install --no-package-lock --no-audit --no-fund
fi
if [[ ! -x clients/typescript/node_modules/.bin/protoc-gen-es ]]; then
    echo "gen_ts_protos: protoc-gen-es missing; npm ci in clients/typescript"
    (cd clients/typescript && npm ci --no-audit --no-fund)
fi

# Remove previous output so that a deleted .proto leaves no stale module behind.
rm -rf "$OUT/src/gen"
node_modules/.bin/buf generate --template clients/typescript/buf.gen.yaml --output "$OUT"
echo "gen_ts_protos: generated $(find "$OUT/src/gen" -name '*.ts' | wc -l) files into $OUT/src/gen"
