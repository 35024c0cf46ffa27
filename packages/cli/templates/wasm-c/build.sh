#!/bin/sh
# Builds build/plugin.wasm, a WASI reactor, with clang, lld and wasi-libc (Debian and Ubuntu:
# apt-get install clang lld wasi-libc and the wasm32 compiler-rt builtins, libclang-rt-*-dev-wasm32).
# WASI_SYSROOT names another wasi-libc (wasi-sdk's share/wasi-sysroot). corral.h is in include/.
set -eu
cd "$(dirname "$0")"
mkdir -p build
clang --target=wasm32-wasi --sysroot="${WASI_SYSROOT:-/usr}" -mexec-model=reactor -std=c11 -O2 \
  -Wall -Wextra -Werror -Wl,--strip-all -I include -o build/plugin.wasm src/plugin.c
