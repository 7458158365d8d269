package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// requireOneLine checks a failure: status 1, nothing on stdout, one line
// on stderr starting with prefix.
func requireOneLine(t *testing.T, code int, stdout, stderr, prefix string) {
	t.Helper()
	require.Equal(t, exitFailure, code, "stderr %q", stderr)
	require.Empty(t, stdout)
	require.Equal(t, 1, strings.Count(stderr, "\n"), "%q", stderr)
	require.True(t, strings.HasPrefix(stderr, prefix), "%q", stderr)
}

func TestKeygen(t *testing.T) {
	name := filepath.Join(t.TempDir(), "ops")
	code, out, errOut := runCLI("keygen", name)
	require.Equal(t, exitOK, code, errOut)

	pubText, err := os.ReadFile(name + ".pub")
	require.NoError(t, err)
	pub, err := pkg.ParsePublicKey(pubText)
	require.NoError(t, err)
	privPEM, err := os.ReadFile(name + ".key")
	require.NoError(t, err)
	priv, err := pkg.ParsePrivateKey(privPEM)
	require.NoError(t, err)
	require.True(t, pub.Equal(priv.Public()), "the two files are one pair")
	require.Equal(t, "key "+pkg.KeyIDOf(pub).String()+": private "+name+".key, public "+name+".pub\n", out)
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(name + ".key")
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the private key is readable by its owner only")
	}

	// A second keygen must not overwrite the key that signs packages.
	code, out, errOut = runCLI("keygen", name)
	requireOneLine(t, code, out, errOut, "hotpatch: keygen: open "+name+".key: ")
	again, err := os.ReadFile(name + ".key")
	require.NoError(t, err)
	require.Equal(t, privPEM, again)
}

func TestBuildShow(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "ops")
	code, _, errOut := runCLI("keygen", key)
	require.Equal(t, exitOK, code, errOut)
	other := filepath.Join(dir, "other")
	code, _, errOut = runCLI("keygen", other)
	require.Equal(t, exitOK, code, errOut)

	truth := fixtures.GroundTruth(t)
	var changed []string
	for _, f := range truth.Programs["c"].WithStatus(fixtures.Changed) {
		changed = append(changed, f.Name)
	}
	sort.Strings(changed)

	for _, b := range truth.Builds {
		if b.Program != "c" || !b.Committed() {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			v1, v2 := fixtures.Path(t, b.V1), fixtures.Path(t, b.V2)
			p := filepath.Join(t.TempDir(), "fix.hpk")
			code, out, errOut := runCLI("build", "-key", key+".key", "-o", p, "-desc", "v1 to v2", v1, v2)
			require.Equal(t, exitOK, code, errOut)
			require.Regexp(t, `^`+regexp.QuoteMeta(p)+`: \d+ functions, \d+ constants, \d+ bytes, sequence 1, signed by [0-9a-f]{16}\n$`, out)
			require.Contains(t, errOut, "hotpatch: build: loaded "+v1)

			// Deterministic: building again gives the same bytes.
			first, err := os.ReadFile(p)
			require.NoError(t, err)
			p2 := p + ".again"
			code, _, _ = runCLI("build", "-q", "-key", key+".key", "-o", p2, "-desc", "v1 to v2", v1, v2)
			require.Equal(t, exitOK, code)
			second, err := os.ReadFile(p2)
			require.NoError(t, err)
			require.Equal(t, first, second)

			// show with the right key: verified, every changed function of
			// the ground truth replaced, nothing else.
			code, out, errOut = runCLI("show", "-key", key+".pub", p)
			require.Equal(t, exitOK, code, errOut)
			require.Contains(t, out, "signed by ")
			require.Contains(t, out, "(verified)")
			require.Contains(t, out, "description: v1 to v2\n")
			require.Contains(t, out, "applies to: "+filepath.Base(v1)+", ")
			var replaced []string
			for _, m := range regexp.MustCompile(`(?m)^  (\S+) +replaces `).FindAllStringSubmatch(out, -1) {
				replaced = append(replaced, m[1])
			}
			sort.Strings(replaced)
			require.Equal(t, changed, replaced, out)

			// -json carries the same.
			code, js, _ := runCLI("show", "-json", "-key", key+".pub", p)
			require.Equal(t, exitOK, code)
			require.Contains(t, js, `"sequence": 1`)

			// Another key, no key, a tampered file: refused, one line each.
			code, out, errOut = runCLI("show", "-key", other+".pub", p)
			requireOneLine(t, code, out, errOut, "hotpatch: show: "+p+": ")
			require.Contains(t, errOut, "unknown key")
			code, out, errOut = runCLI("show", p)
			requireOneLine(t, code, out, errOut, "hotpatch: show: "+p+": ")
			tampered := bytes.Clone(first)
			tampered[len(tampered)/2] ^= 1
			bad := filepath.Join(t.TempDir(), "tampered.hpk")
			require.NoError(t, os.WriteFile(bad, tampered, 0o644))
			code, out, errOut = runCLI("show", "-key", key+".pub", bad)
			requireOneLine(t, code, out, errOut, "hotpatch: show: "+bad+": ")
		})
	}
}

