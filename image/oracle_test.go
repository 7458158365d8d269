package image

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// oracleFunc is a function as llvm-readelf's symbol table says it is.
type oracleFunc struct {
	rva   uint32
	size  uint64
	names []string
	name  string // the alias the documented rule picks
}

// readelfFunctions lists the STT_FUNC/STT_GNU_IFUNC symbols with a size in
// executable sections of .symtab (else .dynsym, as parseELF does), grouped
// by address, relative to base.
func readelfFunctions(t *testing.T, tool, path string, base uint64) []oracleFunc {
	t.Helper()
	out, err := exec.Command(tool, "-SsW", path).Output()
	require.NoError(t, err)
	execSec := map[string]bool{} // section index -> executable
	type sym struct {
		value, size uint64
		bind, name  string
	}
	tables := map[string][]sym{}
	table := ""
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "[") && strings.Contains(line, "]") && len(f) >= 9:
			// [Nr] Name Type Address Off Size ES Flg Lk Inf Al (Flg may be empty)
			rest := strings.Fields(line[strings.Index(line, "]")+1:])
			idx := strings.Trim(line[strings.Index(line, "[")+1:strings.Index(line, "]")], " ")
			if len(rest) == 10 {
				execSec[idx] = strings.Contains(rest[6], "X")
			}
		case strings.HasPrefix(line, "Symbol table '"):
			table = strings.Split(line, "'")[1]
		case table != "" && len(f) >= 8 && strings.HasSuffix(f[0], ":") && f[0] != "Num:":
			typ := f[3]
			if typ != "FUNC" && typ != "IFUNC" {
				continue
			}
			size, err := strconv.ParseUint(f[2], 0, 64)
			require.NoError(t, err, line)
			value, err := strconv.ParseUint(f[1], 16, 64)
			require.NoError(t, err, line)
			// Num Value Size Type Bind Vis [annotations] Ndx Name (Go names hold spaces)
			i := 6
			if strings.HasPrefix(f[i], "[") {
				for i < len(f)-1 && !strings.HasSuffix(f[i], "]") {
					i++
				}
				i++
			}
			if i >= len(f) {
				continue
			}
			ndx, name := f[i], strings.Join(f[i+1:], " ")
			if size == 0 || !execSec[ndx] {
				continue
			}
			name, _, _ = strings.Cut(name, "@")
			tables[table] = append(tables[table], sym{value, size, f[4], name})
		}
	}
	syms, ok := tables[".symtab"]
	if !ok {
		syms = tables[".dynsym"]
	}
	bindRank := map[string]int{"GLOBAL": 0, "WEAK": 1}
	rank := func(b string) int {
		if r, ok := bindRank[b]; ok {
			return r
		}
		return 2
	}
	slices.SortFunc(syms, func(a, b sym) int {
		return cmp.Or(cmp.Compare(a.value, b.value), cmp.Compare(rank(a.bind), rank(b.bind)),
			cmp.Compare(len(a.name), len(b.name)), cmp.Compare(a.name, b.name))
	})
	var fs []oracleFunc
	for _, s := range syms {
		rva := uint32(s.value - base)
		if n := len(fs); n > 0 && fs[n-1].rva == rva {
			fs[n-1].size = max(fs[n-1].size, s.size)
			fs[n-1].names = append(fs[n-1].names, s.name)
			continue
		}
		fs = append(fs, oracleFunc{rva: rva, size: s.size, names: []string{s.name}, name: s.name})
	}
	return fs
}

