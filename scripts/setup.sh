#!/usr/bin/env bash
# Prepares a fresh machine for Corral: the Debian packages the tests need (when run as root on
# Debian/Ubuntu and something is missing), then the workspace's npm dependencies.
#   scripts/setup.sh              system packages + pnpm install
#   scripts/setup.sh --no-system  pnpm install only (the demo needs no system package)
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages, each with the command that shows it is present.
#   clang, lld, wasi-libc     the C example plugin (examples/plugins/c-wasm)
#   golang-go, go-plugin, ... the Go example plugin (examples/plugins/go-kv)
#   postgresql, redis-server  the distributed backends' tests
#   chromium                  the host's end-to-end tests in a real headless browser
readonly SYSTEM_PACKAGES=(
  "clang:clang"
  "wasm-ld:lld"
  "/usr/lib/wasm32-wasi/libc.a:wasi-libc"
  "/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a:libclang-rt-14-dev-wasm32"
  "go:golang-go"
  "/usr/share/gocode/src/github.com/hashicorp/go-plugin:golang-github-hashicorp-go-plugin-dev"
  "/usr/share/gocode/src/google.golang.org/grpc:golang-google-grpc-dev"
  "/usr/share/gocode/src/google.golang.org/protobuf:golang-google-protobuf-dev"
  "/usr/share/gocode/src/github.com/golang/protobuf/protoc-gen-go:golang-github-golang-protobuf-1-3-dev"
  "protoc:protobuf-compiler"
  "/usr/lib/postgresql:postgresql"
  "redis-server:redis-server"
  "openssl:openssl"
  "chromium:chromium"
)

install_system_packages() {
  local missing=() entry probe pkg
  for entry in "${SYSTEM_PACKAGES[@]}"; do
    probe=${entry%%:*}
    pkg=${entry#*:}
    if [[ $probe == /* ]]; then [[ -e $probe ]] && continue; else command -v "$probe" >/dev/null && continue; fi
    missing+=("$pkg")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
    echo "setup: missing system packages: ${missing[*]}" >&2
    echo "setup: install them (Debian: apt-get install ${missing[*]}) and run again" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
}

[[ ${1:-} == --no-system ]] || install_system_packages
export TURBO_TELEMETRY_DISABLED=1
pnpm install --frozen-lockfile --reporter=append-only
