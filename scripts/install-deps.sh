#!/usr/bin/env bash
# install-deps.sh: install what `make test` needs on Debian 12, only what is
# missing, so a second run costs a few `command -v` look-ups.
#
#   scripts/install-deps.sh          # the test matrix
#   scripts/install-deps.sh bench    # also benchstat, for make bench
#
# Debian packages (as root; apt-get update runs once, only when something is
# missing): mingw-w64 (x64 PE fixtures, the Wine shim), clang + lld (ARM64 PE
# fixtures), llvm (llvm-objdump/llvm-readobj oracles), qemu-user-static
# (linux/arm64 leg), wine + wine64 (windows/amd64 leg; `wine` is the command,
# the warning about missing wine32 is harmless), gcc-aarch64-linux-gnu and
# binutils-aarch64-linux-gnu (ARM64 ELF fixtures).
# Go tools (into $(go env GOPATH)/bin): staticcheck, pinned to a release that
# understands this module's Go version; benchstat for `make bench`.
set -euo pipefail

# staticcheck 0.8.x (2026.2) is the first to type-check Go 1.26 code; pinned so a
# new release cannot break the build unannounced.
STATICCHECK_VERSION=v0.8.2
BENCHSTAT_VERSION=v0.0.0-20260908200009-22c9c6c9d4da

want_bench=false
for arg in "$@"; do
	case "$arg" in
	bench) want_bench=true ;;
	*) echo "install-deps.sh: unknown argument $arg" >&2; exit 2 ;;
	esac
done

# command:package pairs; a package is wanted when its command is missing.
need=()
check() {
	local cmd=$1 pkg=$2
	if ! command -v "$cmd" >/dev/null 2>&1; then
		need+=("$pkg")
	fi
}
check x86_64-w64-mingw32-gcc mingw-w64
check clang clang
check ld.lld lld
check lld-link lld
check llvm-objdump llvm
check llvm-readobj llvm
check qemu-aarch64-static qemu-user-static
check wine wine
check wine wine64
check aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
check aarch64-linux-gnu-objdump binutils-aarch64-linux-gnu

if ((${#need[@]})); then
	# De-duplicate, keep order.
	mapfile -t need < <(printf '%s\n' "${need[@]}" | awk '!seen[$0]++')
	echo "install-deps: installing ${need[*]}"
	sudo=()
	if [[ $(id -u) != 0 ]]; then
		if command -v sudo >/dev/null 2>&1; then
			sudo=(sudo)
		else
			echo "install-deps: missing ${need[*]} and not root (no sudo): install them or run as root" >&2
			exit 1
		fi
	fi
	export DEBIAN_FRONTEND=noninteractive
	"${sudo[@]}" apt-get update -q
	"${sudo[@]}" apt-get install -y -q "${need[@]}" </dev/null
fi

command -v go >/dev/null 2>&1 || { echo "install-deps: go is not on PATH (Go 1.26 expected at /usr/local/go)" >&2; exit 1; }
gobin="$(go env GOPATH)/bin"
# The module's go.mod asks for a toolchain; tools are built with the local one.
export GOTOOLCHAIN=local GOFLAGS=

if ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
	echo "install-deps: installing staticcheck $STATICCHECK_VERSION"
	(cd / && go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION")
fi

if $want_bench && [[ ! -x "$gobin/benchstat" ]]; then
	echo "install-deps: installing benchstat"
	(cd / && go install "golang.org/x/perf/cmd/benchstat@$BENCHSTAT_VERSION")
fi