func TestBuildUnsigned(t *testing.T) {
	v1, v2 := fixtures.Path(t, "c-v1-amd64.exe"), fixtures.Path(t, "c-v2-amd64.exe")
	p := filepath.Join(t.TempDir(), "fix.hpk")
	code, out, errOut := runCLI("build", "-q", "-unsigned", "-seq", "3", "-o", p, v1, v2)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "sequence 3, unsigned")

	// An agent refuses it unless told to accept unsigned packages.
	code, out, errOut = runCLI("show", p)
	requireOneLine(t, code, out, errOut, "hotpatch: show: "+p+": ")
	code, out, errOut = runCLI("show", "-unsigned", p)
	require.Equal(t, exitOK, code, errOut)
	require.Contains(t, out, "sequence 3 (requires 2), unsigned\n")
}

func TestBuildUsage(t *testing.T) {
	v1, v2 := fixtures.Path(t, "c-v1-amd64.exe"), fixtures.Path(t, "c-v2-amd64.exe")
	out := filepath.Join(t.TempDir(), "p.hpk")
	for _, tc := range []struct {
		name string
		args []string
		says string
	}{
		{"no -o", []string{"build", "-unsigned", v1, v2}, "-o is required"},
		{"no key", []string{"build", "-o", out, v1, v2}, "exactly one of -key and -unsigned"},
		{"key and unsigned", []string{"build", "-key", "k", "-unsigned", "-o", out, v1, v2}, "exactly one of -key and -unsigned"},
		{"requires not below seq", []string{"build", "-unsigned", "-seq", "2", "-requires", "2", "-o", out, v1, v2}, "-requires < -seq"},
		{"seq 0", []string{"build", "-unsigned", "-seq", "0", "-o", out, v1, v2}, "1 <= -seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(tc.args...)
			require.Equal(t, exitUsage, code, stderr)
			require.Empty(t, stdout)
			require.True(t, strings.HasPrefix(stderr, "hotpatch build: "), stderr)
			require.Contains(t, strings.SplitN(stderr, "\n", 2)[0], tc.says)
			require.Contains(t, stderr, "usage: hotpatch build [flags] OLD NEW")
			require.NoFileExists(t, out)
		})
	}
	// A missing key file is a failure, not a usage error.
	code, stdout, stderr := runCLI("build", "-key", filepath.Join(t.TempDir(), "none.key"), "-o", out, v1, v2)
	requireOneLine(t, code, stdout, stderr, "hotpatch: build: open ")
	require.NoFileExists(t, out)
}

// TestBuildRefused: Go-compiled bodies cannot be moved out of the Go
// runtime's view, so a package of a Go pair is refused, naming the functions.
func TestBuildRefused(t *testing.T) {
	v1 := fixtures.GoProgram(t, "v1", "windows", "amd64")
	v2 := fixtures.GoProgram(t, "v2", "windows", "amd64")
	out := filepath.Join(t.TempDir(), "p.hpk")
	code, stdout, stderr := runCLI("build", "-unsigned", "-o", out, v1, v2)
	require.Equal(t, exitFailure, code, stderr)
	require.Empty(t, stdout)
	lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
	last := lines[len(lines)-1]
	require.True(t, strings.HasPrefix(last, "hotpatch: build: "), last)
	require.Contains(t, last, "cannot be hot-patched")
	require.Contains(t, stderr, "hotpatch: build: refused ")
	require.NoFileExists(t, out)
}
