#!/bin/sh
# Rebuilds the ELF fixtures of the image package from textrel.c.
# textrel-*.elf: PIE executables whose .text holds R_*_RELATIVE relocations
# (linked with -z notext), exporting their globals (-rdynamic). They are committed so the tests run without
# compilers; TestFixturesRebuild checks that this script still reproduces
# their function lists where the compilers exist.
set -eu
cd "$(dirname "$0")"
out=${1:-.}
build() { # compiler output
	"$1" -O2 -fPIE -pie -rdynamic -DWITH_MAIN -Wl,-z,notext -Wl,--build-id=sha1 -Wl,-z,max-page-size=4096 -o "$2" textrel.c 2>/dev/null
}
build gcc "$out/textrel-amd64.elf"
build aarch64-linux-gnu-gcc "$out/textrel-arm64.elf"
