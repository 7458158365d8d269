package patch

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// The committed testdata/manychild.exe (BenchmarkCommitWindows's target) is
// what testdata/build.sh builds from manychild.c: anyone can rebuild and
// check the binary the Windows benchmark runs.
func TestManyChildReproducible(t *testing.T) {
	testenv.NeedHostTool(t, "x86_64-w64-mingw32-gcc")
	out := filepath.Join(t.TempDir(), "manychild.exe")
	b, err := exec.Command("sh", filepath.Join("testdata", "build.sh"), out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	want, err := os.ReadFile(filepath.Join("testdata", "manychild.exe"))
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "testdata/manychild.exe differs from a rebuild: run testdata/build.sh and commit it")
}
