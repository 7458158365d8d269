package image

import (
	"debug/gosym"
	"encoding/binary"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// TestPEGoFunctionExtents checks the functions of Go-built PE files against
// Go's own function table (pclntab, read with debug/gosym): every Go
// function is one of ours, with the same start, and ends no later than Go's
// padded end with only padding bytes in between: the padding trim never
// cuts code and never leaves code out. windows/arm64 has no .pdata, so all
// its sizes come from the COFF symbols and the trim. HOTPATCH_PE_LARGE=1 also
// checks cmd/go (about 15000 functions per architecture; the first build
// takes minutes, then testenv.GoBuild caches it).
func TestPEGoFunctionExtents(t *testing.T) {
	if !testenv.HostExec() {
		t.Skip("needs the go tool")
	}
	type target struct{ name, goarch string }
	targets := []target{{"v1", "amd64"}, {"v1", "arm64"}}
	if os.Getenv("HOTPATCH_PE_LARGE") == "1" {
		targets = append(targets, target{"cmd/go", "amd64"}, target{"cmd/go", "arm64"})
	}
	for _, tg := range targets {
		goarch := tg.goarch
		t.Run(tg.name+"/"+goarch, func(t *testing.T) {
			path := ""
			if tg.name == "v1" {
				path = testenv.GoBuild(t, "testdata/go/v1", "windows", goarch)
			} else {
				path = cmdGoPE(t, goarch)
			}
			img, err := Open(path)
			require.NoError(t, err)
			sym := func(name string) uint32 {
				for _, s := range img.Symbols {
					if s.Name == name {
						return s.RVA
					}
				}
				t.Fatalf("no symbol %s", name)
				return 0
			}
			start, end := sym("runtime.pclntab"), sym("runtime.epclntab")
			pcln, ok := img.Bytes(start, int(end-start))
			require.True(t, ok)
			text := img.Base + uint64(sym("runtime.text"))
			tab, err := gosym.NewTable(nil, gosym.NewLineTable(pcln, text))
			require.NoError(t, err)

			// Go's End includes the function's alignment padding (INT3 on
			// amd64, NOP and zero words on arm64): our function must end at
			// or before it, with nothing but padding in between.
			isPad := func(tail []byte, i int) bool { return tail[i] == 0xcc }
			if goarch == "arm64" {
				isPad = func(tail []byte, i int) bool {
					w := binary.LittleEndian.Uint32(tail[i&^3:])
					return len(tail)%4 == 0 && (w == 0 || w == 0xd503201f)
				}
			}
			exact, trimmed := 0, 0
			for _, fn := range tab.Funcs {
				if strings.HasPrefix(fn.Name, "go:textfips") {
					continue // section markers, no code
				}
				rva := uint32(fn.Entry - img.Base)
				f, ok := img.FunctionAt(rva)
				require.True(t, ok && f.RVA == rva, "Go function %s at %#x is not a function start", fn.Name, rva)
				want := uint32(fn.End - fn.Entry)
				if f.Size > want {
					t.Errorf("%s at %#x: size %#x (%s), Go says %#x", fn.Name, rva, f.Size, f.Extent, want)
					continue
				}
				tail, ok := img.Bytes(f.End(), int(want-f.Size))
				require.True(t, ok)
				if len(tail) == 0 {
					exact++
					continue
				}
				trimmed++
				for i, b := range tail {
					if !isPad(tail, i) {
						t.Errorf("%s at %#x: size %#x (%s), Go says %#x, and byte %#x after our end is %#x, not padding",
							fn.Name, rva, f.Size, f.Extent, want, i, b)
						break
					}
				}
			}
			t.Logf("%s windows/%s: %d Go functions: %d end where Go's padded size does, %d earlier with only padding in between",
				tg.name, goarch, len(tab.Funcs), exact, trimmed)
		})
	}
}
