package testenv

import (
	"bytes"
	"context"
	"debug/elf"
	"debug/pe"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeTB records whether a helper skipped or failed the test instead of
// doing it, so the CI=true / CI unset behaviour can be observed. Like the
// real thing, Skip and Fatal end the calling goroutine (runFake runs the
// helper in its own).
type fakeTB struct {
	testing.TB // the real test: Helper, Name, TempDir, Cleanup, Setenv
	mu         sync.Mutex
	skipped    bool
	failed     bool
	msg        string
}

func (f *fakeTB) end(skip bool, msg string) {
	f.mu.Lock()
	f.skipped, f.failed = skip, !skip
	f.msg = msg
	f.mu.Unlock()
	runtime.Goexit()
}

func (f *fakeTB) Skip(args ...any)                  { f.end(true, fmt.Sprint(args...)) }
func (f *fakeTB) Skipf(format string, args ...any)  { f.end(true, fmt.Sprintf(format, args...)) }
func (f *fakeTB) SkipNow()                          { f.end(true, "") }
func (f *fakeTB) Fatal(args ...any)                 { f.end(false, fmt.Sprint(args...)) }
func (f *fakeTB) Fatalf(format string, args ...any) { f.end(false, fmt.Sprintf(format, args...)) }
func (f *fakeTB) FailNow()                          { f.end(false, "") }
func (f *fakeTB) Error(args ...any)                 { f.mu.Lock(); f.failed = true; f.mu.Unlock() }
func (f *fakeTB) Errorf(format string, args ...any) { f.mu.Lock(); f.failed = true; f.mu.Unlock() }
func (f *fakeTB) Fail()                             { f.mu.Lock(); f.failed = true; f.mu.Unlock() }

// runFake runs fn against a fakeTB in its own goroutine and returns what
// happened to it.
func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
	}()
	<-done
	return f
}

func TestMissingToolSkipsOrFailsByCI(t *testing.T) {
	const tool = "hotpatch-no-such-tool-4711"
	// A tool that surely exists, on every leg (Wine has its own idea of
	// PATH): an executable in a directory of our own.
	const present = "hotpatch-present-tool"
	bin := t.TempDir()
	presentPath := filepath.Join(bin, present)
	if runtime.GOOS == "windows" {
		presentPath += ".exe"
	}
	require.NoError(t, os.WriteFile(presentPath, []byte("#!/bin/sh\n"), 0o755))
	t.Setenv("PATH", bin)
	tests := []struct {
		name     string
		ci       string
		call     func(tb testing.TB)
		wantSkip bool
		wantFail bool
	}{
		{"NeedTool without CI skips", "", func(tb testing.TB) { NeedTool(tb, tool) }, true, false},
		{"NeedTool with CI=false skips", "false", func(tb testing.TB) { NeedTool(tb, tool) }, true, false},
		{"NeedTool with CI=true fails", "true", func(tb testing.TB) { NeedTool(tb, tool) }, false, true},
		{"Missing without CI skips", "", func(tb testing.TB) { Missing(tb, tool, "why") }, true, false},
		{"Missing with CI=true fails", "true", func(tb testing.TB) { Missing(tb, tool, "why") }, false, true},
		{"NeedTool finds a present tool", "true", func(tb testing.TB) {
			if p := NeedTool(tb, tool, present); p != presentPath {
				tb.Fatalf("NeedTool returned %q, want %q", p, presentPath)
			}
		}, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			f := runFake(t, tc.call)
			require.Equal(t, tc.wantSkip, f.skipped, "skipped (msg %q)", f.msg)
			require.Equal(t, tc.wantFail, f.failed, "failed (msg %q)", f.msg)
			if tc.wantSkip || tc.wantFail {
				require.Contains(t, f.msg, tool, "the message must name the tool")
			}
		})
	}
}

