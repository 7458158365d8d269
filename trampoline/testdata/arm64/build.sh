#!/bin/sh
# Rebuilds the ARM64 fixture blobs and their symbol lists:
#   funcs.bin/funcs.sym         from funcs.s (llvm-mc)
#   cfuncs-gcc.bin/.sym         from cfuncs.c (aarch64-linux-gnu-gcc -O2)
#   cfuncs-clang.bin/.sym       from cfuncs.c (clang -O2 -mcmodel=tiny)
# each linked at 0x10000 by ld.lld and copied out flat by llvm-objcopy.
# TestARM64FixtureReproducible runs this into a temporary directory and
# compares the result with the committed files.
set -eu
cd "$(dirname "$0")"
out=$(cd "${1:-.}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flat() { # elf name
	llvm-objcopy -O binary "$1" "$out/$2.bin"
	llvm-nm -S -n --defined-only "$1" | grep -i ' t ' > "$out/$2.sym"
}
llvm-mc -triple=aarch64 -filetype=obj funcs.s -o "$tmp/funcs.o"
ld.lld -Ttext=0x10000 -e 0 --build-id=none -o "$tmp/funcs.elf" "$tmp/funcs.o"
llvm-objcopy -O binary --only-section=.text "$tmp/funcs.elf" "$out/funcs.bin"
llvm-nm -S -n --defined-only "$tmp/funcs.elf" > "$out/funcs.sym"
cflags="-O2 -ffreestanding -fno-builtin -fno-stack-protector -fno-pic -fno-asynchronous-unwind-tables -fno-unwind-tables"
aarch64-linux-gnu-gcc $cflags -mno-outline-atomics -c cfuncs.c -o "$tmp/gcc.o"
ld.lld -T cfuncs.ld -e 0 --build-id=none -o "$tmp/gcc.elf" "$tmp/gcc.o"
flat "$tmp/gcc.elf" cfuncs-gcc
clang --target=aarch64-linux-gnu -mcmodel=tiny $cflags -c cfuncs.c -o "$tmp/clang.o"
ld.lld -T cfuncs.ld -e 0 --build-id=none -o "$tmp/clang.elf" "$tmp/clang.o"
flat "$tmp/clang.elf" cfuncs-clang
