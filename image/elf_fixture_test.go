package image

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// TestFixturesRebuild runs testdata/build.sh into a temporary directory and
// checks that it still produces the committed fixtures: the same functions
// (name, RVA, size) and, with the same compilers, the same bytes.
func TestFixturesRebuild(t *testing.T) {
	testenv.NeedHostTool(t, "gcc")
	testenv.NeedHostTool(t, "aarch64-linux-gnu-gcc")
	testenv.NeedHostTool(t, "x86_64-w64-mingw32-gcc")
	out := t.TempDir()
	b, err := exec.Command("sh", filepath.Join("testdata", "build.sh"), out).CombinedOutput()
	require.NoError(t, err, "%s", b)
	for _, name := range []string{"textrel-amd64.elf", "textrel-arm64.elf", "textrel-x64.dll"} {
		t.Run(name, func(t *testing.T) {
			committed, data := fixture(t, name)
			fresh, err := os.ReadFile(filepath.Join(out, name))
			require.NoError(t, err)
			img, err := Parse(fresh)
			require.NoError(t, err)
			type fn struct {
				Name      string
				RVA, Size uint32
			}
			list := func(img *Image) (out []fn) {
				for _, f := range img.Functions {
					out = append(out, fn{f.Name, f.RVA, f.Size})
				}
				return out
			}
			require.Equal(t, list(committed), list(img))
			if !bytes.Equal(data, fresh) {
				t.Logf("%s: same functions, different bytes (another compiler version?)", name)
			}
		})
	}
}
