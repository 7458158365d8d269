#!/bin/sh
# Rebuilds funcs.bin and funcs.sym from funcs.s. TestARM64FixtureReproducible
# runs the same steps and compares the result with the committed files.
set -eu
cd "$(dirname "$0")"
out=${1:-.}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
llvm-mc -triple=aarch64 -filetype=obj funcs.s -o "$tmp/funcs.o"
ld.lld -Ttext=0x10000 -e 0 --build-id=none -o "$tmp/funcs.elf" "$tmp/funcs.o"
llvm-objcopy -O binary --only-section=.text "$tmp/funcs.elf" "$out/funcs.bin"
llvm-nm -S -n --defined-only "$tmp/funcs.elf" > "$out/funcs.sym"
