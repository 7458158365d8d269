//go:build amd64

package trampoline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/cpu"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/seed3bccf95f/hotpatch/trampoline/internal/amd64funcs"
)

// amdArgs are the arguments every test function is called with.
var amdArgs = []uintptr{0, 1, 5, 9, 10, 11, 0x1111, 12345, 1 << 20}

// amdNeedExec skips a test that calls machine code where execmem cannot
// (any platform but Linux today: the Windows leg runs under Wine).
func amdNeedExec(t *testing.T) {
	t.Helper()
	r, err := execmem.Alloc(1)
	if errors.Is(err, execmem.ErrUnsupported) {
		t.Skipf("%v", err)
	}
	require.NoError(t, err)
	require.NoError(t, r.Free())
}

// amdAlloc returns executable memory for a copy of code at from: near
// (within rel32 reach), or far (more than 4 GiB away, so that every rel32
// and disp32 that leaves the copy is out of reach).
func amdAlloc(t *testing.T, from uintptr, far bool) *execmem.Region {
	t.Helper()
	var r *execmem.Region
	var err error
	if far {
		r, err = execmem.AllocFar(from, 4096, 1<<32)
	} else {
		r, err = execmem.AllocNear(from, 4096, 1<<31-1<<20)
	}
	if errors.Is(err, execmem.ErrUnsupported) {
		t.Skipf("%v", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Free() })
	if far {
		d := int64(r.Addr() - from)
		require.True(t, d >= 1<<32 || d <= -1<<32, "far region %#x from %#x", r.Addr(), from)
	}
	return r
}

// amdTrampoline relocates run (the first bytes of the function at from) to
// the region and appends the jump back to the rest of the original, like a
// detour trampoline; it returns the relocation.
func amdTrampoline(t *testing.T, r *execmem.Region, fn []byte, from uintptr, n int, opts Options) *Relocation {
	t.Helper()
	to := uint64(r.Addr())
	opts.Function, opts.FunctionAddr = fn, uint64(from)
	rel, err := Relocate(AMD64, fn[:n], uint64(from), to, &opts)
	require.NoError(t, err)
	require.NoError(t, amdVerifyRelocation(fn[:n], uint64(from), to, &opts, rel))
	code := append([]byte(nil), rel.Code...)
	if n < len(fn) {
		back, err := EncodeJump(AMD64, to+uint64(len(code)), uint64(from)+uint64(n))
		require.NoError(t, err)
		code = append(code, back...)
	}
	require.NoError(t, r.Write(0, code))
	return rel
}

// TestAMD64ExecRelocated relocates real functions (Go assembly, one per
// PC-relative class) to fresh executable memory near and far, with and
// without ForceFar, calls the copies and compares with the originals.
func TestAMD64ExecRelocated(t *testing.T) {
	amdNeedExec(t)
	modes := []struct {
		name     string
		far      bool
		forceFar bool
	}{{"near", false, false}, {"near-forcefar", false, true}, {"far", true, false}}
	cases := 0
	for _, f := range amd64funcs.All() {
		if f.Name == "LoopBackIntoRun" || f.Name == "RetEarly" {
			continue // refused: see TestAMD64ExecRefused
		}
		if f.Mid {
			continue // see TestAMD64ExecMidFunction
		}
		for _, m := range modes {
			t.Run(f.Name+"/"+m.name, func(t *testing.T) {
				if f.NeedAVX && !cpu.X86.HasAVX {
					t.Skip("CPU without AVX: the VEX function cannot run here (the relocation is still checked in TestAMD64RelocateForms)")
				}
				fn := f.Code()
				require.NotEmpty(t, fn, "End marker not found")
				n := amd64funcs.SplitOffset(fn, f.Addr)
				if n < 0 {
					n = len(fn)
				}
				for _, x := range amdArgs {
					require.Equal(t, f.Want(x), execmem.Call(f.Addr, x), "original(%d)", x)
				}
				r := amdAlloc(t, f.Addr, m.far)
				rel := amdTrampoline(t, r, fn, f.Addr, n, Options{ForceFar: m.forceFar})
				t.Logf("%d bytes -> %d bytes, %d rewritten", n, len(rel.Code), rel.Rewritten)
				for _, x := range amdArgs {
					require.Equal(t, f.Want(x), execmem.Call(r.Addr(), x), "relocated(%d)", x)
				}
				cases++
			})
		}
	}
	t.Logf("%d relocated functions executed", cases)
}

// TestAMD64ExecLeaFarOutOfReach: lea rcx,[rip+x] whose target is beyond
// rel32 reach after the move becomes mov rcx,imm64, and runs.
func TestAMD64ExecLeaFarOutOfReach(t *testing.T) {
	amdNeedExec(t)
	f, ok := amd64funcs.Find("LeaRIP")
	require.True(t, ok)
	fn := f.Code()
	r := amdAlloc(t, f.Addr, true)
	rel := amdTrampoline(t, r, fn, f.Addr, len(fn), Options{})
	require.Equal(t, []byte{0x48, 0xb9}, rel.Code[:2], "mov rcx, imm64")
	require.Equal(t, f.Want(7), execmem.Call(r.Addr(), 7))
}

