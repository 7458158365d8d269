//go:build amd64

package trampoline

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/x86/x86asm"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/trampoline/internal/amd64funcs"
)

// amdBlob is a compiled fixture (testdata/amd64/cfuncs-*.bin): flat code and
// read-only data linked at 0x10000, and its function symbols.
type amdBlob struct {
	code  []byte
	funcs []amdSym
}

type amdSym struct {
	name      string
	off, size int
	exported  bool
}

const amdBlobBase = 0x10000

func amdLoadBlob(t *testing.T, name string) amdBlob {
	t.Helper()
	dir := filepath.Join("testdata", "amd64")
	code, err := os.ReadFile(filepath.Join(dir, name+".bin"))
	require.NoError(t, err)
	f, err := os.Open(filepath.Join(dir, name+".sym"))
	require.NoError(t, err)
	defer f.Close()
	var b amdBlob
	b.code = code
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		require.Len(t, fs, 4, sc.Text())
		addr, err := strconv.ParseUint(fs[0], 16, 64)
		require.NoError(t, err)
		size, err := strconv.ParseUint(fs[1], 16, 64)
		require.NoError(t, err)
		b.funcs = append(b.funcs, amdSym{name: fs[3], off: int(addr - amdBlobBase), size: int(size), exported: fs[2] == "T"})
	}
	require.NoError(t, sc.Err())
	require.NotEmpty(t, b.funcs)
	return b
}

// amdTableTargets reads the jump table a function dispatches through (lea
// base,[rip+table] after cmp idx,N: N+1 int32 entries relative to base) from
// the loaded blob, as a caller holding the image would.
func amdTableTargets(t *testing.T, mem []byte, base uint64, fn []byte, addr uint64) []uint64 {
	t.Helper()
	insts, err := dec.DecodeAll(fn, addr)
	require.NoError(t, err)
	var n int64 = -1
	var out []uint64
	for k, in := range insts {
		if in.Op == x86asm.CMP {
			if imm, ok := in.Args[1].(x86asm.Imm); ok {
				n = int64(imm)
			}
		}
		if in.Op == x86asm.LEA && in.RelKind == dec.RIPDisp32 && n >= 0 && k+1 < len(insts) && amdLoadsFrom(insts[k+1], in.Args[0]) {
			tab := in.Target
			for k := int64(0); k <= n; k++ {
				e := int32(binary.LittleEndian.Uint32(mem[tab-base+uint64(4*k):]))
				out = append(out, tab+uint64(int64(e)))
			}
			return out
		}
	}
	return nil
}

// amdLoadsFrom reports whether in is movsxd r,[base+idx*4] with base the
// register lea wrote.
func amdLoadsFrom(in dec.Inst, base x86asm.Arg) bool {
	r, ok := base.(x86asm.Reg)
	m, isMem := in.Args[1].(x86asm.Mem)
	return ok && isMem && in.Op == x86asm.MOVSXD && dec.Family(m.Base) == dec.Family(r) && m.Scale == 4
}

var amdBlobArgs = [][2]uintptr{{0, 0}, {1, 3}, {2, 7}, {3, 5}, {4, 9}, {5, 1}, {6, 2}, {7, 30}, {8, 8}, {9, 4}, {10, 6}, {33, 3},
	{1<<40 | 8, 2}, {^uintptr(4), ^uintptr(1)}, {0x1234, 0x65}}