func TestToolMissingErrorBecomesMissing(t *testing.T) {
	// Wine(t) turns a ToolMissingError from PrepareWine into Missing: with
	// an empty PATH wine cannot be found, so it must skip without CI and
	// fail with it, naming wine both times.
	if runtime.GOOS == "windows" {
		t.Skip("Wine(t) is a no-op in a windows test binary")
	}
	for _, ci := range []string{"", "true"} {
		t.Run("CI="+ci, func(t *testing.T) {
			t.Setenv("CI", ci)
			t.Setenv("PATH", t.TempDir())
			wineMu.Lock()
			saved := wineEnv
			wineEnv = nil
			wineMu.Unlock()
			t.Cleanup(func() { wineMu.Lock(); wineEnv = saved; wineMu.Unlock() })
			f := runFake(t, func(tb testing.TB) { Wine(tb) })
			require.Equal(t, ci == "true", f.failed, f.msg)
			require.Equal(t, ci != "true", f.skipped, f.msg)
			require.Contains(t, f.msg, "wine")
		})
	}
	var err error = &ToolMissingError{Tool: "wine", Why: "x"}
	var tm *ToolMissingError
	require.True(t, errors.As(fmt.Errorf("wrapped: %w", err), &tm))
	require.Equal(t, "wine", tm.Tool)
}

