#!/usr/bin/env bash
# demo.sh: what `make demo` shows. First the operator's tool
# (examples/hotpatch) on the committed fixture programs: what the image
# package finds in a build, which functions changed between v1 and v2, and
# the signed package of them. Then the live patch (examples/livepatch): a
# running v1 program is switched to v2 without a restart and reverted, on
# Linux through ptrace, and the same on Windows under Wine when Wine is
# installed (make test installs it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

mkdir -p build
go build -o build/hotpatch ./examples/hotpatch

demo() {
	echo "\$ hotpatch $*"
	build/hotpatch "$@"
	echo
}

echo "hotpatch demo: the operator tool on two builds of a small program, then a live patch"
echo
demo inspect testdata/bin/c-v1-amd64.exe
demo inspect testdata/bin/c-v1-arm64.exe
demo diff -refs testdata/bin/c-v1-amd64.exe testdata/bin/c-v2-amd64.exe
demo diff testdata/bin/c-v1-arm64.exe testdata/bin/c-v2-arm64.exe

# A signed package of the x86-64 pair, read back the way an agent does:
# signature first. Keys and package go to build/demo (not committed).
rm -rf build/demo
mkdir -p build/demo
demo keygen build/demo/ops
demo build -key build/demo/ops.key -o build/demo/fix.hpk -desc v1-to-v2 testdata/bin/c-v1-amd64.exe testdata/bin/c-v2-amd64.exe
demo show -key build/demo/ops.pub build/demo/fix.hpk

echo "== live patch, linux/amd64 (ptrace): go run ./examples/livepatch"
echo "   Watch: greet; slot, which v1 gets wrong for n%12 in 8..11 (57005, the 0xdead filler) and"
echo "   v2 returns -1; hits, which only v2 counts; and total, n and pid, which go on across both"
echo "   switches: the same process keeps its state."
go build -o build/livepatch ./examples/livepatch
build/livepatch
echo

if command -v wine64 >/dev/null 2>&1 || command -v wine >/dev/null 2>&1; then
	echo "== live patch, windows/amd64 under Wine: the same program built for Windows, on the mingw build"
	# An assignment stops the script when winesetup fails (eval of a failed
	# command substitution would not).
	winevars=$(go run ./internal/testenv/cmd/winesetup)
	eval "$winevars"
	export HOTPATCH_WINEPREFIX
	GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -o build/livepatch.exe ./examples/livepatch
	scripts/wine-exec build/livepatch.exe
else
	echo "(Wine is not installed: the Windows run is skipped; make test installs it)"
fi