// TestAMD64ExecThunks: an entry that is already a jump (a rel32 hook someone
// placed, an import thunk jmp [rip+x]) is followed, near and far.
func TestAMD64ExecThunks(t *testing.T) {
	amdNeedExec(t)
	target, ok := amd64funcs.Find("MovRIP")
	require.True(t, ok)
	for _, far := range []bool{false, true} {
		t.Run(fmt.Sprintf("jmp[rip]/far=%v", far), func(t *testing.T) {
			// An import thunk in executable memory: jmp [rip+0x3a]; the slot
			// at offset 0x40 holds the function's address.
			thunk := amdAlloc(t, target.Addr, false)
			code := make([]byte, 0x48)
			copy(code, []byte{0xff, 0x25, 0x3a, 0x00, 0x00, 0x00})
			for i := 6; i < 0x40; i++ {
				code[i] = 0xcc
			}
			binary.LittleEndian.PutUint64(code[0x40:], uint64(target.Addr))
			require.NoError(t, thunk.Write(0, code))
			require.Equal(t, target.Want(3), execmem.Call(thunk.Addr(), 3))

			r := amdAlloc(t, thunk.Addr(), far)
			amdTrampoline(t, r, code[:6], thunk.Addr(), 6, Options{})
			for _, x := range amdArgs {
				require.Equal(t, target.Want(x), execmem.Call(r.Addr(), x))
			}
		})
	}
}

// TestAMD64ExecRefused: the cases that broke other hookers are refused by
// name rather than producing wrong code.
func TestAMD64ExecRefused(t *testing.T) {
	f, ok := amd64funcs.Find("LoopBackIntoRun")
	require.True(t, ok)
	fn := f.Code()
	n := amd64funcs.SplitOffset(fn, f.Addr)
	require.Positive(t, n)
	_, err := Relocate(AMD64, fn[:n], uint64(f.Addr), uint64(f.Addr)+0x1000, &Options{Function: fn, FunctionAddr: uint64(f.Addr)})
	var bi *BranchIntoError
	require.ErrorAs(t, err, &bi)
	require.Equal(t, uint64(f.Addr)+5, bi.To, "the loop head after mov rcx,rdi; xor eax,eax")
	// A near entry jump moves only mov rcx,rdi; xor eax,eax: the loop head
	// is just past the moved bytes, fine. A far one (14 bytes) moves the
	// loop head too, with its back edge outside: refused.
	_, err = NewDetour(AMD64, uint64(f.Addr), fn, uint64(f.Addr)+0x100000, uint64(f.Addr)+0x1000, nil)
	require.NoError(t, err)
	_, err = NewDetour(AMD64, uint64(f.Addr), fn, 1<<46, uint64(f.Addr)+0x1000, nil)
	require.ErrorIs(t, err, ErrBranchIntoMoved)

	f, ok = amd64funcs.Find("RetEarly")
	require.True(t, ok)
	_, err = NewDetour(AMD64, uint64(f.Addr), f.Code(), uint64(f.Addr)+0x100, uint64(f.Addr)+0x1000, nil)
	var ts *TooShortError
	require.ErrorAs(t, err, &ts)
	require.Equal(t, 3, ts.Size)
}

// TestAMD64ExecMidFunction moves a run from the middle of a function whose
// jne (rel8, and rel32) goes backward out of the run: the function is copied
// into memory we own, the run (between two Split markers) is relocated to a
// trampoline near, ForceFar, or beyond 4 GiB, a jump to it replaces the run,
// and calling the function from its start must give the original results.
func TestAMD64ExecMidFunction(t *testing.T) {
	amdNeedExec(t)
	for _, name := range []string{"JccBackOut8", "JccBackOut32"} {
		for _, m := range []struct {
			name          string
			far, forceFar bool
		}{{"near", false, false}, {"near-forcefar", false, true}, {"far", true, false}} {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				f, ok := amd64funcs.Find(name)
				require.True(t, ok)
				own := amdAlloc(t, f.Addr, false)
				rel := amdTrampoline(t, own, f.Code(), f.Addr, len(f.Code()), Options{})
				fn, err := own.Read(0, len(rel.Code))
				require.NoError(t, err)
				splits := amd64funcs.SplitOffsets(fn, own.Addr())
				require.Len(t, splits, 2)
				start, end := splits[0]+len(amd64funcs.Split), splits[1]
				from := uint64(own.Addr()) + uint64(start)

				tr := amdAlloc(t, own.Addr(), m.far)
				opts := &Options{ForceFar: m.forceFar, Function: fn, FunctionAddr: uint64(own.Addr())}
				mid, err := Relocate(AMD64, fn[start:end], from, uint64(tr.Addr()), opts)
				require.NoError(t, err)
				require.NoError(t, amdVerifyRelocation(fn[start:end], from, uint64(tr.Addr()), opts, mid))
				back, err := EncodeJump(AMD64, uint64(tr.Addr())+uint64(len(mid.Code)), uint64(own.Addr())+uint64(end))
				require.NoError(t, err)
				require.NoError(t, tr.Write(0, append(mid.Code, back...)))
				// The run is 5 or 9 bytes (dec rcx; jne): a near jump fits.
				// Beyond 4 GiB the jump goes to a near stub holding a far one.
				dest := uint64(tr.Addr())
				if m.far {
					stub := amdAlloc(t, own.Addr(), false)
					j, err := EncodeJump(AMD64, uint64(stub.Addr()), dest)
					require.NoError(t, err)
					require.NoError(t, stub.Write(0, j))
					dest = uint64(stub.Addr())
				}
				entry, err := EncodeJump(AMD64, from, dest)
				require.NoError(t, err)
				require.LessOrEqual(t, len(entry), end-start)
				for len(entry) < end-start {
					entry = append(entry, 0xcc)
				}
				require.NoError(t, own.Write(start, entry))
				for _, x := range amdArgs {
					require.Equal(t, f.Want(x), execmem.Call(own.Addr(), x), "patched(%d)", x)
				}
			})
		}
	}
}