func TestDetectBinaryRejectsWhatIsNotAProgram(t *testing.T) {
	dir := t.TempDir()
	mz := make([]byte, 128)
	copy(mz, "MZ")
	mz[0x3c] = 0x40
	copy(mz[0x40:], "PE\x00\x00\x4c\x01") // i386: not ours
	elf32 := make([]byte, 64)
	copy(elf32, "\x7fELF\x01\x01") // 32-bit
	elfBE := make([]byte, 64)
	copy(elfBE, "\x7fELF\x02\x02") // big-endian
	elfRV := make([]byte, 64)
	copy(elfRV, "\x7fELF\x02\x01")
	elfRV[18] = 243 // RISC-V
	badOff := make([]byte, 64)
	copy(badOff, "MZ")
	badOff[0x3c], badOff[0x3f] = 0xff, 0x7f // e_lfanew far beyond the end
	for name, data := range map[string][]byte{
		"empty":     nil,
		"short":     []byte("MZ"),
		"text":      bytes.Repeat([]byte("#!/bin/sh\n"), 10),
		"i386 PE":   mz,
		"ELF32":     elf32,
		"ELF BE":    elfBE,
		"RISC-V":    elfRV,
		"PE offset": badOff,
	} {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			require.NoError(t, os.WriteFile(p, data, 0o644))
			_, err := DetectBinary(p)
			require.ErrorIs(t, err, ErrUnknownBinary)
		})
	}
	_, err := DetectBinary(filepath.Join(dir, "does-not-exist"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

// platforms are those the test matrix builds and runs.
var platforms = []Platform{
	{"linux", "amd64"},
	{"linux", "arm64"},
	{"windows", "amd64"},
	{"windows", "arm64"},
}

func TestGoBuildAndDetectBinaryAgreeWithDebugPackages(t *testing.T) {
	for _, p := range platforms {
		t.Run(p.String(), func(t *testing.T) {
			bin := GoBuild(t, "internal/testenv/testdata/hello", p.GOOS, p.GOARCH)
			got, err := DetectBinary(bin)
			require.NoError(t, err)
			require.Equal(t, p, got)
			// Oracle: the standard library's own parsers.
			switch p.GOOS {
			case "windows":
				f, err := pe.Open(bin)
				require.NoError(t, err)
				defer f.Close()
				want := map[string]uint16{"amd64": pe.IMAGE_FILE_MACHINE_AMD64, "arm64": pe.IMAGE_FILE_MACHINE_ARM64}[p.GOARCH]
				require.Equal(t, want, f.Machine)
				require.True(t, strings.HasSuffix(bin, ".exe"))
			case "linux":
				f, err := elf.Open(bin)
				require.NoError(t, err)
				defer f.Close()
				want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[p.GOARCH]
				require.Equal(t, want, f.Machine)
			}
		})
	}
}

func TestGoBuildIsCachedByInputsAndDeterministic(t *testing.T) {
	const pkg = "internal/testenv/testdata/hello"
	resetMemo := func() {
		goBuildMu.Lock()
		goBuildMemo = map[string]string{}
		goBuildMu.Unlock()
	}
	// Later tests must not get paths from the temporary cache used below.
	t.Cleanup(resetMemo)
	a := GoBuild(t, pkg, "linux", "amd64")
	st, err := os.Stat(a)
	require.NoError(t, err)

	// Same inputs: same file, not rebuilt (also across the in-process memo).
	resetMemo()
	b := GoBuild(t, pkg, "linux", "amd64")
	require.Equal(t, a, b)
	st2, err := os.Stat(b)
	require.NoError(t, err)
	require.Equal(t, st.ModTime(), st2.ModTime(), "a cached build must not be rebuilt")

	// Different inputs: another file, and the change really is in it.
	c := GoBuild(t, pkg, "linux", "amd64", "-ldflags=-X main.msg=testenv-marker-4f1c")
	require.NotEqual(t, a, c)
	ca, err := os.ReadFile(a)
	require.NoError(t, err)
	cc, err := os.ReadFile(c)
	require.NoError(t, err)
	require.False(t, bytes.Contains(ca, []byte("testenv-marker-4f1c")))
	require.True(t, bytes.Contains(cc, []byte("testenv-marker-4f1c")))

	// Deterministic: a build in a fresh cache is byte-identical.
	t.Setenv("HOTPATCH_CACHE", t.TempDir())
	resetMemo()
	d := GoBuild(t, pkg, "linux", "amd64")
	require.NotEqual(t, a, d)
	cd, err := os.ReadFile(d)
	require.NoError(t, err)
	require.True(t, bytes.Equal(ca, cd), "same inputs must give the same bytes")
}

func TestGoBuildKeyFollowsImportedSources(t *testing.T) {
	// A fixture that imports a module package must be rebuilt when that
	// package changes: the key hashes every non-standard dependency.
	if !HostExec() {
		t.Skip("needs the go tool; the native leg runs it")
	}
	goTool := NeedTool(t, "go")
	dir := t.TempDir()
	pkg := filepath.Join(dir, "dep")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	write := func(body string) {
		require.NoError(t, os.WriteFile(filepath.Join(pkg, "dep.go"), []byte(body), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.test/m\n\ngo 1.21\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nimport \"example.test/m/dep\"\n\nfunc main() { println(dep.X) }\n"), 0o644))
	write("package dep\n\nconst X = 1\n")
	env := goBuildEnv("linux", "amd64")
	k1, err := goBuildKey(goTool, dir, dir, "linux", "amd64", env, nil)
	require.NoError(t, err)
	k1b, err := goBuildKey(goTool, dir, dir, "linux", "amd64", env, nil)
	require.NoError(t, err)
	require.Equal(t, k1, k1b)
	write("package dep\n\nconst X = 2\n")
	k2, err := goBuildKey(goTool, dir, dir, "linux", "amd64", env, nil)
	require.NoError(t, err)
	require.NotEqual(t, k1, k2, "a change in an imported package must change the key")
	k3, err := goBuildKey(goTool, dir, dir, "linux", "arm64", goBuildEnv("linux", "arm64"), nil)
	require.NoError(t, err)
	require.NotEqual(t, k2, k3)
}

func TestCommandRunsEveryPlatformOfTheMatrix(t *testing.T) {
	for _, p := range platforms[:3] {
		t.Run(p.String(), func(t *testing.T) {
			bin := GoBuild(t, "internal/testenv/testdata/hello", p.GOOS, p.GOARCH)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			t.Setenv("HELLO_ENV", "passed through")

			cmd := Command(ctx, t, bin, "one", "two words")
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", out)
			require.Contains(t, string(out), fmt.Sprintf("hello from %s args=[\"one\" \"two words\"] env=\"passed through\"", p))

			// The exit status comes back through Wine and QEMU.
			cmd = Command(ctx, t, bin, "exit=7")
			out, err = cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			require.Equal(t, 7, ee.ExitCode())
		})
	}
}

func TestCommandRefusesWhatCannotRunHere(t *testing.T) {
	// No emulator for Windows on ARM64 is part of the matrix: asking for one
	// is a test bug and must fail loudly, not skip quietly.
	if Emulated() {
		t.Skip("the native leg runs it")
	}
	bin := GoBuild(t, "internal/testenv/testdata/hello", "windows", "arm64")
	t.Setenv("CI", "")
	f := runFake(t, func(tb testing.TB) { Command(context.Background(), tb, bin) })
	require.True(t, f.failed, f.msg)
	require.Contains(t, f.msg, "windows/arm64")

	f = runFake(t, func(tb testing.TB) { Command(context.Background(), tb, filepath.Join(Root(t), "go.mod")) })
	require.True(t, f.failed, f.msg)
	require.Contains(t, f.msg, "not a PE or ELF")
}

func TestWineNeedsTheShim(t *testing.T) {
	// The shim is what makes Go programs run under Wine 8: with Wine told to
	// use only its builtin bcryptprimitives (it has none with ProcessPrng),
	// the same program must die. Proves the shim is load-bearing, and that
	// the prefix it is installed in is the one we run in.
	if Emulated() {
		t.Skip("the native leg runs it")
	}
	bin := GoBuild(t, "internal/testenv/testdata/hello", "windows", "amd64")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := Command(ctx, t, bin)
	require.NoError(t, cmd.Run())

	cmd = Command(ctx, t, bin)
	cmd.Env = append(filterEnv(cmd.Env, "WINEDLLOVERRIDES"), "WINEDLLOVERRIDES=mscoree,mshtml=;bcryptprimitives=b")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "without the shim the program must fail; output:\n%s", out)
	require.NotContains(t, string(out), "hello from")
}

func TestTempDirCleanupWorks(t *testing.T) {
	// Go 1.26 deletes files through NtSetInformationFile's
	// FileDispositionInformationEx, which Wine 8 answers with
	// STATUS_NOT_IMPLEMENTED: every t.TempDir with a file in it failed its
	// test in the windows leg. make test builds that leg with the overlay of
	// WineGoOverlay; this test fails when the overlay is missing.
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a", "b", "f"), []byte("x"), 0o644))
	other, err := os.MkdirTemp("", "hotpatch-removeall-*")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(other, "f"), []byte("x"), 0o644))
	require.NoError(t, os.RemoveAll(other))
	_, err = os.Stat(other)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestWineGoOverlay(t *testing.T) {
	if !HostExec() {
		t.Skip("needs the go tool; the native leg runs it")
	}
	goTool := NeedTool(t, "go")
	out, err := exec.Command(goTool, "env", "GOROOT").Output()
	require.NoError(t, err)
	goroot := strings.TrimSpace(string(out))
	dir := t.TempDir()
	path, err := WineGoOverlay(goroot, dir)
	require.NoError(t, err)
	if path == "" {
		t.Skipf("this toolchain (%s) needs no overlay: its deleteat has no STATUS_INVALID_INFO_CLASS fallback line", runtime.Version())
	}
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), `"Replace"`)
	// The patched source must compile: build a windows program that
	// deletes files with it.
	cmd := exec.Command(goTool, "build", "-overlay", path, "-o", filepath.Join(dir, "x.exe"), "os")
	cmd.Env = goBuildEnv("windows", "amd64")
	outp, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outp)
	// Idempotent: same path, same content.
	path2, err := WineGoOverlay(goroot, dir)
	require.NoError(t, err)
	require.Equal(t, path, path2)
}

func TestWineEnvReplacesWhatItSets(t *testing.T) {
	env := WineEnv([]string{"HOME=/h", "DISPLAY=:0", "WINEDEBUG=+all", "WINEPREFIX=/other", "WAYLAND_DISPLAY=w", "CI=true"}, "/p")
	require.Equal(t, []string{"HOME=/h", "CI=true", "WINEPREFIX=/p", "WINEDEBUG=-all", "WINEDLLOVERRIDES=" + WineDLLOverrides}, env)
}

func TestHostPlatform(t *testing.T) {
	h := hostPlatform()
	require.Equal(t, runtime.GOOS, h.GOOS)
	if runtime.GOOS == "linux" && runtime.GOARCH == "arm64" {
		// Under qemu-user uname(1) is a host program and says x86_64;
		// on real arm64 hardware it says aarch64. Either is consistent
		// with what the kernel runs.
		require.Contains(t, []string{"amd64", "arm64"}, h.GOARCH)
		return
	}
	require.Equal(t, runtime.GOARCH, h.GOARCH)
}