// TestAMD64ExecCompiled relocates and detours every function of the gcc and
// clang fixtures (a jump-table switch, RIP-relative tables and SSE
// constants, loops, calls, a tail call, recursion, a 5-byte function) and
// compares every result with the original's.
func TestAMD64ExecCompiled(t *testing.T) {
	amdNeedExec(t)
	for _, blobName := range []string{"cfuncs-gcc", "cfuncs-clang"} {
		t.Run(blobName, func(t *testing.T) {
			b := amdLoadBlob(t, blobName)
			// The blob runs anywhere (-fPIE): load it near the replacement so
			// entry jumps are 5 bytes.
			own := amdAlloc(t, amd64funcs.ReplacementAddr(), false)
			require.NoError(t, own.Write(0, b.code))
			base := uint64(own.Addr())
			snapshot, err := own.Read(0, own.Size())
			require.NoError(t, err)
			mem := snapshot
			for _, s := range b.funcs {
				if !s.exported {
					continue
				}
				fn := mem[s.off : s.off+s.size]
				addr := base + uint64(s.off)
				want := make([]uintptr, len(amdBlobArgs))
				for k, a := range amdBlobArgs {
					want[k] = execmem.Call(uintptr(addr), a[0], a[1])
				}
				check := func(t *testing.T, at uint64, delta uintptr, what string) {
					t.Helper()
					for k, a := range amdBlobArgs {
						require.Equal(t, want[k]+delta, execmem.Call(uintptr(at), a[0], a[1]), "%s(%#x, %#x)", what, a[0], a[1])
					}
				}
				t.Run(s.name+"/relocate", func(t *testing.T) {
					// The whole function moves; a jump table's lea keeps
					// pointing at the old table and so into the old, intact
					// code (no Options.Function: nothing overwrites it here).
					for _, far := range []bool{false, true} {
						r := amdAlloc(t, uintptr(addr), far)
						rel, err := Relocate(AMD64, fn, addr, uint64(r.Addr()), nil)
						require.NoError(t, err)
						require.NoError(t, amdVerifyRelocation(fn, addr, uint64(r.Addr()), nil, rel))
						require.NoError(t, r.Write(0, rel.Code))
						check(t, uint64(r.Addr()), 0, "relocated")
					}
				})
				t.Run(s.name+"/detour", func(t *testing.T) {
					tr := amdAlloc(t, uintptr(addr), false)
					opts := &Options{}
					targets := amdTableTargets(t, mem, base, fn, addr)
					require.Equal(t, s.name == "c_switch", targets != nil, "only c_switch has a jump table")
					if targets != nil {
						_, err := NewDetour(AMD64, addr, fn, uint64(amd64funcs.ReplacementAddr()), uint64(tr.Addr()), opts)
						require.ErrorIs(t, err, ErrJumpTable, "a switch without its table's targets is refused")
						opts.JumpTableTargets = targets
					}
					d, err := NewDetour(AMD64, addr, fn, uint64(amd64funcs.ReplacementAddr()), uint64(tr.Addr()), opts)
					require.NoError(t, err)
					require.NoError(t, tr.Write(0, d.Code))
					amd64funcs.SetReplacementTarget(tr.Addr())
					require.NoError(t, own.Write(s.off, d.Entry))
					check(t, addr, 1000, "detoured")
					check(t, uint64(tr.Addr()), 0, "trampoline")
					require.NoError(t, own.Write(s.off, d.Original))
					after, err := own.Read(0, own.Size())
					require.NoError(t, err)
					require.True(t, bytes.Equal(snapshot, after), "removal restores every byte")
					check(t, addr, 0, "restored")
				})
			}
		})
	}
}

// TestAMD64FixtureReproducible rebuilds the compiled fixtures with build.sh
// and requires the committed blobs to match.
func TestAMD64FixtureReproducible(t *testing.T) {
	for _, tool := range [][]string{{"gcc"}, {"clang", "clang-14"}, {"ld.lld", "ld.lld-14"}, {"llvm-objcopy", "llvm-objcopy-14"}, {"llvm-nm", "llvm-nm-14"}} {
		testenv.NeedHostTool(t, tool...)
	}
	testenv.RequireRebuild(t, filepath.Join("testdata", "amd64"), "cfuncs-gcc.bin", "cfuncs-gcc.sym", "cfuncs-clang.bin", "cfuncs-clang.sym")
}
