package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/stretchr/testify/require"
)

// runCLI runs the command in-process and returns its exit status and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

// committed are the fixture binaries in testdata/bin every test can read.
var committed = []string{"c-v1-amd64.exe", "c-v1-arm64.exe", "c-v1-amd64.elf", "c-v1-arm64.elf"}

func TestInspect(t *testing.T) {
	for _, name := range committed {
		t.Run(name, func(t *testing.T) {
			path := fixtures.Path(t, name)
			// The oracle is package image itself: the command must show
			// what the library holds, counted independently here.
			img, err := image.Open(path)
			require.NoError(t, err)
			bySource := map[string]int{}
			for _, f := range img.Functions {
				bySource[f.Found.String()]++
			}

			code, out, errOut := runCLI("inspect", path)
			require.Equal(t, exitOK, code, errOut)
			require.Empty(t, errOut)
			lines := strings.Split(out, "\n")
			require.Equal(t, path+": "+img.Format.String()+" "+img.Arch.String()+",", strings.SplitAfter(lines[0], ",")[0])
			require.Contains(t, out, "code sha256 ")
			for _, s := range img.Sections {
				require.Contains(t, out, "\n  "+s.Name+" ")
			}
			var counts string
			for _, l := range lines {
				if strings.Contains(l, " functions (found by: ") {
					counts = l
				}
			}
			require.NotEmpty(t, counts, out)
			require.True(t, strings.HasPrefix(counts, strconv.Itoa(len(img.Functions))+" functions (found by: "), counts)
			for src, n := range bySource {
				require.Contains(t, counts, src+" "+strconv.Itoa(n), counts)
			}
			require.NotContains(t, out, "fixture_run", "without -functions no function is listed")

			// -functions: one line per function, the fixture's own among them.
			code, out, _ = runCLI("inspect", "-functions", path)
			require.Equal(t, exitOK, code)
			require.Equal(t, len(img.Functions), strings.Count(out, " found by "))
			for _, fn := range []string{"fixture_run", "leaf_mix", "dispatch", "fib"} {
				f, ok := img.FunctionByName(fn)
				require.True(t, ok, fn)
				require.Regexp(t, `\n  0x0*`+fmt.Sprintf("%x", f.RVA)+` +`+strconv.Itoa(int(f.Size))+`  `+fn+` +found by `, out)
			}

			// -json: the same numbers, machine-readable.
			code, out, _ = runCLI("inspect", "-json", "-functions", path)
			require.Equal(t, exitOK, code)
			var rep inspectReport
			require.NoError(t, json.Unmarshal([]byte(out), &rep))
			require.Equal(t, img.Arch.String(), rep.Arch)
			require.Equal(t, img.Format.String(), rep.Format)
			require.Equal(t, len(img.Functions), rep.Counts.Functions)
			require.Len(t, rep.Funcs, len(img.Functions))
			require.Len(t, rep.Sections, len(img.Sections))
			got := map[string]int{}
			for _, s := range rep.BySource {
				got[s.Source] = s.Count
			}
			require.Equal(t, bySource, got)
		})
	}
}

func TestInspectArchitecture(t *testing.T) {
	// The user's first check: the arch and the count of functions of the
	// x86-64 mingw fixture, as the ground truth's build lists them.
	code, out, _ := runCLI("inspect", "-json", fixtures.Path(t, "c-v1-amd64.exe"))
	require.Equal(t, exitOK, code)
	var rep inspectReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	require.Equal(t, "PE", rep.Format)
	require.Equal(t, "amd64", rep.Arch)
	require.Equal(t, uint16(0x8664), rep.Identity.Machine)
	require.NotEmpty(t, rep.Identity.CodeView)

	code, out, _ = runCLI("inspect", "-json", "-functions", fixtures.Path(t, "c-v1-amd64.exe"))
	require.Equal(t, exitOK, code)
	require.NoError(t, json.Unmarshal([]byte(out), &rep))
	names := map[string]bool{}
	for _, f := range rep.Funcs {
		names[f.Name] = true
	}
	for _, b := range fixtures.GroundTruth(t).Builds {
		if b.Name != "c/windows/amd64" {
			continue
		}
		for _, f := range b.Functions {
			if f.V1 != nil {
				require.True(t, names[f.Name], "ground-truth function %s of v1 is listed", f.Name)
			}
		}
	}
}

