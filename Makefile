# hotpatch: build, test matrix, demo and benchmarks.
#
#   make test    install what is missing (Debian 12, as root), then: gofmt,
#                go vet, staticcheck, go test natively (linux/amd64), the
#                linux/arm64 leg under qemu-aarch64-static, the windows/amd64
#                leg under Wine, and a short run of every fuzz target.
#   make demo    the README's demo.
#   make bench   every benchmark, 10 runs, benchstat, written to BENCHMARKS.md.
#
# Each leg also has its own target (test-native, test-arm64, test-windows,
# fuzz). Under CI=true (set by .ci/run) a missing tool fails a test instead
# of skipping it, and test results are never taken from the go cache.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# The legs run in the order written, one after another.
.NOTPARALLEL:

export PATH := /usr/local/go/bin:$(PATH)
# $(shell) in make 4.3 does not see the PATH exported above: find go here.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck
BENCHSTAT := $(GOBIN)/benchstat
ROOT := $(CURDIR)

# Packages of the emulated legs. Today every package builds for both
# platforms, so both legs run everything; a package that cannot build for
# one (it should say why in a build constraint) is listed out here instead.
PKGS_ARM64 ?= ./...
PKGS_WINDOWS ?= ./...

# Extra flags for every go test (e.g. make test TESTFLAGS=-v).
TESTFLAGS ?=
FUZZTIME ?= 10s
BENCHPKGS ?= ./...
BENCHCOUNT ?= 10
BENCHTIME ?=
# CI judges a fresh run: no results replayed from the go cache (which lives
# outside the clone and survives between runs on the same machine).
ifeq ($(CI),true)
TESTFLAGS += -count=1
endif
# Emulated programs are slower; go test's default of 10m per package is
# tight under qemu-user.
EMUFLAGS := -timeout 30m

.PHONY: test deps fmt vet staticcheck test-native test-arm64 test-windows fuzz demo bench

test: deps fmt vet staticcheck test-native test-arm64 test-windows fuzz

deps:
	@scripts/install-deps.sh

fmt:
	@echo "==> gofmt"
	@files="$$(git ls-files -z '*.go' | xargs -0 -r gofmt -l)"; \
	if [[ -n "$$files" ]]; then echo "gofmt: these files are not formatted (run gofmt -w):"; echo "$$files"; exit 1; fi

# vet and staticcheck see only the files of one GOOS/GOARCH at a time: run
# them for every platform of the matrix, so windows- and arm64-only files are
# checked too.
PLATFORMS := linux/amd64 linux/arm64 windows/amd64

vet:
	@for p in $(PLATFORMS); do \
		echo "==> go vet ./... ($$p)"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(GO) vet ./...; \
	done

staticcheck: deps
	@for p in $(PLATFORMS); do \
		echo "==> staticcheck ./... ($$p)"; \
		GOOS=$${p%/*} GOARCH=$${p#*/} $(STATICCHECK) ./...; \
	done

test-native:
	@echo "==> linux/$$($(GO) env GOARCH) (native): go test ./..."
	$(GO) test $(TESTFLAGS) ./...

test-arm64: deps
	@echo "==> linux/arm64 under qemu-aarch64-static: $(PKGS_ARM64)"
	CGO_ENABLED=0 GOARCH=arm64 $(GO) test $(TESTFLAGS) $(EMUFLAGS) -exec qemu-aarch64-static $(PKGS_ARM64)

# The windows leg: Wine prefix and bcryptprimitives shim prepared once
# (winesetup), test binaries built with the overlay that lets os.RemoveAll
# (and so t.TempDir) work under Wine 8, run through scripts/wine-exec.
test-windows: deps
	@echo "==> windows/amd64 under Wine: $(PKGS_WINDOWS)"
	@vars="$$($(GO) run ./internal/testenv/cmd/winesetup)"; \
	eval "$$vars"; \
	export HOTPATCH_WINEPREFIX; \
	set -x; \
	CGO_ENABLED=0 GOOS=windows $(GO) test $(TESTFLAGS) $(EMUFLAGS) \
		$${HOTPATCH_WINE_OVERLAY:+-overlay "$$HOTPATCH_WINE_OVERLAY"} \
		-exec "$(ROOT)/scripts/wine-exec" $(PKGS_WINDOWS)

# Every fuzz target of every package, found anew each run.
fuzz:
	@echo "==> fuzz: every Fuzz target for $(FUZZTIME)"
	@scripts/fuzz.sh $(FUZZTIME)

demo: deps
	@scripts/demo.sh

# Raw results in build/bench/, the table (with machine, date and the
# baselines of the same run) in BENCHMARKS.md. A quick check of the plumbing:
# make bench BENCHCOUNT=1 BENCHTIME=100ms
bench:
	@scripts/install-deps.sh bench
	BENCHCOUNT=$(BENCHCOUNT) BENCHTIME=$(BENCHTIME) BENCHPKGS='$(BENCHPKGS)' scripts/bench.sh
