#!/bin/sh
# Rebuilds child.exe from child.c. The flags make the build byte-for-byte
# reproducible (no timestamp, stripped); TestChildReproducible checks that
# the committed child.exe is what this script produces.
set -eu
cd "$(dirname "$0")"
out="${1:-child.exe}"
x86_64-w64-mingw32-gcc -O2 -s -Wl,--no-insert-timestamp -o "$out" child.c
