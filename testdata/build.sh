#!/usr/bin/env bash
# build.sh: rebuild every committed fixture binary under testdata/bin from the
# C sources in testdata/c, byte for byte.
#
# Usage: testdata/build.sh [outdir]     (default: testdata/bin)
#
# Needs: x86_64-w64-mingw32-gcc, clang + lld-link + llvm-dlltool + llvm-readobj (LLVM 14),
# gcc, aarch64-linux-gnu-gcc. internal/fixtures' TestBuildReproduces runs this
# into a temporary directory and compares the output with testdata/bin.
#
# Determinism: compilers run from testdata/c on relative paths (no absolute path
# reaches a binary), objects go to a scratch directory whose name is never
# recorded, PE timestamps are fixed (mingw: --no-insert-timestamp; lld: /timestamp),
# and build ids are hashes of the content (ELF: --build-id=sha1; mingw and lld:
# a CodeView RSDS record whose GUID is a hash of the image).
#
# Every v1 also gets a "rebuilt" twin from the same objects whose only
# differences are the header timestamp, checksum and debug id (RSDS GUID / ELF
# build-id): a null build for the diff (no function changed) and "a package made
# for another build" for patch verification.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-$here/bin}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

export LC_ALL=C TZ=UTC
unset SOURCE_DATE_EPOCH
cd "$here/c"

# Fixed values: the ARM64 PE's timestamp, and those of the rebuilt twins.
lld_epoch=1735689600                                  # 2025-01-01 00:00:00 UTC
rebuilt_epoch=1700000000                              # 2023-11-14 22:13:20 UTC
rebuilt_guid=0x72656275696c742d76312d6669787475       # "rebuilt-v1-fixtu"
rebuilt_elf_id=0x72656275696c742d76312d666978747572652121 # "rebuilt-v1-fixture!!" (20 bytes, as sha1)

# Shared by every gcc build. -fno-toplevel-reorder keeps functions in source
# order (otherwise gcc emits callees first and the v1/v2 layout, which decides
# what "only moves", would be up to the compiler); -fno-reorder-blocks-and-partition
# keeps each function in one piece (no separate foo.cold parts).
gcc_flags=(-O2 -fno-toplevel-reorder -fno-reorder-blocks-and-partition -Wall -Wextra)

# --- x86-64 PE, mingw-w64, normal CRT, console program -----------------------
mingw() { # mingw <version> <output> <extra link flags...>
	local v=$1 o=$2
	shift 2
	local d=$work/mingw-$v
	mkdir -p "$d"
	x86_64-w64-mingw32-gcc "${gcc_flags[@]}" -c os_hosted.c -o "$d/os_hosted.o"
	x86_64-w64-mingw32-gcc "${gcc_flags[@]}" -c loop.c -o "$d/loop.o"
	x86_64-w64-mingw32-gcc "${gcc_flags[@]}" -c stable.c -o "$d/stable.o"
	x86_64-w64-mingw32-gcc "${gcc_flags[@]}" -c "$v/funcs.c" -o "$d/funcs.o"
	# --strip-debug drops the CRT's DWARF but keeps the COFF symbol table.
	(cd "$d" && x86_64-w64-mingw32-gcc -o "$out/$o" os_hosted.o loop.o stable.o funcs.o \
		-Wl,--strip-debug "$@")
}
mingw v1 c-v1-amd64.exe -Wl,--no-insert-timestamp -Wl,--build-id=sha1
mingw v2 c-v2-amd64.exe -Wl,--no-insert-timestamp -Wl,--build-id=sha1
SOURCE_DATE_EPOCH=$rebuilt_epoch mingw v1 c-v1-rebuilt-amd64.exe \
	-Wl,--insert-timestamp -Wl,--build-id=$rebuilt_guid

