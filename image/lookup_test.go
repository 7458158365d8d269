package image

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// linearFunctionAt is the obvious oracle for FunctionAt.
func linearFunctionAt(img *Image, rva uint32) *Function {
	for i := range img.Functions {
		if img.Functions[i].Contains(rva) {
			return &img.Functions[i]
		}
	}
	return nil
}

func selfImage(t testing.TB) *Image {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	img, err := Open(exe)
	if err != nil {
		t.Skipf("test binary %s: %v", exe, err)
	}
	return img
}

func TestLookupsExhaustive(t *testing.T) {
	img, _ := fixture(t, "textrel-amd64.elf")
	require.Greater(t, len(img.Functions), 5)
	// Every RVA of the image and a little past it agrees with a linear scan.
	for rva := uint32(0); rva < img.Size+64; rva++ {
		got, ok := img.FunctionAt(rva)
		want := linearFunctionAt(img, rva)
		if want == nil {
			require.False(t, ok, "%#x", rva)
			continue
		}
		require.True(t, ok, "%#x", rva)
		require.Same(t, want, got, "%#x", rva)
	}
}

func TestLookupsEdges(t *testing.T) {
	for _, name := range []string{"textrel-amd64.elf", "textrel-arm64.elf", "self", "go linux/arm64"} {
		t.Run(name, func(t *testing.T) {
			var img *Image
			switch name {
			case "self":
				// go test links the native binary without .symtab: it has
				// the entry (sized by the gap) and a few dynamic symbols.
				// A binary built with go test -c, or the PE under Wine, has
				// thousands of functions.
				img = selfImage(t)
			case "go linux/arm64":
				var err error
				img, err = Open(testenv.GoBuild(t, "testdata/go/v1", "linux", "arm64"))
				require.NoError(t, err)
			default:
				img, _ = fixture(t, name)
			}
			fs := img.Functions
			require.NotEmpty(t, fs)
			gaps := 0
			for i := range fs {
				f := &fs[i]
				if i > 0 {
					require.Less(t, fs[i-1].RVA, f.RVA, "sorted")
					require.LessOrEqual(t, fs[i-1].End(), f.RVA, "non-overlapping")
				}
				require.NotZero(t, f.Size)
				for _, rva := range []uint32{f.RVA, f.RVA + f.Size/2, f.End() - 1} {
					got, ok := img.FunctionAt(rva)
					require.True(t, ok, "%s+%#x", f.Name, rva-f.RVA)
					require.Same(t, f, got)
				}
				// One past the end: the next function when adjacent, else nothing.
				got, ok := img.FunctionAt(f.End())
				if i+1 < len(fs) && fs[i+1].RVA == f.End() {
					require.True(t, ok)
					require.Same(t, &fs[i+1], got)
				} else {
					require.False(t, ok, "gap after %s", f.Name)
					gaps++
				}
				if f.Name != "" {
					byName, ok := img.FunctionByName(f.Name)
					require.True(t, ok, f.Name)
					require.Equal(t, f.RVA, byName.RVA)
				}
				// Code is the section's bytes.
				code, ok := img.Code(f)
				require.True(t, ok)
				require.Len(t, code, int(f.Size))
				s, ok := img.SectionAt(f.RVA)
				require.True(t, ok)
				require.NotZero(t, s.Flags&SectionExec)
				if int(f.End()-s.RVA) <= len(s.Data) {
					require.True(t, bytes.Equal(s.Data[f.RVA-s.RVA:f.End()-s.RVA], code), "Code(%s)", f.Name)
				}
			}
			t.Logf("%d functions, %d followed by a gap", len(fs), gaps)
			require.Positive(t, gaps, "alignment leaves gaps between some functions")
			_, ok := img.FunctionAt(fs[0].RVA - 1)
			require.False(t, ok, "before the first function")
			_, ok = img.FunctionByName("no such function")
			require.False(t, ok)

			for i := range img.Sections {
				s := &img.Sections[i]
				for _, rva := range []uint32{s.RVA, s.RVA + s.Size - 1} {
					got, ok := img.SectionAt(rva)
					require.True(t, ok)
					// Sections do not overlap: the one found is s.
					require.Equal(t, s.Name, got.Name)
				}
				b, ok := img.Bytes(s.RVA, int(s.Size))
				require.True(t, ok, s.Name)
				require.Len(t, b, int(s.Size))
				// The file's bytes, then zeros up to the mapped size (all of
				// it for .bss); compared without printing megabytes on failure.
				want := make([]byte, s.Size)
				copy(want, s.Data)
				require.True(t, bytes.Equal(want, b), "Bytes of all of %s", s.Name)
				_, ok = img.Bytes(s.RVA, int(s.Size)+1)
				require.False(t, ok, "one byte past %s", s.Name)
				_, ok = img.Bytes(s.RVA+s.Size-1, 2)
				require.False(t, ok, "straddling the end of %s", s.Name)
				last, ok := img.Bytes(s.RVA+s.Size-1, 1)
				require.True(t, ok)
				require.Len(t, last, 1)
				_, ok = img.Bytes(s.RVA, -1)
				require.False(t, ok)
			}
			_, ok = img.SectionAt(img.Size)
			require.False(t, ok, "one past the image")
		})
	}
}

// synthImage is an image with n functions of 16 bytes every 32 bytes.
func synthImage(n int) *Image {
	img := &Image{Sections: []Section{{Name: ".text", RVA: 0x1000, Size: uint32(n) * 32, Flags: SectionRead | SectionExec}}}
	for i := range n {
		img.Functions = append(img.Functions, Function{Name: fmt.Sprintf("f%d", i), RVA: 0x1000 + uint32(i)*32, Size: 16, Found: FromSymbol, Extent: FromSymbol})
	}
	if err := finish(img); err != nil {
		panic(err)
	}
	return img
}

// BenchmarkFunctionAt looks up random addresses; the time per lookup grows
// with log(n) (compare the sub-benchmarks), not with n.
func BenchmarkFunctionAt(b *testing.B) {
	for _, n := range []int{1_000, 10_000, 100_000, 1_000_000} {
		img := synthImage(n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			rvas := make([]uint32, 4096)
			for i := range rvas {
				rvas[i] = 0x1000 + r.Uint32N(uint32(n)*32)
			}
			found := 0
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, ok := img.FunctionAt(rvas[i&4095]); ok {
					found++
				}
			}
			if found == 0 {
				b.Fatal("nothing found")
			}
		})
	}
	b.Run("self", func(b *testing.B) {
		img := selfImage(b)
		fs := img.Functions
		b.ReportMetric(float64(len(fs)), "functions")
		for i := 0; b.Loop(); i++ {
			f := &fs[(i*7919)%len(fs)]
			if got, ok := img.FunctionAt(f.RVA + f.Size/2); !ok || got != f {
				b.Fatal("lookup failed")
			}
		}
	})
}

func BenchmarkFunctionByName(b *testing.B) {
	img := synthImage(100_000)
	for i := 0; b.Loop(); i++ {
		if _, ok := img.FunctionByName(img.Functions[(i*7919)%len(img.Functions)].Name); !ok {
			b.Fatal("lookup failed")
		}
	}
}
