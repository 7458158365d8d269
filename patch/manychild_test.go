package patch

import (
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// The committed testdata/manychild.exe (BenchmarkCommitWindows's target) is
// what testdata/build.sh builds from manychild.c: anyone can rebuild and
// check the binary the Windows benchmark runs.
func TestManyChildReproducible(t *testing.T) {
	testenv.NeedHostTool(t, "x86_64-w64-mingw32-gcc")
	testenv.RequireRebuild(t, "testdata", "manychild.exe")
}
