package image

import (
	"bytes"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// largeGoPE builds cmd/go for windows/amd64 (about 15 MB; cached by
// testenv.GoBuild) and returns its bytes.
func largeGoPE(tb testing.TB) []byte {
	tb.Helper()
	path := cmdGoPE(tb, "amd64")
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(data) < 10<<20 {
		tb.Fatalf("%s is %d bytes: want a PE of 10+ MB", path, len(data))
	}
	return data
}

// cmdGoPE builds cmd/go for windows/goarch and returns its path.
func cmdGoPE(tb testing.TB, goarch string) string {
	tb.Helper()
	goTool := testenv.NeedTool(tb, "go")
	goroot, err := exec.Command(goTool, "env", "GOROOT").Output()
	if err != nil {
		tb.Fatalf("go env GOROOT: %v", err)
	}
	src := filepath.Join(strings.TrimSpace(string(goroot)), "src", "cmd", "go")
	return testenv.GoBuild(tb, src, "windows", goarch)
}

// BenchmarkOpenPE loads a Go-built windows/amd64 PE of 10+ MB from memory:
// "image" is Parse (headers, sections, COFF symbols, imports, relocations,
// .pdata, functions completed by the call scan, code hash); "debug-pe" is Go's
// debug/pe doing the comparable part of that work (headers, sections and
// their bytes, COFF symbols, imports), whose function list is its type-0x20
// COFF symbols. Both report functions/s.
func BenchmarkOpenPE(b *testing.B) {
	data := largeGoPE(b)
	b.Run("image", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		n := 0
		for b.Loop() {
			img, err := Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			n = len(img.Functions)
		}
		b.ReportMetric(float64(n), "functions")
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "functions/s")
	})
	b.Run("debug-pe", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		n := 0
		for b.Loop() {
			f, err := pe.NewFile(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range f.Sections {
				if _, err := s.Data(); err != nil && s.Size != 0 {
					b.Fatal(err)
				}
			}
			if _, err := f.ImportedSymbols(); err != nil {
				b.Fatal(err)
			}
			n = 0
			for _, s := range f.Symbols {
				if s.Type&0x30 == 0x20 && s.SectionNumber > 0 {
					n++
				}
			}
			f.Close()
		}
		b.ReportMetric(float64(n), "functions")
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "functions/s")
	})
}
