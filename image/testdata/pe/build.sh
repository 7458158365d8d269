#!/usr/bin/env bash
# build.sh: rebuild the image package's own small PE fixtures (committed):
#   x64.dll  x86-64, clang + lld-link: .pdata incl. a chained range and a
#            frame-pointer function, exports, COFF symbols, CodeView RSDS
#   a64.dll  ARM64, clang + lld-link: packed and unpacked (.xdata) .pdata
# Needs clang and lld-link (LLVM 14). /Brepro makes the output reproducible.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
link=(/dll /noentry /nodefaultlib /debug:dwarf /lldmingw /Brepro /opt:noref)
clang --target=x86_64-pc-windows-msvc -O2 -fno-inline-functions -c funcs.c -o "$work/x64.o"
clang --target=x86_64-pc-windows-msvc -c chained_x64.s -o "$work/chained.o"
lld-link "${link[@]}" /machine:x64 /export:split_func /out:x64.dll "$work/x64.o" "$work/chained.o"
clang --target=aarch64-pc-windows-msvc -O2 -fno-inline-functions -c funcs.c -o "$work/a64.o"
lld-link "${link[@]}" /machine:arm64 /out:a64.dll "$work/a64.o"
rm -f x64.lib x64.exp a64.lib a64.exp
