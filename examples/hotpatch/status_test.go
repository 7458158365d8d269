//go:build linux && amd64

package main

import (
	"bufio"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// TestStatusWithoutPackage is `status -pid N` with no package on a live gcc
// v1 through ptrace: nothing applied, then exactly the applied package's
// record (sequence, signer, file SHA-256, the package's replaced functions
// by RVA and without names), then nothing again once reverted. The package
// form names the same functions.
func TestStatusWithoutPackage(t *testing.T) {
	if testenv.Emulated() {
		t.Skip("ptrace is not available under emulation")
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "ops")
	code, _, errOut := runCLI("keygen", key)
	require.Equal(t, exitOK, code, errOut)
	v1 := fixtures.Path(t, "c-v1-amd64.elf")
	p := filepath.Join(dir, "fix.hpk")
	code, _, errOut = runCLI("build", "-q", "-key", key+".key", "-o", p, v1, fixtures.Path(t, "c-v2-amd64.elf"))
	require.Equal(t, exitOK, code, errOut)

	// The oracle: the package file itself, loaded with the library.
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	pubText, err := os.ReadFile(key + ".pub")
	require.NoError(t, err)
	pub, err := pkg.ParsePublicKey(pubText)
	require.NoError(t, err)
	loaded, err := pkg.Load(data, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
	require.NoError(t, err)
	var replaced []pkg.Function
	for _, f := range loaded.Functions {
		if !f.New {
			replaced = append(replaced, f)
		}
	}
	require.NotEmpty(t, replaced)
	sum := sha256.Sum256(data)

	cmd := exec.Command(v1, "1000000", "20")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	require.True(t, sc.Scan(), "the fixture program printed nothing")
	go func() {
		for sc.Scan() { // keep its pipe drained
		}
	}()
	pid := fmt.Sprint(cmd.Process.Pid)

	code, out, errOut := runCLI("status", "-pid", pid)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "process "+pid+": no packages applied\n", out)
	require.Equal(t, "hotpatch: status: attached to process "+pid+"\n", errOut)

	code, _, errOut = runCLI("apply", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)

	code, out, errOut = runCLI("status", "-pid", pid)
	require.Equal(t, exitOK, code, errOut)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 3+len(replaced), out)
	require.Regexp(t, `^process `+pid+`: c-v1-amd64\.elf at 0x[0-9a-f]+: 1 packages applied$`, lines[0])
	require.Regexp(t, fmt.Sprintf(`^  sequence 1 \(requires 0\), signed by %s, %d functions, patch memory 0x[0-9a-f]+ \(\d+ bytes\)$`,
		pkg.KeyIDOf(pub), len(replaced)), lines[1])
	require.Equal(t, fmt.Sprintf("    package sha256 %x", sum[:6]), lines[2])
	for i, f := range replaced { // records list functions by RVA, as packages do
		require.Equal(t, fmt.Sprintf("    function RVA %#x", f.OldRVA), lines[3+i])
	}

	// With the package: the same record, its functions named.
	code, named, errOut := runCLI("status", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, strings.Join(lines[:3], "\n")+"\n", strings.Join(strings.SplitAfter(named, "\n")[:3], ""))
	for _, f := range replaced {
		require.Contains(t, named, fmt.Sprintf("\n    function RVA %#x %s\n", f.OldRVA, f.Name))
	}

	code, _, errOut = runCLI("revert", "-pid", pid, "-key", key+".pub", p)
	require.Equal(t, exitOK, code, errOut)
	code, out, errOut = runCLI("status", "-pid", pid)
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, "process "+pid+": no packages applied\n", out)
}

func TestStatusUsage(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		stderr string
	}{
		{"no -pid", []string{"status"}, "hotpatch status: -pid is required\n"},
		{"two packages", []string{"status", "-pid", "1", "a.hpk", "b.hpk"}, "hotpatch status: want 0 to 1 arguments ([PACKAGE]), got 2\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			require.Equal(t, exitUsage, code, errOut)
			require.Empty(t, out)
			require.True(t, strings.HasPrefix(errOut, tc.stderr), "%q", errOut)
			require.Contains(t, errOut, "usage: hotpatch status [flags] [PACKAGE]")
		})
	}
	// A process that is not there: one line, status 1.
	code, out, errOut := runCLI("status", "-pid", "999999999")
	requireOneLine(t, code, out, errOut, "hotpatch: status: ")
}
