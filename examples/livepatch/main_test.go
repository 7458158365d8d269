//go:build (linux && amd64) || (windows && amd64)

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// TestLivePatch runs the demo on the committed C builds (gcc ELF natively,
// mingw PE under Wine) and checks every line the program printed against
// the fixtures' model, written from the sources: v1 before the package is
// applied, v2 after it, v1 after the revert, with the program's state
// (total, hits) carried across both switches, one PID and a counter that
// never restarts.
func TestLivePatch(t *testing.T) {
	if runtime.GOOS == "linux" && testenv.Emulated() {
		t.Skip("ptrace is not available under emulation")
	}
	ext := "elf"
	if runtime.GOOS == "windows" {
		ext = "exe"
	}
	v1 := fixtures.Path(t, "c-v1-amd64."+ext)
	v2 := fixtures.Path(t, "c-v2-amd64."+ext)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	const lines = 3
	require.NoError(t, run(ctx, &out, v1, v2, lines), out.String())
	text := out.String()
	require.Contains(t, text, "started "+filepath.Base(v1)+": process ")
	require.Contains(t, text, "built a package of 6 functions (")
	require.Contains(t, text, "signed): dispatch greeting record scale slot_get\n")

	// The program's lines, by phase.
	var phases [3][]map[string]string
	phase := 0
	for _, l := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(l, "applied to process "):
			phase = 1
		case strings.HasPrefix(l, "reverted: "):
			phase = 2
		case strings.HasPrefix(l, "  | "):
			phases[phase] = append(phases[phase], fields(l[4:]))
		}
	}
	require.Len(t, phases[0], lines)
	require.Len(t, phases[1], lines+1)
	require.Len(t, phases[2], lines+1)

	m := &fixtures.Model{Version: "v1"}
	pid := phases[0][0]["pid"]
	next := int64(0)
	for p, ls := range phases {
		want := []string{"v1", "v2", "v1"}[p]
		for i, got := range ls {
			require.Equal(t, pid, got["pid"], "one process throughout")
			n, err := strconv.ParseInt(got["n"], 10, 64)
			require.NoError(t, err)
			require.Equal(t, next, n, "the counter never restarts")
			next++
			if p > 0 && i == 0 {
				// The line computed while the patch went in may mix both
				// versions' functions: only its state is followed, by
				// whichever version explains it.
				a, b := *m, *m
				a.Version, b.Version = "v1", "v2"
				la, lb := a.Next(n), b.Next(n)
				switch {
				case matches(got, la, "total", "hits"):
					*m = a
				case matches(got, lb, "total", "hits"):
					*m = b
				default:
					t.Fatalf("line %v: neither version's state", got)
				}
				m.Version = want
				continue
			}
			m.Version = want
			l := m.Next(n)
			require.True(t, matches(got, l, "greet", "slot", "total", "hits", "scale"), "phase %d: got %v, want %s line %s", p, got, want, l)
		}
	}
}

// fields parses the demo's shortened line: "k=v" pairs, greet's value has
// spaces.
func fields(s string) map[string]string {
	m := map[string]string{}
	var key string
	for _, f := range strings.Fields(s) {
		if k, v, ok := strings.Cut(f, "="); ok {
			key = k
			m[k] = v
			continue
		}
		m[key] += " " + f
	}
	return m
}

// matches compares the named fields of a shortened line with the model's.
func matches(got map[string]string, l fixtures.Line, keys ...string) bool {
	for _, k := range keys {
		v, ok := l.Field(k)
		if !ok || got[k] != v {
			return false
		}
	}
	return true
}