func TestUsage(t *testing.T) {
	exe := fixtures.Path(t, "c-v1-amd64.exe")
	for _, tc := range []struct {
		name     string
		args     []string
		code     int
		stdout   []string // substrings
		stderr   []string
		noStdout bool
	}{
		{name: "no arguments", args: nil, code: exitUsage, stderr: []string{"usage: hotpatch <command>"}, noStdout: true},
		{name: "unknown command", args: []string{"frobnicate"}, code: exitUsage, stderr: []string{`unknown command "frobnicate"`}, noStdout: true},
		{name: "unknown flag", args: []string{"inspect", "-frobnicate", exe}, code: exitUsage, stderr: []string{"-frobnicate", "usage: hotpatch inspect [flags] IMAGE", "-functions"}, noStdout: true},
		{name: "missing argument", args: []string{"inspect"}, code: exitUsage, stderr: []string{"want 1 arguments", "usage: hotpatch inspect"}, noStdout: true},
		{name: "extra argument", args: []string{"diff", exe, exe, exe}, code: exitUsage, stderr: []string{"want 2 arguments", "usage: hotpatch diff"}, noStdout: true},
		{name: "-h", args: []string{"-h"}, code: exitOK, stdout: []string{"usage: hotpatch <command>"}},
		{name: "help", args: []string{"help"}, code: exitOK, stdout: []string{"usage: hotpatch <command>"}},
		{name: "help diff", args: []string{"help", "diff"}, code: exitOK, stdout: []string{"usage: hotpatch diff [flags] OLD NEW", "-json", "-refs"}},
		{name: "inspect -h", args: []string{"inspect", "-h"}, code: exitOK, stdout: []string{"usage: hotpatch inspect [flags] IMAGE", "-functions", "-json"}},
		{name: "apply without -pid", args: []string{"apply", exe}, code: exitUsage, stderr: []string{"hotpatch apply: -pid is required", "usage: hotpatch apply [flags] PACKAGE"}, noStdout: true},
		{name: "revert without -pid", args: []string{"revert", exe}, code: exitUsage, stderr: []string{"hotpatch revert: -pid is required"}, noStdout: true},
		{name: "help unknown", args: []string{"help", "frobnicate"}, code: exitUsage, stderr: []string{`unknown command "frobnicate"`}, noStdout: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			require.Equal(t, tc.code, code, "stdout %q\nstderr %q", out, errOut)
			for _, s := range tc.stdout {
				require.Contains(t, out, s)
			}
			for _, s := range tc.stderr {
				require.Contains(t, errOut, s)
			}
			if tc.noStdout {
				require.Empty(t, out)
			}
		})
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out, _ := runCLI("-h")
	require.Equal(t, exitOK, code)
	require.GreaterOrEqual(t, len(commands), 2)
	for _, c := range commands {
		require.Regexp(t, `\n  `+c.name+` +`, out, "hotpatch -h lists %s", c.name)
		// Every listed command explains itself, with its usage line.
		code, h, _ := runCLI("help", c.name)
		require.Equal(t, exitOK, code)
		require.Contains(t, h, "usage: hotpatch "+c.name+" [flags] "+c.args)
		require.Contains(t, h, c.long)
	}
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notImage, []byte("hello, world\n"), 0o644))
	missing := filepath.Join(dir, "old.exe")
	exe := fixtures.Path(t, "c-v1-amd64.exe")
	elf := fixtures.Path(t, "c-v1-amd64.elf")
	arm := fixtures.Path(t, "c-v1-arm64.exe")

	for _, tc := range []struct {
		name   string
		args   []string
		prefix string
		says   string
	}{
		{"inspect missing file", []string{"inspect", missing}, "hotpatch: inspect: open " + missing + ": ", ""},
		{"inspect not an image", []string{"inspect", notImage}, "hotpatch: inspect: " + notImage + ": ", "malformed"},
		{"diff missing old", []string{"diff", "-q", missing, exe}, "hotpatch: diff: open " + missing + ": ", ""},
		{"diff missing new", []string{"diff", "-q", exe, missing}, "hotpatch: diff: open " + missing + ": ", ""},
		{"diff PE against ELF", []string{"diff", "-q", exe, elf}, "hotpatch: diff: ", "format"},
		{"diff amd64 against arm64", []string{"diff", "-q", exe, arm}, "hotpatch: diff: ", "arch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(tc.args...)
			require.Equal(t, exitFailure, code, errOut)
			require.Empty(t, out)
			// Exactly one line, naming the command and what failed.
			require.Equal(t, 1, strings.Count(errOut, "\n"), "%q", errOut)
			require.True(t, strings.HasPrefix(errOut, tc.prefix), "%q", errOut)
			require.Contains(t, errOut, tc.says)
		})
	}
}

