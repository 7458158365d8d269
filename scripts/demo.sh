#!/usr/bin/env bash
# demo.sh: what `make demo` shows today. The live-patch demo (a running v1
# program switched to v2 without a restart, then reverted) is not built yet;
# until it is, this shows the first step of that pipeline for real: what the
# image package finds in the committed v1/v2 fixture programs (identity,
# sections, functions and where each function's extent came from).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="/usr/local/go/bin:$PATH"

echo "hotpatch demo (placeholder: image inspection; the live-patch demo is under construction)"
echo
for f in testdata/bin/c-v1-amd64.exe testdata/bin/c-v1-arm64.exe testdata/bin/c-v2-amd64.exe; do
	echo "\$ go run ./examples/inspect -n 10 $f"
	go run ./examples/inspect -n 10 "$f"
	echo
done
