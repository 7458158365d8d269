// Package testenv is the one place tests learn which tools this machine has
// (mingw, clang, lld, Wine, QEMU, LLVM oracles), where the module's fixtures
// are, and how to run a foreign binary (PE under Wine, ARM64 ELF under QEMU).
//
// A test that needs a missing tool skips with a message naming it, except
// when CI=true, where a missing tool fails the test: CI installs everything.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// CI reports whether the tests run under CI (CI=true), where nothing may skip
// for a missing tool.
func CI() bool { return os.Getenv("CI") == "true" }

// Emulated reports whether this test binary itself runs under Wine or QEMU
// (GOOS=windows or GOARCH=arm64 on this amd64 Linux host). Host tools such as
// llvm-objdump are then out of reach, and the legs that use them run natively.
func Emulated() bool {
	return runtime.GOOS != "linux" || runtime.GOARCH != "amd64" || os.Getenv("HOTPATCH_EMULATED") == "1"
}

// LookTool returns the path of the first of names found on PATH.
func LookTool(names ...string) (string, bool) {
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p, true
		}
	}
	return "", false
}

// NeedTool returns the path of the first of names on PATH. When none is found
// it skips the test naming the tool, or fails it under CI=true.
func NeedTool(t testing.TB, names ...string) string {
	t.Helper()
	if p, ok := LookTool(names...); ok {
		return p
	}
	Missing(t, names[0], "not on PATH (make test installs it)")
	return ""
}

// NeedHostTool is NeedTool for host tools (oracles, compilers) that a test
// binary running under Wine or QEMU cannot start: there it always skips,
// because the same test runs in the native leg of the matrix.
func NeedHostTool(t testing.TB, names ...string) string {
	t.Helper()
	if Emulated() {
		t.Skipf("needs host tool %s: this leg runs under emulation (%s/%s); the native leg runs it", names[0], runtime.GOOS, runtime.GOARCH)
	}
	return NeedTool(t, names...)
}

// Missing skips (or under CI=true fails) a test because tool is unavailable.
func Missing(t testing.TB, tool, why string) {
	t.Helper()
	if CI() {
		t.Fatalf("needs %s: %s (CI=true: a missing tool is a failure)", tool, why)
	}
	t.Skipf("needs %s: %s", tool, why)
}

var (
	rootOnce sync.Once
	rootDir  string
)

// Root returns the module's root directory (the one holding go.mod).
func Root(t testing.TB) string {
	t.Helper()
	rootOnce.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				rootDir = dir
				return
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				return
			}
			dir = parent
		}
	})
	if rootDir == "" {
		t.Fatal("testenv: cannot find go.mod above the working directory")
	}
	return rootDir
}

// Testdata returns the path of a file under the module's testdata directory.
func Testdata(t testing.TB, elem ...string) string {
	t.Helper()
	return filepath.Join(append([]string{Root(t), "testdata"}, elem...)...)
}
