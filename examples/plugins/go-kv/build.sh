#!/bin/sh
# Builds the go-kv example plugin, build/go-kv, with the Go SDK's shared build (see
# packages/plugin-sdk/go/build-plugin.sh: offline, GOPATH mode, Debian's Go packages).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec sh "$here/../../../packages/plugin-sdk/go/build-plugin.sh" "$here" "$here/build/go-kv"
