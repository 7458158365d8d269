#!/bin/sh
# Rebuilds manychild.exe from manychild.c: the Windows target of
# BenchmarkCommitWindows, committed because a test binary running under Wine
# cannot run mingw. No C runtime (entry point start, kernel32 only) keeps it
# small. The build is byte for byte reproducible (no timestamp, a relative
# source path, DWARF stripped but the COFF symbol table kept: the benchmark
# finds f000..f999 in it); TestManyChildReproducible checks that the
# committed file is what this script produces.
# Usage: build.sh [outdir]   (default: beside the source)
set -eu
out="$(cd "${1:-$(dirname "$0")}" && pwd)/manychild.exe"
cd "$(dirname "$0")"
x86_64-w64-mingw32-gcc -O2 -Wall -Wextra -ffreestanding -nostdlib -e start \
	-Wl,--subsystem,console -Wl,--strip-debug -Wl,--no-insert-timestamp \
	-o "$out" manychild.c -lkernel32
