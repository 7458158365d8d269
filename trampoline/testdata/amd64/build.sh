#!/bin/sh
# Rebuilds the x86-64 fixture blobs and their symbol lists from cfuncs.c:
#   cfuncs-gcc.bin/.sym     gcc -O2 -fPIE
#   cfuncs-clang.bin/.sym   clang -O2 -fPIE
# each linked at 0x10000 by ld.lld (cfuncs.ld) and copied out flat by
# llvm-objcopy. TestAMD64FixtureReproducible runs this into a temporary
# directory and compares the result with the committed files.
set -eu
cd "$(dirname "$0")"
out=$(cd "${1:-.}" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
objcopy=$(command -v llvm-objcopy || command -v llvm-objcopy-14)
nm=$(command -v llvm-nm || command -v llvm-nm-14)
cflags="-O2 -fPIE -ffreestanding -fno-builtin -fno-stack-protector -fcf-protection=none -fno-asynchronous-unwind-tables -fno-unwind-tables"
flat() { # elf name
	"$objcopy" -O binary "$1" "$out/$2.bin"
	"$nm" -S -n --defined-only "$1" | grep -i ' t ' > "$out/$2.sym"
}
gcc $cflags -c cfuncs.c -o "$tmp/gcc.o"
ld.lld -T cfuncs.ld -e 0 --build-id=none -o "$tmp/gcc.elf" "$tmp/gcc.o"
flat "$tmp/gcc.elf" cfuncs-gcc
clang --target=x86_64-linux-gnu $cflags -c cfuncs.c -o "$tmp/clang.o"
ld.lld -T cfuncs.ld -e 0 --build-id=none -o "$tmp/clang.elf" "$tmp/clang.o"
flat "$tmp/clang.elf" cfuncs-clang
