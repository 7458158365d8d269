package trampoline

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/stretchr/testify/require"
)

// a64Fixture is testdata/arm64/funcs.bin loaded into executable memory.
type a64Fixture struct {
	bin  []byte
	syms map[string][2]int // name -> offset, size
	mem  *execmem.Region
}

func (f *a64Fixture) addr(name string) uint64 { return uint64(f.mem.Addr()) + uint64(f.syms[name][0]) }
func (f *a64Fixture) code(name string) []byte {
	s := f.syms[name]
	return f.bin[s[0] : s[0]+s[1]]
}

// readA64Fixture reads funcs.bin and funcs.sym (llvm-nm -S -n output; the
// blob was linked at 0x10000).
func readA64Fixture(t *testing.T, dir string) *a64Fixture {
	t.Helper()
	return readA64Blob(t, dir, "funcs")
}

// readA64Blob reads name.bin and name.sym from dir.
func readA64Blob(t *testing.T, dir, name string) *a64Fixture {
	t.Helper()
	bin, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	require.NoError(t, err)
	symText, err := os.ReadFile(filepath.Join(dir, name+".sym"))
	require.NoError(t, err)
	f := &a64Fixture{bin: bin, syms: map[string][2]int{}}
	sc := bufio.NewScanner(bytes.NewReader(symText))
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		require.Len(t, fs, 4, sc.Text())
		a, err := strconv.ParseUint(fs[0], 16, 64)
		require.NoError(t, err)
		n, err := strconv.ParseUint(fs[1], 16, 64)
		require.NoError(t, err)
		f.syms[fs[3]] = [2]int{int(a - 0x10000), int(n)}
	}
	return f
}

// needARM64Exec skips unless this test binary runs on arm64 (natively or
// under qemu-aarch64-static), where the relocated code can be called.
func needARM64Exec(t *testing.T) {
	t.Helper()
	if runtime.GOARCH != "arm64" || runtime.GOOS != "linux" {
		t.Skipf("executes ARM64 code: run `GOARCH=arm64 go test -exec qemu-aarch64-static ./trampoline/` (this is %s/%s)", runtime.GOOS, runtime.GOARCH)
	}
}

// loadA64Fixture maps the fixture blob at the start of a 64 KiB region (page
// aligned, so its ADRP pairs hold) and leaves room behind it for copies.
func loadA64Fixture(t *testing.T) *a64Fixture {
	t.Helper()
	return loadA64Blob(t, "funcs")
}

// loadA64Blob is loadA64Fixture for testdata/arm64/name.bin.
func loadA64Blob(t *testing.T, name string) *a64Fixture {
	t.Helper()
	needARM64Exec(t)
	f := readA64Blob(t, filepath.Join("testdata", "arm64"), name)
	mem, err := execmem.Alloc(64 << 10)
	require.NoError(t, err)
	t.Cleanup(func() { mem.Free() })
	require.NoError(t, mem.Write(0, f.bin))
	f.mem = mem
	return f
}

// a64Place is somewhere relocated code is written.
type a64Place struct {
	name     string
	mem      *execmem.Region
	off      int
	forceFar bool
}

func (p a64Place) addr() uint64 { return uint64(p.mem.Addr()) + uint64(p.off) }

// a64Places returns copies near the fixture (same region, past TBZ reach),
// 2 MiB+ away (past imm19 and ADR), 8 GiB+ away (past B and ADRP), and near
// with ForceFar.
func a64Places(t *testing.T, f *a64Fixture) []a64Place {
	t.Helper()
	from := f.mem.Addr()
	mid, err := execmem.AllocFar(from, 64<<10, 2<<20)
	require.NoError(t, err)
	t.Cleanup(func() { mid.Free() })
	far, err := execmem.AllocFar(from, 64<<10, 8<<30)
	require.NoError(t, err)
	t.Cleanup(func() { far.Free() })
	d := func(r *execmem.Region) string {
		return fmt.Sprintf("%+#x", int64(r.Addr()-from))
	}
	t.Logf("fixture at %#x; mid region %s, far region %s", from, d(mid), d(far))
	return []a64Place{
		{"near+0x8000", f.mem, 0x8000, false},
		{"mid" + d(mid), mid, 0x100, false},
		{"far" + d(far), far, 0x100, false},
		{"near+0x8000/ForceFar", f.mem, 0x9000, true},
	}
}

