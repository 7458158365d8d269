//go:build (linux && amd64) || (windows && amd64)

package main

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// TestApplyRevert is the operator's whole session on a live process: the C
// fixture program (v1: gcc ELF on Linux through ptrace, mingw PE under Wine
// through the Windows back-end) runs and prints a line every 20 ms; a signed
// package of v1 -> v2 is built, applied (the same process now prints what v2
// prints, its counter still counting), its status shown, and reverted (v1's
// output again).
func TestApplyRevert(t *testing.T) {
	ext := "exe"
	if runtime.GOOS == "linux" {
		if testenv.Emulated() {
			t.Skip("ptrace is not available under emulation")
		}
		ext = "elf"
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "ops")
	code, _, errOut := runCLI("keygen", key)
	require.Equal(t, exitOK, code, errOut)
	v1, v2 := fixtures.Path(t, "c-v1-amd64."+ext), fixtures.Path(t, "c-v2-amd64."+ext)
	p := filepath.Join(dir, "fix.hpk")
	code, _, errOut = runCLI("build", "-q", "-key", key+".key", "-o", p, v1, v2)
	require.Equal(t, exitOK, code, errOut)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := testenv.Command(ctx, t, v1, "3000", "20")
	lines := testenv.StartLines(t, cmd, 1024, testenv.BlockWhenFull).Chan()
	pid := fmt.Sprint(cmd.Process.Pid)

	first := waitLine(t, lines, func(l fixtures.Line) bool { return l.N >= 2 })
	require.Equal(t, "hello from v1", first.Greet)

	code, out, errOut := runCLI("apply", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "applied "+p+" (sequence 1) to process "+pid+": ")
	patched := waitLine(t, lines, func(l fixtures.Line) bool { return l.Greet == "hello from v2" })
	require.Greater(t, patched.N, first.N, "the same process kept counting")

	code, out, errOut = runCLI("status", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "1 packages applied\n")
	require.Contains(t, out, "  sequence 1 (requires 0), signed by ")

	// Applying it twice is refused by the sequence check, leaving it applied.
	code, out, errOut = runCLI("apply", "-pid", pid, "-key", key+".pub", p)
	requireOneLine(t, code, out, lastLine(errOut), "hotpatch: apply: ")

	code, out, errOut = runCLI("revert", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "reverted "+p+" (sequence 1) in process "+pid+"\n")
	back := waitLine(t, lines, func(l fixtures.Line) bool { return l.Greet == "hello from v1" })
	require.Greater(t, back.N, patched.N)

	code, out, errOut = runCLI("status", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "0 packages applied\n")
}

// lastLine keeps the final line of stderr (progress lines come before the
// failure's one line).
func lastLine(s string) string {
	s = strings.TrimSuffix(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s + "\n"
}

// waitLine returns the first line that satisfies ok; the program's lines
// are all checked to parse.
func waitLine(t *testing.T, lines <-chan string, ok func(fixtures.Line) bool) fixtures.Line {
	t.Helper()
	for s := range lines {
		l, err := fixtures.ParseLine(s)
		require.NoError(t, err, s)
		if ok(l) {
			return l
		}
	}
	t.Fatal("the program ended before the expected line")
	return fixtures.Line{}
}
