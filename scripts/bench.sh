#!/usr/bin/env bash
# bench.sh: every benchmark of the module, measured on this machine in one
# run, summarised by benchstat and written to BENCHMARKS.md (`make bench`).
#
#   scripts/bench.sh                               # the real run: 10 runs each
#   BENCHCOUNT=1 BENCHTIME=100ms scripts/bench.sh  # a quick check that it all works
#
#   BENCHREUSE=1 scripts/bench.sh                  # rewrite BENCHMARKS.md from the last run
#
# Environment: BENCHCOUNT (10), BENCHTIME (go's default, 1s), BENCHPKGS
# (./...), BENCHWINPKGS (the packages whose benchmarks only exist for
# windows, run under Wine when it is installed; PKG:REGEXP runs only the
# benchmarks of PKG matching REGEXP there, so a package's portable
# benchmarks, already measured natively, do not run again under Wine),
# OUT (BENCHMARKS.md),
# BENCHREUSE (1: no new measurement, only the tables from build/bench/).
# Raw results stay in build/bench/ (native.txt, wine.txt, *.stat, and
# meta.sh: the date, machine load, commit and flags of that run).
#
# Baselines are measured in the same run as what they are compared with:
# sub-benchmarks named debug-pe, debug/elf, direct or gomonkey are the
# baseline of their siblings, and the pairs in PAIRS below name the rest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export PATH="/usr/local/go/bin:$PATH"

count=${BENCHCOUNT:-10}
benchtime=${BENCHTIME:-}
pkgs=${BENCHPKGS:-./...}
winpkgs=${BENCHWINPKGS:-./internal/proc/windows ./examples/selfpatch ./examples/livepatch ./patch:Windows\$}
out=${OUT:-BENCHMARKS.md}
raw=build/bench
gobin="$(go env GOPATH)/bin"
benchstat=$gobin/benchstat
# SUBJECT=BASELINE pairs that are not siblings of one benchmark.
PAIRS=(BenchmarkDiffLarge=BenchmarkDecodeFloor)

mkdir -p "$raw"
if [[ "${BENCHREUSE:-}" != 1 ]]; then
	rm -f "$raw"/*.txt "$raw"/*.stat "$raw"/meta.sh

	flags=(-run '^$' -bench . -count="$count" -benchmem -timeout 60m)
	[[ -n "$benchtime" ]] && flags+=(-benchtime="$benchtime")
	commit=$(git rev-parse --short HEAD)
	git diff --quiet HEAD -- 2>/dev/null || commit="$commit (with uncommitted changes)"
	{
		printf 'started=%q\n' "$(date -u '+%Y-%m-%d %H:%M UTC')"
		printf 'load=%q\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
		printf 'commit=%q\n' "$commit"
		printf 'count=%q\nbenchtime=%q\n' "$count" "$benchtime"
	} >"$raw/meta.sh"

	echo "==> linux/$(go env GOARCH): go test ${flags[*]} $pkgs > $raw/native.txt" >&2
	go test "${flags[@]}" $pkgs | tee "$raw/native.txt" >&2
	# gomonkey, the in-process baseline, lives in a module of its own so the
	# library never depends on it; its numbers join the native table.
	echo "==> linux/$(go env GOARCH): bench/gomonkey (baseline module) >> $raw/native.txt" >&2
	(cd bench/gomonkey && go test "${flags[@]}" ./...) | tee -a "$raw/native.txt" >&2

	if command -v wine64 >/dev/null 2>&1 || command -v wine >/dev/null 2>&1; then
		echo "==> windows/amd64 under Wine: $winpkgs > $raw/wine.txt" >&2
		# An assignment stops the script when winesetup fails (eval of a failed
		# command substitution would not).
		winevars=$(go run ./internal/testenv/cmd/winesetup)
		eval "$winevars"
		export HOTPATCH_WINEPREFIX
		# Packages without a pattern run in one go test (-bench .), each
		# PKG:REGEXP in one of its own (-bench REGEXP, given last, wins).
		plain=() patterned=()
		for p in $winpkgs; do
			if [[ $p == *:* ]]; then patterned+=("$p"); else plain+=("$p"); fi
		done
		winrun() {
			CGO_ENABLED=0 GOOS=windows GOARCH=amd64 go test "${flags[@]}" \
				${HOTPATCH_WINE_OVERLAY:+-overlay "$HOTPATCH_WINE_OVERLAY"} \
				-exec "$root/scripts/wine-exec" "$@" | tee -a "$raw/wine.txt" >&2
		}
		: >"$raw/wine.txt"
		if ((${#plain[@]})); then winrun "${plain[@]}"; fi
		for p in ${patterned[@]+"${patterned[@]}"}; do winrun -bench "${p#*:}" "${p%%:*}"; done
	fi
fi
[[ -f "$raw/meta.sh" && -f "$raw/native.txt" ]] || { echo "bench.sh: no earlier run in $raw" >&2; exit 1; }
# shellcheck source=/dev/null
source "$raw/meta.sh"

labels=("linux/$(go env GOARCH)=$raw/native.txt")
winnote="Wine is not installed here: the Windows back-end's benchmarks were not run."
if [[ -f "$raw/wine.txt" ]]; then
	labels+=("windows/amd64 (Wine)=$raw/wine.txt")
	winnote="The Windows back-end runs under Wine 8 on the same machine: its numbers are Wine's, not Windows'."
fi

for f in "$raw"/*.txt; do
	if [[ -x "$benchstat" ]]; then
		"$benchstat" "$f" >"${f%.txt}.stat"
	else
		echo "benchstat missing ($benchstat): run scripts/install-deps.sh bench" >"${f%.txt}.stat"
	fi
done

pairflags=()
for p in "${PAIRS[@]}"; do pairflags+=(-baseline "$p"); done
table=$(go run ./scripts/benchtable "${pairflags[@]}" "${labels[@]}")

# Benchmarks that skipped (a tool missing) say so in the raw output.
skipped=$(grep -h -A1 -- '--- SKIP' "$raw"/*.txt | grep -v -- '^--$' | sed 's/^[[:space:]]*//' | paste -sd' ' - || true)

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)
cores=$(nproc)
mem=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
quick=""
if [[ "$count" -lt 10 || -n "$benchtime" ]]; then
	quick="**A quick run (-count=$count${benchtime:+ -benchtime=$benchtime}) that checks the plumbing: not numbers to cite. \`make bench\` measures 10 runs of each.**"