// TestELFFunctionsOracle compares the function list with llvm-readelf's
// symbol table on every ELF fixture, Go builds for both architectures and
// the system's libc: every sized function symbol is a function with the
// alias rule's name and the symbol's size, except where it runs into the
// next function (nested entry points), where it is truncated there.
func TestELFFunctionsOracle(t *testing.T) {
	tool := testenv.NeedHostTool(t, "llvm-readelf-14", "llvm-readelf")
	targets := map[string]func(t *testing.T) string{
		"textrel-amd64.elf": func(t *testing.T) string { return filepath.Join("testdata", "textrel-amd64.elf") },
		"textrel-arm64.elf": func(t *testing.T) string { return filepath.Join("testdata", "textrel-arm64.elf") },
		"c-v1-amd64.elf (gcc)": func(t *testing.T) string {
			return testenv.Testdata(t, "bin", "c-v1-amd64.elf")
		},
		"c-v1-arm64.elf (aarch64 gcc, static)": func(t *testing.T) string {
			return testenv.Testdata(t, "bin", "c-v1-arm64.elf")
		},
		"gcc -static amd64 (built now)": func(t *testing.T) string {
			gcc := testenv.NeedHostTool(t, "gcc")
			out := filepath.Join(t.TempDir(), "static.elf")
			b, err := exec.Command(gcc, "-O2", "-static", "-DWITH_MAIN", "-o", out, filepath.Join("testdata", "textrel.c")).CombinedOutput()
			require.NoError(t, err, "%s", b)
			return out
		},
		"go linux/amd64": func(t *testing.T) string {
			return testenv.GoBuild(t, "testdata/go/v1", "linux", "amd64")
		},
		"go linux/arm64": func(t *testing.T) string {
			return testenv.GoBuild(t, "testdata/go/v1", "linux", "arm64")
		},
		"go linux/amd64 pie": func(t *testing.T) string {
			return testenv.GoBuild(t, "testdata/go/v1", "linux", "amd64", "-buildmode=pie")
		},
		"libc.so.6 (system, .dynsym only)": func(t *testing.T) string {
			const p = "/lib/x86_64-linux-gnu/libc.so.6"
			if _, err := os.Stat(p); err != nil {
				t.Skipf("no %s on this machine", p)
			}
			return p
		},
	}
	names := make([]string, 0, len(targets))
	for n := range targets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			path := targets[name](t)
			img, err := Open(path)
			require.NoError(t, err)
			oracle := readelfFunctions(t, tool, path, img.Base)
			require.NotEmpty(t, oracle)

			var found, named, sized, truncated int
			for _, o := range oracle {
				f, ok := img.FunctionAt(o.rva)
				if !ok || f.RVA != o.rva {
					t.Errorf("%s at %#x: no function starts there", o.name, o.rva)
					continue
				}
				found++
				if f.Name == o.name {
					named++
				} else {
					t.Errorf("%#x: named %q, oracle's aliases %v pick %q", o.rva, f.Name, o.names, o.name)
				}
				switch {
				case f.Extent == FromSymbol && uint64(f.Size) == o.size:
					sized++
				case f.Extent == FromGap && uint64(f.Size) < o.size:
					// Truncated: it must end exactly where the next function starts.
					next, ok := img.FunctionAt(f.End())
					require.True(t, ok, "%s truncated at %#x, no function there", f.Name, f.End())
					require.Equal(t, f.End(), next.RVA)
					truncated++
				default:
					t.Errorf("%s at %#x: size %#x (%s), oracle %#x", f.Name, f.RVA, f.Size, f.Extent, o.size)
				}
			}
			starts := map[uint32]bool{}
			for _, o := range oracle {
				starts[o.rva] = true
			}
			var extra []string
			for _, f := range img.Functions {
				if !starts[f.RVA] && len(extra) < 6 {
					extra = append(extra, fmt.Sprintf("%s@%#x(%s)", f.Name, f.RVA, f.Found))
				}
			}
			t.Logf("%s: oracle %d functions; found %d (%.1f%%), names agree %d, sizes agree %d, truncated at a nested entry %d; image has %d functions (%d beyond the oracle), %d dropped",
				name, len(oracle), found, 100*float64(found)/float64(len(oracle)), named, sized, truncated,
				len(img.Functions), len(img.Functions)-found, len(img.Dropped))
			if len(extra) > 0 {
				t.Logf("  beyond the oracle, e.g. %v", extra)
			}
			require.Equal(t, len(oracle), found)
			require.Equal(t, len(oracle), named)
			require.Equal(t, len(oracle), sized+truncated)
		})
	}
}
