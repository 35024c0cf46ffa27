#!/bin/sh
# Builds a Corral plugin written in Go with the SDK: build-plugin.sh <plugin folder> <output file>.
#
# The plugin is one Go package (package main) of the .go files at the top of its folder, importing
# the SDK as corral.dev/corral. Built offline in GOPATH mode against Debian's packaged Go sources
# (/usr/share/gocode, or CORRAL_GOCODE): go-plugin 1.0.1, grpc 1.33, golang/protobuf 1.3.5.
# protoc-gen-go is built from golang/protobuf's own source (its `plugins=grpc` generator matches
# that grpc); the Go code of Corral's protos (from @corral/proto) is generated into a temporary
# GOPATH, never written beside the sources.
set -eu
[ $# -eq 2 ] || { echo "usage: build-plugin.sh <plugin folder> <output file>" >&2; exit 2; }
sdk=$(cd "$(dirname "$0")" && pwd -P)
plugin=$(cd "$1" && pwd)
case $2 in /*) output=$2 ;; *) output=$(pwd)/$2 ;; esac
gocode=${CORRAL_GOCODE:-/usr/share/gocode}

fail() {
  echo "corral go: $1" >&2
  echo "corral go: on Debian: apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-github-golang-protobuf-1-3-dev protobuf-compiler" >&2
  exit 1
}
command -v go >/dev/null 2>&1 || fail "Go is not installed"
command -v protoc >/dev/null 2>&1 || fail "protoc is not installed"
[ -d "$gocode/src/github.com/hashicorp/go-plugin" ] || fail "go-plugin's sources are not in $gocode"
[ -d "$gocode/src/github.com/golang/protobuf/protoc-gen-go" ] || fail "golang/protobuf's sources are not in $gocode"
ls "$plugin"/*.go >/dev/null 2>&1 || { echo "corral go: no .go files in $plugin" >&2; exit 1; }

# @corral/proto, which ships the .proto files: in this repository the SDK's own node_modules, once
# installed its sibling package (the SDK's real path, so that pnpm's layout finds it too).
proto=
for candidate in "$sdk/../node_modules/@corral/proto" "$sdk/../../proto"; do
  if [ -f "$candidate/corral/plugin/v1/plugin.proto" ]; then proto=$(cd "$candidate" && pwd -P); break; fi
done
[ -n "$proto" ] || { echo "corral go: cannot find @corral/proto beside the SDK in $sdk/.." >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GO111MODULE=off GOFLAGS= GOPATH="$work:$gocode"
# Static unless the plugin needs cgo (CGO_ENABLED=1): a binary without the dynamic loader and cgo's
# start-up runs on any Linux and starts faster (bench row grpc.start.go: 43 -> 39 ms).
export CGO_ENABLED="${CGO_ENABLED:-0}"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/corral-go-build}"

go build -o "$work/bin/protoc-gen-go" github.com/golang/protobuf/protoc-gen-go
sdkpkg="$work/src/corral.dev/corral"
mkdir -p "$sdkpkg/internal" "$work/src/corral.dev/plugin"
cp "$sdk"/*.go "$sdkpkg/"
# One protoc run per Go package: this protoc-gen-go takes one package per run.
for file in corral/plugin/v1/plugin.proto corral/host/v1/host.proto; do
  PATH="$work/bin:$PATH" protoc -I "$proto" --go_out="plugins=grpc:$sdkpkg/internal" "$proto/$file"
done
cp "$plugin"/*.go "$work/src/corral.dev/plugin/"
mkdir -p "$(dirname "$output")"
go build -o "$output" corral.dev/plugin
