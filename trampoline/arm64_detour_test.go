package trampoline

import (
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/stretchr/testify/require"
)

// a64Replacement returns a C-ABI function computing original(x)+1000, where
// original is called through the detour's trampoline at tramp.
func a64Replacement(tramp uint64) []byte {
	ws := []uint32{0xa9bf7bfd} // stp x29, x30, [sp, #-16]!
	ws = append(ws, a64MovAbs(a64IP0, tramp)...)
	ws = append(ws,
		0xd63f0200, // blr x16
		0x910fa000, // add x0, x0, #1000
		0xa8c17bfd, // ldp x29, x30, [sp], #16
		0xd65f03c0, // ret
	)
	return a64Words(ws...)
}

// TestARM64ExecDetour detours real functions, near (4-byte B entry) and far
// (16-byte LDR/BR entry, trampoline 8 GiB away): calls reach the
// replacement, which calls the original through the trampoline; removing the
// detour restores the exact bytes and the original behaviour.
func TestARM64ExecDetour(t *testing.T) {
	f := loadA64Fixture(t)
	far, err := execmem.AllocFar(f.mem.Addr(), 64<<10, 8<<30)
	require.NoError(t, err)
	t.Cleanup(func() { far.Free() })
	tests := []struct {
		fn   string
		arg  uint64
		want uint64
	}{
		{"f_detour", 5, 13},
		{"f_loop_in", 4, 10}, // far: the loop at the entry moves whole into the trampoline
		{"f_bl", 5, 16},      // BL inside the moved bytes (far: 16 bytes)
		{"f_bcond", 4, 4},    // B.cond out inside the moved bytes; f(4, 0) = 1000 (x > y)
		{"f_bti", 5, 26},     // BTI c stays first at the entry
	}
	for _, tc := range tests {
		for _, isFar := range []bool{false, true} {
			name := tc.fn
			mem, replOff, trampOff := f.mem, 0xA000, 0xB000
			if isFar {
				name += "/far"
				mem, replOff, trampOff = far, 0x1000, 0x2000
			}
			target := f.addr(tc.fn)
			off := int(target - uint64(f.mem.Addr()))
			code := f.code(tc.fn)
			before, err := f.mem.Read(off, len(code))
			require.NoError(t, err)
			want := a64Call(target, tc.arg)
			repl := uint64(mem.Addr()) + uint64(replOff)
			tramp := uint64(mem.Addr()) + uint64(trampOff)

			d, err := NewDetour(ARM64, target, code, repl, tramp, nil)
			require.NoError(t, err, name)
			wantLen := 4
			if isFar {
				wantLen = 16
			}
			if tc.fn == "f_bti" {
				wantLen += 4
				require.Equal(t, before[:4], d.Entry[:4], "%s: BTI c kept at the entry", name)
				require.Equal(t, before[:4], d.Code[:4], "%s: the trampoline starts with BTI c", name)
			}
			require.Len(t, d.Entry, wantLen, name)
			require.Equal(t, before[:wantLen], d.Original, name)
			require.NoError(t, mem.Write(trampOff, d.Code))
			require.NoError(t, mem.Write(replOff, a64Replacement(tramp)))
			require.NoError(t, f.mem.Write(off, d.Entry))

			require.Equal(t, want+1000, a64Call(target, tc.arg), "%s: through the replacement", name)
			require.Equal(t, want, a64Call(tramp, tc.arg), "%s: the trampoline runs the original", name)

			require.NoError(t, f.mem.Write(off, d.Original))
			after, err := f.mem.Read(off, len(code))
			require.NoError(t, err)
			require.Equal(t, before, after, "%s: removal restores the exact bytes", name)
			require.Equal(t, want, a64Call(target, tc.arg), name)
		}
	}
}

// TestARM64DetourLoopInto: a loop branching back into the 16 bytes a far
// entry overwrites is refused, naming the branch.
func TestARM64DetourLoopInto(t *testing.T) {
	f := readA64Fixture(t, "testdata/arm64")
	const at = 0x10_0000_0000
	code := f.code("f_loop_into")
	_, err := NewDetour(ARM64, at, code, at+8<<30, at+0x1000, nil)
	var bi *BranchIntoError
	require.ErrorAs(t, err, &bi)
	require.Equal(t, uint64(at+16), bi.From)
	require.Equal(t, uint64(at+4), bi.To)
	// Near, only 4 bytes move and the loop's target is not among them.
	_, err = NewDetour(ARM64, at, code, at+0x2000, at+0x1000, nil)
	require.NoError(t, err)
}
