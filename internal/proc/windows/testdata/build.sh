#!/bin/sh
# Rebuilds child.exe from child.c. The flags make the build byte-for-byte
# reproducible (no timestamp, stripped); TestChildReproducible checks that
# the committed child.exe is what this script produces.
# Usage: build.sh [outdir]   (default: beside the source)
set -eu
out="$(cd "${1:-$(dirname "$0")}" && pwd)/child.exe"
cd "$(dirname "$0")"
x86_64-w64-mingw32-gcc -O2 -s -Wl,--no-insert-timestamp -o "$out" child.c