fi

{
	cat <<EOF
# Benchmarks

Every benchmark in the module, measured in one run by \`make bench\`
(\`scripts/bench.sh\`), with the baselines it is compared with measured in the
same run. Do not edit: run \`make bench\` again.

$quick

| | |
| --- | --- |
| date | $started |
| machine | $cpu, $cores cores, $mem memory, $(uname -sr) |
| load average at start | $load |
| go | $(go version | cut -d' ' -f3-) |
| commit | $commit |
| runs | -count=$count${benchtime:+ -benchtime=$benchtime} -benchmem |

time/op is the median over the runs, ± the largest distance of one run from
it. The ratio is this benchmark's time/op over its baseline's: 2.00x means
twice as slow as the baseline.

$table

## What each comparison means

- \`image\` \`BenchmarkOpenPE\`: loading a Go-built windows/amd64 PE of about
  15 MB (cmd/go) into the full model (headers, sections, symbols, imports,
  relocations, .pdata, functions completed by the call scan, code hash),
  against Go's \`debug/pe\` doing the comparable part (headers, section bytes,
  COFF symbols, imports), whose function list is its function-typed COFF
  symbols. \`BenchmarkParseELF\`: the same for a Go linux/amd64 program against
  \`debug/elf\` reading its symbol table.
- \`patch/diff\` \`BenchmarkDiffLarge\`: diffing two cmd/go windows/amd64 builds;
  the baseline \`BenchmarkDecodeFloor\` only decodes every function of both images
  once with the same decoders: the floor any instruction-level diff pays.
- \`trampoline\`: relocations per second of a realistic 64-byte prologue, near and
  far (no baseline: nothing else relocates both architectures in Go).
- \`patch/pkg\`: encoding, signing, loading and linking a package, and
  building one: \`BenchmarkBuildFixture\` from the C fixture pair,
  \`BenchmarkBuildLarge\` from a generated C pair of 20,000 functions (x64 PE,
  1.5 MB of code, 200 changed; internal/fixtures/largec, compiled once with
  mingw and cached in build/largec): \`build\` is Build alone, \`with-diff\`
  the diff of both images and the build (no baseline).
- \`internal/proc/ptrace\` (Linux) and \`internal/proc/windows\`: the back-ends'
  costs that make up a commit's pause: stop and resume every thread of a child
  with 1 and 8 threads, a 16-byte code write, an injected allocation.
- \`examples/selfpatch\` \`BenchmarkCall\`: the per-call cost of a redirection
  made by \`patch.Self\` (the call goes through the entry jump) against calling
  the replacement directly. \`BenchmarkApplyRollback\`: one in-process
  transaction of one function, committed and rolled back (on Linux nothing
  stops; on Windows every other thread is suspended for the commit).
- \`examples/livepatch\` \`BenchmarkApplyRevert\`: applying the fixture pair's
  package (5 functions) to a running C program and reverting it, end to end;
  pause-us is how long the program's threads were stopped for the apply.
- \`patch\` \`BenchmarkCommit*\` (\`funcs=N/threads=T\`): one transaction
  redirecting 1, 100 or 1000 functions, committed and rolled back (time/op),
  while T threads of the target call a function in a loop; pause-µs/commit is
  how long the target's threads were stopped for the commit. Fake: the
  in-memory back-end (the transaction's own cost); Ptrace: a C child on
  Linux; Windows: a C child (testdata/manychild.exe) through the Windows
  back-end; SelfWindows (patch.Self, which suspends the process's other
  threads) runs under Wine only with HOTPATCH_WINE_SELF=1, as Wine hangs
  intermittently when a process suspends its own Go threads.
- \`bench/gomonkey\` (a module of its own, so the library never depends on
  gomonkey): in-process apply+rollback of one Go function and the call through
  the redirection, hotpatch against gomonkey on the same function.
- linux/arm64 is not benchmarked: under qemu-user its times measure the
  emulator. $winnote

EOF
	if [[ -n "$skipped" ]]; then
		printf 'Skipped in this run: %s\n\n' "$skipped"
	fi
	echo "## benchstat"
	for f in "$raw"/*.stat; do
		printf '\n%s:\n\n```\n' "$(basename "${f%.stat}")"
		cat "$f"
		printf '```\n'
	done
} >"$out"
echo "==> wrote $out (raw results in $raw/)" >&2
