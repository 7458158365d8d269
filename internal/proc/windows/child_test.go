package winproc

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// The committed testdata/child.exe is what testdata/build.sh builds from
// child.c: the Windows tests run a binary anyone can rebuild and check.
func TestChildReproducible(t *testing.T) {
	testenv.NeedHostTool(t, "x86_64-w64-mingw32-gcc")
	out := filepath.Join(t.TempDir(), "child.exe")
	cmd := exec.Command("sh", filepath.Join("testdata", "build.sh"), out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	want, err := os.ReadFile(filepath.Join("testdata", "child.exe"))
	require.NoError(t, err)
	got, err := os.ReadFile(out)
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "testdata/child.exe differs from a rebuild: run testdata/build.sh and commit it")
}
