#!/usr/bin/env bash
# demo.sh: what `make demo` shows today. The live-patch demo (a running v1
# program switched to v2 without a restart, then reverted) is not built yet;
# until it is, this shows the steps before it for real, with the operator's
# tool (examples/hotpatch) on the committed fixture programs: what the image
# package finds in a build (identity, sections, functions), which functions
# the diff says changed between v1 and v2, and the signed package of them.
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

echo "hotpatch demo (the live-patch demo is under construction; this is the tool's view of the fixtures)"
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
