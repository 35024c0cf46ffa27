#!/bin/sh
# Builds the plugin with Debian's clang, lld and wasi-libc (scripts/setup.sh installs them), against
# corral.h from @corral/plugin-sdk. No compiler means a failed build, never a skipped one.
set -eu
cd "$(dirname "$0")"
if ! command -v clang >/dev/null 2>&1; then
  echo "c-wasm: clang is not installed; run scripts/setup.sh (clang, lld, wasi-libc)" >&2
  exit 1
fi
mkdir -p build
clang --target=wasm32-wasi --sysroot=/usr -mexec-model=reactor -std=c11 -O2 -Wall -Wextra -Werror -Wl,--strip-all \
  -I node_modules/@corral/plugin-sdk/c -o build/plugin.wasm src/plugin.c