func TestDiffGroundTruth(t *testing.T) {
	truth := fixtures.GroundTruth(t)
	prog := truth.Programs["c"]
	require.NotNil(t, prog)
	want := map[string][]string{}
	for _, s := range []fixtures.Status{fixtures.Changed, fixtures.Added, fixtures.Removed} {
		for _, f := range prog.WithStatus(s) {
			want[string(s)] = append(want[string(s)], f.Name)
		}
		sort.Strings(want[string(s)])
	}
	require.NotEmpty(t, want["changed"])

	n := 0
	for _, b := range truth.Builds {
		if b.Program != "c" || !b.Committed() {
			continue
		}
		n++
		t.Run(b.Name, func(t *testing.T) {
			v1, v2 := fixtures.Path(t, b.V1), fixtures.Path(t, b.V2)

			// The summary names exactly the ground truth's changed, added
			// and removed functions.
			code, out, errOut := runCLI("diff", v1, v2)
			require.Equal(t, exitOK, code, errOut)
			require.Contains(t, errOut, "hotpatch: diff: loaded "+v1+": ")
			require.Contains(t, errOut, "hotpatch: diff: compared in ")
			got := map[string][]string{}
			for _, l := range strings.Split(out, "\n")[1:] {
				f := strings.Fields(l)
				if len(f) == 0 {
					continue
				}
				require.GreaterOrEqual(t, len(f), 2, l)
				got[f[0]] = append(got[f[0]], f[1])
			}
			for _, s := range []string{"changed", "added", "removed"} {
				sort.Strings(got[s])
				require.Equal(t, want[s], got[s], s)
			}

			// -json: the same classification in the full report, and
			// byte-identical when run again.
			code, js, _ := runCLI("diff", "-q", "-json", v1, v2)
			require.Equal(t, exitOK, code)
			var rep diff.Report
			require.NoError(t, json.Unmarshal([]byte(js), &rep))
			for _, s := range []diff.Status{diff.Changed, diff.Added, diff.Removed} {
				var names []string
				for _, f := range rep.WithStatus(s) {
					names = append(names, f.Name())
				}
				sort.Strings(names)
				require.Equal(t, want[s.String()], names, s.String())
			}
			_, js2, _ := runCLI("diff", "-q", "-json", v1, v2)
			require.Equal(t, js, js2)

			// -refs: each changed function with its references.
			code, out, errOut = runCLI("diff", "-q", "-refs", v1, v2)
			require.Equal(t, exitOK, code)
			require.Empty(t, errOut)
			for _, name := range want["changed"] {
				require.Contains(t, out, "\n"+name+": old 0x")
			}
		})
	}
	require.Positive(t, n, "no committed C build in the ground truth")
}
