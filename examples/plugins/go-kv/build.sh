#!/bin/sh
# Builds the go-kv example plugin: build/go-kv.
#
# Offline, in GOPATH mode, against Debian's packaged Go sources (/usr/share/gocode): go-plugin
# 1.0.1, grpc 1.33, golang/protobuf 1.3.5. protoc-gen-go is built from golang/protobuf's own source
# (its `plugins=grpc` generator matches that grpc), and the Go code for proto/corral/*/v1 is
# generated into a temporary GOPATH, never committed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto=$(cd "$here/../../../proto" && pwd)
gocode=${CORRAL_GOCODE:-/usr/share/gocode}

fail() {
  echo "go-kv: $1" >&2
  echo "go-kv: on Debian: apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-github-golang-protobuf-1-3-dev protobuf-compiler" >&2
  exit 1
}
command -v go >/dev/null 2>&1 || fail "Go is not installed"
command -v protoc >/dev/null 2>&1 || fail "protoc is not installed"
[ -d "$gocode/src/github.com/hashicorp/go-plugin" ] || fail "go-plugin's sources are not in $gocode"
[ -d "$gocode/src/github.com/golang/protobuf/protoc-gen-go" ] || fail "golang/protobuf's sources are not in $gocode"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GO111MODULE=off GOFLAGS= GOPATH="$work:$gocode"
export GOCACHE="${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/corral-go-build}"

go build -o "$work/bin/protoc-gen-go" github.com/golang/protobuf/protoc-gen-go
pkg="$work/src/corral.dev/gokv"
mkdir -p "$pkg"
# One protoc run per Go package: this protoc-gen-go takes one package per run.
for file in corral/plugin/v1/plugin.proto corral/host/v1/host.proto; do
  PATH="$work/bin:$PATH" protoc -I "$proto" --go_out="plugins=grpc:$pkg" "$proto/$file"
done
cp "$here/main.go" "$pkg/"
mkdir -p "$here/build"
go build -o "$here/build/go-kv" corral.dev/gokv
