package image

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPEStrippedRecall measures what the symbol table adds: each file is
// parsed as is and again with its COFF symbol table removed (as in an MSVC
// release build), where functions can only come from .pdata, exports, the
// entry point and direct calls. Every start found without symbols must be a
// start with them (the call scan never invents one), and the log reports
// how many of the symbol-table functions are still found.
func TestPEStrippedRecall(t *testing.T) {
	paths := peFixtures(t)
	if m, _ := filepath.Glob(filepath.Join(wineDLLDir, "*.dll")); len(m) > 0 {
		for i := 0; i < len(m); i += 50 {
			paths = append(paths, m[i])
		}
	}
	total, found := 0, 0
	for _, p := range paths {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		full, err := Parse(data)
		require.NoError(t, err, p)
		stripped := bytes.Clone(data)
		fh := int(binary.LittleEndian.Uint32(data[0x3c:])) + 4
		binary.LittleEndian.PutUint32(stripped[fh+8:], 0)
		binary.LittleEndian.PutUint32(stripped[fh+12:], 0)
		img, err := Parse(stripped)
		require.NoError(t, err, p)
		require.Empty(t, img.Symbols)

		starts := map[uint32]bool{}
		for _, f := range full.Functions {
			starts[f.RVA] = true
		}
		for _, f := range img.Functions {
			require.True(t, starts[f.RVA], "%s: start %#x (%s) found without symbols is no start with them", p, f.RVA, f.Found)
		}
		n, k := 0, 0
		for _, f := range full.Functions {
			if f.Found&FromSymbol == 0 {
				continue
			}
			n++
			if g, ok := img.FunctionAt(f.RVA); ok && g.RVA == f.RVA {
				k++
			}
		}
		total += n
		found += k
		t.Logf("%-24s %5d/%5d symbol functions found without symbols", filepath.Base(p), k, n)
	}
	t.Logf("TOTAL %d/%d (%.1f%%) symbol functions found without symbols", found, total, 100*float64(found)/float64(max(total, 1)))
}
