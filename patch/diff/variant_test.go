package diff

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// buildC compiles the v1 C fixture program with cc (gcc flags as
// testdata/build.sh), linking objs (names of testdata/c files, "funcs.c" for
// v1/funcs.c, or extra sources written into dir) in the given order.
func buildC(t *testing.T, cc, dir, out string, srcs []string, ldflags ...string) string {
	t.Helper()
	cdir := testenv.Testdata(t, "c")
	flags := []string{"-O2", "-fno-toplevel-reorder", "-fno-reorder-blocks-and-partition", "-I", cdir}
	var objs []string
	for _, s := range srcs {
		path := filepath.Join(cdir, s)
		if s == "funcs.c" {
			path = filepath.Join(cdir, "v1", "funcs.c")
		} else if _, err := os.Stat(path); err != nil {
			path = filepath.Join(dir, s)
		}
		obj := filepath.Join(dir, out+"-"+s+".o")
		cmd := exec.Command(cc, append(flags, "-c", path, "-o", obj)...)
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", b)
		objs = append(objs, obj)
	}
	exe := filepath.Join(dir, out)
	if filepath.Base(cc) == "x86_64-w64-mingw32-gcc" {
		exe += ".exe" // mingw appends it anyway
	}
	b, err := exec.Command(cc, append(append([]string{"-o", exe}, objs...), ldflags...)...).CombinedOutput()
	require.NoError(t, err, "%s", b)
	return exe
}

const extraC = `/* An unrelated function: nothing of the fixture calls it. */
__attribute__((noipa)) int unrelated_extra(int x) { return x * 1234567 + (x >> 3); }
`

// TestVariants builds the v1 C program again with a different link order and
// with an added unrelated function (gcc ELF and mingw PE, at test time):
// the link-order variant differs in no function, the other only by the added
// one.
func TestVariants(t *testing.T) {
	for _, tc := range []struct {
		name, cc string
		ldflags  []string
	}{
		{"elf-amd64", "gcc", nil},
		{"pe-amd64", "x86_64-w64-mingw32-gcc", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := testenv.NeedHostTool(t, tc.cc)
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.c"), []byte(extraC), 0o644))
			base := buildC(t, cc, dir, "base", []string{"os_hosted.c", "loop.c", "stable.c", "funcs.c"}, tc.ldflags...)
			reordered := buildC(t, cc, dir, "reordered", []string{"funcs.c", "stable.c", "os_hosted.c", "loop.c"}, tc.ldflags...)
			extra := buildC(t, cc, dir, "extra", []string{"os_hosted.c", "extra.c", "loop.c", "stable.c", "funcs.c"}, tc.ldflags...)

			o := openImage(t, base)
			rep, err := Compare(o, openImage(t, reordered), nil)
			require.NoError(t, err)
			t.Logf("link order: %s", rep.Summary())
			require.Zero(t, rep.Counts.Changed+rep.Counts.Added+rep.Counts.Removed, rep.Summary())

			rep, err = Compare(o, openImage(t, extra), nil)
			require.NoError(t, err)
			t.Logf("added function: %s", rep.Summary())
			require.Zero(t, rep.Counts.Changed+rep.Counts.Removed, rep.Summary())
			require.Equal(t, 1, rep.Counts.Added, rep.Summary())
			require.Equal(t, Added, rep.Lookup("unrelated_extra").Status)
		})
	}
}

