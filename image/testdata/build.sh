#!/bin/sh
# Rebuilds the fixtures of the image package (output directory: $1, default
# this one).
#
# textrel-{amd64,arm64}.elf (from textrel.c): PIE executables whose .text
# holds R_*_RELATIVE relocations (linked with -z notext), exporting their
# globals (-rdynamic).
# textrel-x64.dll (from textrel_pe.c): an x64 DLL linked at 0x140000000 with
# IMAGE_REL_BASED_DIR64 relocations in .text.
#
# They are committed so the tests run without compilers;
# TestFixturesRebuild checks that this script still reproduces their
# function lists where the compilers exist.
set -eu
cd "$(dirname "$0")"
out=${1:-.}
build() { # compiler output
	"$1" -O2 -fPIE -pie -rdynamic -DWITH_MAIN -Wl,-z,notext -Wl,--build-id=sha1 -Wl,-z,max-page-size=4096 \
		-o "$2" textrel.c 2>/dev/null
}
build gcc "$out/textrel-amd64.elf"
build aarch64-linux-gnu-gcc "$out/textrel-arm64.elf"
x86_64-w64-mingw32-gcc -O2 -shared -nostdlib -e 0 -Wl,--image-base=0x140000000 -Wl,--dynamicbase \
	-Wl,--no-insert-timestamp -Wl,--build-id -o "$out/textrel-x64.dll" textrel_pe.c
