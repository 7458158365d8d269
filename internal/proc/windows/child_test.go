package winproc

import (
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// The committed testdata/child.exe is what testdata/build.sh builds from
// child.c: the Windows tests run a binary anyone can rebuild and check.
func TestChildReproducible(t *testing.T) {
	testenv.NeedHostTool(t, "x86_64-w64-mingw32-gcc")
	testenv.RequireRebuild(t, "testdata", "child.exe")
}