// goBuildDir builds the Go main package in dir (its own module) for
// goos/goarch with the go tool, into dir/out.
func goBuildDir(t *testing.T, dir, goos, goarch, out string) string {
	t.Helper()
	gotool := testenv.NeedHostTool(t, "go")
	exe := filepath.Join(dir, out)
	cmd := exec.Command(gotool, "build", "-trimpath", "-buildvcs=false", "-o", exe, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0", "GOFLAGS=", "GOWORK=off")
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	return exe
}

const extraGo = `package main

// unrelatedExtra is new and unrelated: only an init calls it.
//
//go:noinline
func unrelatedExtra(x int) int { return x*1234567 + x>>3 }

var extraSink int

func init() { extraSink = unrelatedExtra(len(total2)) }

var total2 = "extra"
`

// TestGoVariant builds the Go v1 program with an extra file holding an
// unrelated function (and the init that calls it): the diff against plain v1
// shows exactly those as added, on x86-64 and ARM64, PE and ELF.
func TestGoVariant(t *testing.T) {
	for _, p := range [][2]string{{"linux", "amd64"}, {"windows", "arm64"}} {
		t.Run(p[0]+"/"+p[1], func(t *testing.T) {
			dir := t.TempDir()
			src, err := os.ReadFile(testenv.Testdata(t, "go", "v1", "main.go"))
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module fixture\n\ngo 1.26\n"), 0o644))
			require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), src, 0o644))
			base := goBuildDir(t, dir, p[0], p[1], "base")
			require.NoError(t, os.WriteFile(filepath.Join(dir, "extra.go"), []byte(extraGo), 0o644))
			extra := goBuildDir(t, dir, p[0], p[1], "extra")

			rep, err := Compare(openImage(t, base), openImage(t, extra), nil)
			require.NoError(t, err)
			t.Logf("%s", rep.Summary())
			require.Zero(t, rep.Counts.Changed+rep.Counts.Removed, rep.Summary())
			var added []string
			for _, f := range rep.WithStatus(Added) {
				added = append(added, f.Name())
			}
			require.ElementsMatch(t, []string{"main.unrelatedExtra", "main.init.0"}, added)
		})
	}
}

const refsV1 = `
int keep;          /* same in both */
int grows[4];      /* v2: 8 ints */
__thread int tlsv;
__attribute__((noipa)) int uses_new(void) { return keep; }
__attribute__((noipa)) int uses_grown(int i) { return grows[i & 3]; }
__attribute__((noipa)) int uses_tls(void) { return 0; }
int main(int argc, char **argv) { (void)argv; return uses_new() + uses_grown(argc) + uses_tls(); }
`

const refsV2 = `
int keep;
int grows[8];
int fresh[4];      /* new writable data */
__thread int tlsv;
__attribute__((noipa)) int uses_new(void) { return keep + fresh[1]; }
__attribute__((noipa)) int uses_grown(int i) { return grows[i & 7]; }
__attribute__((noipa)) int uses_tls(void) { return tlsv; }
int main(int argc, char **argv) { (void)argv; return uses_new() + uses_grown(argc) + uses_tls(); }
`

// TestNotHotPatchable builds a pair (gcc ELF) whose v2 functions use new
// writable data, a resized array and thread-local storage: each such
// reference is NotHotPatchable and names the symbol; the reference to the
// unchanged global resolves to the old image's symbol.
func TestNotHotPatchable(t *testing.T) {
	cc := testenv.NeedHostTool(t, "gcc")
	dir := t.TempDir()
	build := func(name, src string) string {
		c := filepath.Join(dir, name+".c")
		require.NoError(t, os.WriteFile(c, []byte(src), 0o644))
		exe := filepath.Join(dir, name)
		b, err := exec.Command(cc, "-O2", "-fcommon", "-o", exe, c).CombinedOutput()
		require.NoError(t, err, "%s", b)
		return exe
	}
	o, n := openImage(t, build("v1", refsV1)), openImage(t, build("v2", refsV2))
	rep, err := Compare(o, n, nil)
	require.NoError(t, err)
	t.Logf("%s", rep.Summary())
	why := func(fn string) (out []string, resolved []string) {
		f := rep.Lookup(fn)
		require.NotNil(t, f, fn)
		require.Equal(t, Changed, f.Status, fn)
		for _, r := range f.References {
			if r.Resolution == NotHotPatchable {
				out = append(out, r.Why)
			} else if r.Resolution == ToData {
				resolved = append(resolved, r.Target.Name)
			}
		}
		return out, resolved
	}
	w, res := why("uses_new")
	require.Len(t, w, 1, "%v", w)
	require.Contains(t, w[0], "new writable data fresh")
	require.Contains(t, res, "keep")
	require.False(t, rep.Lookup("uses_new").HotPatchable())

	w, _ = why("uses_grown")
	require.Len(t, w, 1, "%v", w)
	require.Contains(t, w[0], "grows resized (16 bytes in the old image, 32 in the new)")

	w, _ = why("uses_tls")
	require.NotEmpty(t, w)
	require.Contains(t, w[0], "thread-local storage")
}