# --- ARM64 PE, clang + lld-link, no CRT --------------------------------------
# /debug:dwarf writes the COFF symbol table (no DWARF: objects have none);
# /lldmingw only makes lld fill the CodeView RSDS record with a GUID hashed
# from the image (without it /debug:dwarf leaves the record zeroed, and
# /debug:full writes a PDB but no symbol table). An explicit /timestamp makes
# the link deterministic. Not /Brepro: it would too, but it adds a Repro debug
# entry that /timestamp removes, so the rebuilt twin (another /timestamp)
# would differ in layout, not only in identity; and /Brepro with /timestamp
# gives exactly the /timestamp output.
llvm-dlltool -m arm64 -d kernel32.def -l "$work/kernel32.lib"
clang_pe() { # clang_pe <version> <output> <extra link flags...>
	local v=$1 o=$2
	shift 2
	local d=$work/clang-$v
	mkdir -p "$d"
	local cflags=(--target=aarch64-pc-windows-msvc -O2 -Wall -Wextra)
	clang "${cflags[@]}" -c os_nocrt_win.c -o "$d/os_nocrt_win.o"
	clang "${cflags[@]}" -c loop.c -o "$d/loop.o"
	clang "${cflags[@]}" -c stable.c -o "$d/stable.o"
	clang "${cflags[@]}" -c "$v/funcs.c" -o "$d/funcs.o"
	cp "$work/kernel32.lib" "$d/kernel32.lib"
	(cd "$d" && clang --target=aarch64-pc-windows-msvc -nostdlib -fuse-ld=lld \
		-o "$out/$o" os_nocrt_win.o loop.o stable.o funcs.o kernel32.lib \
		-Wl,/entry:fixture_start,/subsystem:console,/debug:dwarf,/lldmingw "$@")
}
clang_pe v1 c-v1-arm64.exe -Wl,/timestamp:$lld_epoch
clang_pe v2 c-v2-arm64.exe -Wl,/timestamp:$lld_epoch
clang_pe v1 c-v1-rebuilt-arm64.exe -Wl,/timestamp:$rebuilt_epoch
# lld hashes the GUID from the image without its timestamps, so the twin got
# v1's GUID: give it its own, as a linker that makes a fresh GUID per link
# would. The GUID follows "RSDS" in the CodeView record.
rsds=$(llvm-readobj --coff-debug-directory "$out/c-v1-rebuilt-arm64.exe" |
	awk '/Type: CodeView/ {cv = 1} cv && /PointerToRawData:/ {print $2; exit}')
[[ -n $rsds ]] || { echo "build.sh: no CodeView record in c-v1-rebuilt-arm64.exe" >&2; exit 1; }
[[ $(dd if="$out/c-v1-rebuilt-arm64.exe" bs=1 skip=$((rsds)) count=4 status=none) == RSDS ]]
printf '%b' "$(sed 's/../\\x&/g' <<<"${rebuilt_guid#0x}")" |
	dd of="$out/c-v1-rebuilt-arm64.exe" bs=1 seek=$((rsds + 4)) conv=notrunc status=none

# --- x86-64 ELF, gcc (dynamic, PIE: the distribution default) -----------------
elf() { # elf <compiler> <tag> <version> <output> <extra flags...>
	local cc=$1 tag=$2 v=$3 o=$4
	shift 4
	local d=$work/$tag-$v
	mkdir -p "$d"
	$cc "${gcc_flags[@]}" -c os_hosted.c -o "$d/os_hosted.o"
	$cc "${gcc_flags[@]}" -c loop.c -o "$d/loop.o"
	$cc "${gcc_flags[@]}" -c stable.c -o "$d/stable.o"
	$cc "${gcc_flags[@]}" -c "$v/funcs.c" -o "$d/funcs.o"
	(cd "$d" && $cc -o "$out/$o" os_hosted.o loop.o stable.o funcs.o "$@")
}
elf gcc amd64 v1 c-v1-amd64.elf -Wl,--build-id=sha1
elf gcc amd64 v2 c-v2-amd64.elf -Wl,--build-id=sha1
elf gcc amd64 v1 c-v1-rebuilt-amd64.elf -Wl,--build-id=$rebuilt_elf_id

# --- ARM64 ELF, static glibc (runs under qemu-aarch64-static) -----------------
elf aarch64-linux-gnu-gcc arm64 v1 c-v1-arm64.elf -static -Wl,--build-id=sha1
elf aarch64-linux-gnu-gcc arm64 v2 c-v2-arm64.elf -static -Wl,--build-id=sha1
elf aarch64-linux-gnu-gcc arm64 v1 c-v1-rebuilt-arm64.elf -static -Wl,--build-id=$rebuilt_elf_id

ls -l "$out"