// a64Cases are the fixture functions, the argument pairs they are called
// with, and the result each must give (also checked on the original).
var a64Cases = []struct {
	fn   string
	args [][2]uint64
	want []uint64
}{
	{"f_b_out", [][2]uint64{{5, 0}}, []uint64{6}},
	{"f_b_in", [][2]uint64{{3, 0}, {10, 0}}, []uint64{2, 110}},
	{"f_bl", [][2]uint64{{5, 0}}, []uint64{16}},
	{"f_bl_in", [][2]uint64{{5, 0}}, []uint64{12}},
	{"f_bcond", [][2]uint64{{4, 4}, {9, 4}, {1, 4}}, []uint64{42, 1000, 7}},
	{"f_cbz", [][2]uint64{{0, 1}, {3, 1}, {3, 1 << 32}}, []uint64{1000, 42, 5}},
	{"f_tbz", [][2]uint64{{5, 0}, {1<<40 | 8, 0}, {1 << 40, 0}}, []uint64{6, 3 * (1<<40 | 8), 9}},
	{"f_adr", [][2]uint64{{5, 0}}, []uint64{3 * (5 + 0x1000 + 0x30)}},
	{"f_adrp", [][2]uint64{{5, 0}}, []uint64{5 + 0x20000 + 0x30000300}},
	{"f_ldr_lit", [][2]uint64{{5, 0}}, []uint64{5 + 0xfffffff0 + 0x123456789 - 16 + 2 + 1000 + 5 + 0x700000000}},
	{"f_x16", [][2]uint64{{5, 0}, {5, 1}}, []uint64{42, 10}},
	{"f_x17", [][2]uint64{{5, 0}, {5, 1}}, []uint64{42, 10}},
	{"f_x16x17", [][2]uint64{{5, 0}, {5, 3}}, []uint64{42, 8}},
	{"f_switch", [][2]uint64{{0, 0}, {1, 0}, {2, 0}, {3, 0}, {4, 0}}, []uint64{3, 9, 17, 4, 99}},
	{"f_detour", [][2]uint64{{5, 0}}, []uint64{13}},
	{"f_loop_in", [][2]uint64{{4, 0}}, []uint64{10}},
	{"f_loop_into", [][2]uint64{{4, 0}}, []uint64{10}},
	{"f_bti", [][2]uint64{{5, 0}}, []uint64{26}},
}

// TestARM64ExecRelocated relocates every fixture function whole to each
// place, calls the copy and compares with the original. Refusals must be the
// documented ones: x16x17 far (both scratch registers live) and the switch
// whenever its layout changes.
func TestARM64ExecRelocated(t *testing.T) {
	f := loadA64Fixture(t)
	places := a64Places(t, f)
	ran, refused := 0, 0
	for _, c := range a64Cases {
		from := f.addr(c.fn)
		for k, a := range c.args {
			require.Equal(t, c.want[k], a64Call(from, a[0], a[1]), "original %s%v", c.fn, a)
		}
		for _, p := range places {
			name := c.fn + "/" + p.name
			rel, err := Relocate(ARM64, f.code(c.fn), from, p.addr(), &Options{ForceFar: p.forceFar})
			if err != nil {
				far := p.forceFar || strings.HasPrefix(p.name, "far")
				switch {
				case c.fn == "f_x16x17" && far:
					require.ErrorIs(t, err, ErrUnrelocatable, name)
					require.ErrorContains(t, err, "x16 and x17", name)
				case c.fn == "f_switch" && far:
					require.ErrorIs(t, err, ErrUnrelocatable, name)
					require.ErrorContains(t, err, "jump table", name)
				default:
					require.NoError(t, err, name)
				}
				refused++
				continue
			}
			require.NoError(t, p.mem.Write(p.off, rel.Code), name)
			for k, a := range c.args {
				got := a64Call(p.addr(), a[0], a[1])
				require.Equal(t, c.want[k], got, "%s%v (rewritten %d, %d -> %d bytes)", name, a, rel.Rewritten, len(f.code(c.fn)), len(rel.Code))
				ran++
			}
		}
	}
	t.Logf("%d calls of relocated code gave the original results; %d relocations refused as documented", ran, refused)
}

// TestARM64FixtureReproducible rebuilds funcs.bin/funcs.sym from funcs.s and
// compares them with the committed files.
func TestARM64FixtureReproducible(t *testing.T) {
	for _, tool := range []string{"llvm-mc", "ld.lld", "llvm-objcopy", "llvm-nm"} {
		testenv.NeedHostTool(t, tool)
	}
	for _, tool := range []string{"aarch64-linux-gnu-gcc", "clang"} {
		testenv.NeedHostTool(t, tool)
	}
	testenv.RequireRebuild(t, filepath.Join("testdata", "arm64"), "funcs.bin", "funcs.sym", "cfuncs-gcc.bin", "cfuncs-gcc.sym", "cfuncs-clang.bin", "cfuncs-clang.sym")
	// The committed symbols cover every function the execution tests call.
	f := readA64Fixture(t, filepath.Join("testdata", "arm64"))
	for _, c := range a64Cases {
		require.Contains(t, f.syms, c.fn)
		require.Positive(t, f.syms[c.fn][1], c.fn)
	}
}
