#!/usr/bin/env bash
# Generates the TypeScript types of proto/advclip/v1/*.proto into
# services/protocol/generated/ (checked in; test/unit/protocol/generated.test.ts
# fails when they drift). The options here must match services/protocol/proto-loader.ts.
# Usage: scripts/gen-proto.sh [OUT_DIR]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/services/protocol/generated}"
cd "$root"
rm -rf "$out"
mkdir -p "$out"
node_modules/.bin/proto-loader-gen-types \
  --grpcLib=@grpc/grpc-js \
  --keepCase --longs=Number --enums=String --defaults --oneofs \
  --includeComments \
  --importFileExtension=.ts \
  --includeDirs=proto \
  --outDir="$out" \
  advclip/v1/tensor.proto advclip/v1/task.proto advclip/v1/run.proto advclip/v1/coordinator.proto
