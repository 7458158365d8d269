#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]: run every fuzz target of the module for FUZZTIME
# (default 10s) each. Targets are found anew on every run: packages whose
# _test.go files declare `func Fuzz...`, confirmed by `go test -list`, so a
# new target is picked up without touching this script or the Makefile.
# Inputs that make a target fail are written by go test to the package's
# testdata/fuzz/<Target>/ (commit them: they become regression cases).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${1:-10s}
go=${GO:-go}

count=0
while IFS= read -r line; do
	pkg=${line%% *}
	dir=${line#* }
	# Cheap filter first: only packages with a Fuzz function in a test file.
	grep -qs '^func Fuzz' "$dir"/*_test.go || continue
	list=$("$go" test -list '^Fuzz' "$pkg")
	mapfile -t targets < <(grep '^Fuzz' <<<"$list" || true)
	for target in "${targets[@]}"; do
		echo "--- fuzz $pkg $target ($fuzztime)"
		"$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg"
		count=$((count + 1))
	done
done < <("$go" list -f '{{.ImportPath}} {{.Dir}}' ./...)
# The closing lines stay go test's own when targets ran.
if ((count == 0)); then
	echo "fuzz: no fuzz targets in the module yet"
fi
