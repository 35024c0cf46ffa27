#!/bin/sh
# Generates the static protobuf.js coders (and their .d.ts) for every wire contract in proto/ into
# the directory given (a package's src/gen). Run from a package folder by its build; the output is
# never committed. Static code with plain objects and numbers: the fastest encode/decode protobuf.js
# offers, which the call path needs (see PERFORMANCE.md, grpc.* rows).
set -eu
out=${1:?usage: gen-ts.sh <out-dir> [root-name]}
proto=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
pbjs -t static-module -w esm --dependency protobufjs/minimal.js --force-number \
  --no-create --no-verify --no-convert --no-delimited --no-typeurl --no-service \
  -r "${2:-corral}" -p "$proto" -o "$out/proto.js" \
  "$proto"/plugin/*.proto "$proto"/corral/plugin/v1/plugin.proto "$proto"/corral/host/v1/host.proto
pbts --no-comments -o "$out/proto.d.ts" "$out/proto.js"
