package trampoline

import (
	"errors"
	"sort"
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/stretchr/testify/require"
)

// a64CompiledArgs are the argument pairs every compiled function is called
// with (small first arguments: c_recurse is exponential in x).
var a64CompiledArgs = [][2]uint64{
	{0, 5}, {1, 5}, {2, ^uint64(2)}, {3, 7}, {4, 1}, {5, 2}, {6, 9}, {7, 12}, {8, 4}, {9, 1}, {11, 3},
	{1<<40 | 8, 2}, {1 << 40, 3},
}

// TestARM64ExecCompiled relocates every function gcc -O2 and clang -O2
// -mcmodel=tiny made of cfuncs.c, whole, to every place, and calls each copy
// with every argument pair; then detours each one near and far and calls it
// through a replacement and through the trampoline. The only refusals
// allowed are the documented ones (a jump table whose layout changed, a
// branch back into a far entry's bytes), and each is counted.
func TestARM64ExecCompiled(t *testing.T) {
	for _, blob := range []string{"cfuncs-gcc", "cfuncs-clang"} {
		t.Run(blob, func(t *testing.T) {
			f := loadA64Blob(t, blob)
			places := a64Places(t, f)
			far, err := execmem.AllocFar(f.mem.Addr(), 64<<10, 8<<30)
			require.NoError(t, err)
			t.Cleanup(func() { far.Free() })
			var names []string
			for n := range f.syms {
				names = append(names, n)
			}
			sort.Strings(names)
			calls, refusedTable, refusedInto, detours := 0, 0, 0, 0
			for _, fn := range names {
				if fn[:2] != "c_" {
					continue
				}
				from := f.addr(fn)
				args := a64CompiledArgs
				if fn == "c_recurse" {
					args = args[:11]
				}
				want := make([]uint64, len(args))
				for k, a := range args {
					want[k] = a64Call(from, a[0], a[1])
				}
				for _, p := range places {
					rel, err := Relocate(ARM64, f.code(fn), from, p.addr(), &Options{ForceFar: p.forceFar})
					if err != nil {
						require.ErrorIs(t, err, ErrUnrelocatable, fn+"/"+p.name)
						require.ErrorContains(t, err, "jump table", fn+"/"+p.name)
						refusedTable++
						continue
					}
					require.NoError(t, p.mem.Write(p.off, rel.Code))
					for k, a := range args {
						require.Equal(t, want[k], a64Call(p.addr(), a[0], a[1]), "%s/%s%v", fn, p.name, a)
						calls++
					}
				}
				for _, isFar := range []bool{false, true} {
					mem := f.mem
					replOff, trampOff := 0xA000, 0xB000
					if isFar {
						mem, replOff, trampOff = far, 0x1000, 0x2000
					}
					repl, tramp := uint64(mem.Addr())+uint64(replOff), uint64(mem.Addr())+uint64(trampOff)
					d, err := NewDetour(ARM64, from, f.code(fn), repl, tramp, nil)
					if (errors.Is(err, ErrBranchIntoMoved) || errors.Is(err, ErrJumpTable)) && isFar {
						refusedInto++
						continue
					}
					require.NoError(t, err, fn)
					off := int(from - uint64(f.mem.Addr()))
					require.NoError(t, mem.Write(trampOff, d.Code))
					require.NoError(t, mem.Write(replOff, a64Replacement(tramp)))
					require.NoError(t, f.mem.Write(off, d.Entry))
					for k, a := range args {
						if fn == "c_recurse" {
							break // its recursive calls are detoured too: no simple expectation
						}
						require.Equal(t, want[k]+1000, a64Call(from, a[0], a[1]), "%s detour far=%v %v", fn, isFar, a)
						require.Equal(t, want[k], a64Call(tramp, a[0], a[1]), "%s trampoline far=%v %v", fn, isFar, a)
					}
					require.NoError(t, f.mem.Write(off, d.Original))
					got, err := f.mem.Read(off, len(d.Original))
					require.NoError(t, err)
					require.Equal(t, f.code(fn)[:len(d.Original)], got)
					detours++
				}
			}
			t.Logf("%s: %d calls of relocated copies matched; %d detours ran; refused: %d jump-table relocations, %d far detours (branch or jump table into the entry)", blob, calls, detours, refusedTable, refusedInto)
		})
	}
}
