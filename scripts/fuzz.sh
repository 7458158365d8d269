#!/usr/bin/env bash
# fuzz.sh [FUZZTIME]: run every fuzz target of the module for FUZZTIME
# (default 10s) each. Targets are found anew on every run: packages whose
# _test.go files declare `func Fuzz...`, confirmed by `go test -list`, so a
# new target is picked up without touching this script or the Makefile.
# Inputs that make a target fail are written by go test to the package's
# testdata/fuzz/<Target>/ (commit them: they become regression cases).
#
# Go 1.26's fuzz coordinator can fail a target at the end of a -fuzztime
# window with a bare "context deadline exceeded" when a starved worker
# misses the shutdown deadline (go.dev/issue/75804, fixed in Go 1.27): no
# input failed and none is written. Such a run is accepted only when the
# log shows nothing else wrong and a deterministic replay of the target's
# corpus then passes; anything else still fails.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fuzztime=${1:-10s}
go=${GO:-go}

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# shutdown_race LOG TARGET: the run failed only by the coordinator's
# shutdown race: the FAIL line of TARGET followed by nothing but "context
# deadline exceeded", and no failing input, panic or test failure.
shutdown_race() {
	local log=$1 target=$2
	grep -q 'Failing input written\|^panic: \|_test\.go:[0-9]*:' "$log" && return 1
	[[ $(grep -c -- '^--- FAIL' "$log") == 1 ]] || return 1
	grep -A1 -- "^--- FAIL: $target " "$log" | tail -n 1 | grep -qx '[[:space:]]*context deadline exceeded'
}

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
		if ! "$go" test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" 2>&1 | tee "$log"; then
			if ! shutdown_race "$log" "$target"; then
				exit 1
			fi
			echo "fuzz: $target: Go's coordinator missed its shutdown deadline (go.dev/issue/75804), no failing input; replaying the corpus"
			"$go" test -run "^${target}\$" -count=1 "$pkg"
		fi
		count=$((count + 1))
	done
done < <("$go" list -f '{{.ImportPath}} {{.Dir}}' ./...)
# The closing lines stay go test's own when targets ran.
if ((count == 0)); then
	echo "fuzz: no fuzz targets in the module yet"
fi
