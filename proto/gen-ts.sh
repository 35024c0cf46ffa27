#!/bin/sh
# Generates the static protobuf.js coders (and their .d.ts) for every wire contract here into the
# directory given (this package's src/gen). Run by the build; the output is never committed. Static
# code with plain objects and numbers: the fastest encode/decode protobuf.js offers, which the call
# path needs (see PERFORMANCE.md, grpc.* rows).
set -eu
out=${1:?usage: gen-ts.sh <out-dir>}
proto=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
pbjs -t static-module -w esm --dependency protobufjs/minimal.js --force-number \
  --no-create --no-verify --no-convert --no-delimited --no-typeurl --no-service \
  -r corral -p "$proto" -o "$out/proto.js" \
  "$proto"/plugin/*.proto "$proto"/corral/plugin/v1/plugin.proto "$proto"/corral/host/v1/host.proto
pbts --no-comments -o "$out/proto.d.ts" "$out/proto.js"
