package trampoline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
	"github.com/stretchr/testify/require"
)

func a64W(ws ...uint32) []byte { return a64Words(ws...) }

func TestARM64Jump(t *testing.T) {
	const from = 0x10_0000_0000
	for _, d := range []int64{0, 4, -4, 1<<27 - 4, -1 << 27} {
		to := uint64(from + d)
		require.True(t, arm64Code{}.nearReach(from, to))
		n, err := JumpSize(ARM64, from, to)
		require.NoError(t, err)
		require.Equal(t, 4, n)
		b, err := EncodeJump(ARM64, from, to)
		require.NoError(t, err)
		require.Len(t, b, 4)
		i := dec.Decode(binary.LittleEndian.Uint32(b), from)
		require.Equal(t, dec.B, i.Class)
		require.Equal(t, to, i.Target)
		require.True(t, i.AsmOK)
	}
	for _, d := range []int64{1 << 27, -1<<27 - 4, 1 << 40, -1 << 33} {
		to := uint64(from + d)
		require.False(t, arm64Code{}.nearReach(from, to), "%+#x", d)
		b, err := EncodeJump(ARM64, from, to)
		require.NoError(t, err)
		require.Len(t, b, 16)
		ldr := dec.Decode(binary.LittleEndian.Uint32(b), from)
		require.Equal(t, dec.LDRLiteral, ldr.Class)
		require.Equal(t, dec.LitX, ldr.Literal)
		require.EqualValues(t, 16, ldr.Reg)
		require.Equal(t, uint64(from+8), ldr.Target)
		br := dec.Decode(binary.LittleEndian.Uint32(b[4:]), from+4)
		require.Equal(t, dec.BR, br.Class)
		require.EqualValues(t, 16, br.Reg)
		require.Equal(t, to, binary.LittleEndian.Uint64(b[8:]))
	}
	far, err := EncodeFarJump(ARM64, from, from+8)
	require.NoError(t, err)
	require.Len(t, far, FarJumpSize(ARM64))
	_, err = EncodeJump(ARM64, from, from+2)
	require.Error(t, err, "misaligned target")
	require.Error(t, CheckFits(ARM64, "tiny", from, 8, from+1<<30))
	require.NoError(t, CheckFits(ARM64, "tiny", from, 4, from+1<<20))
	require.Equal(t, []byte{0x00, 0x00, 0x3e, 0xd4}, arm64Code{}.trap())
}

func TestARM64Prologue(t *testing.T) {
	const at = 0x400000
	nop := uint32(0xD503201F)
	tests := []struct {
		name string
		code []byte
		need int
		want int
		err  error
	}{
		{"near", a64W(nop, nop, nop, nop, nop), 4, 4, nil},
		{"far", a64W(nop, nop, nop, nop, nop), 16, 16, nil},
		{"ret inside", a64W(nop, 0xd65f03c0, nop, nop), 16, 0, ErrTooShort},
		{"ret last word", a64W(nop, nop, nop, 0xd65f03c0), 16, 16, nil},
		{"br inside", a64W(0xd61f0200, nop, nop, nop), 16, 0, ErrTooShort},
		{"b out inside", a64W(0x14001000, nop, nop, nop), 16, 0, ErrTooShort},
		{"b within function", a64W(0x14000002, nop, nop, nop), 16, 16, nil},
		{"b tail call, near", a64W(0x14001000), 4, 4, nil},
		{"brk inside", a64W(0xd43e0000, nop, nop, nop), 8, 0, ErrTooShort},
		{"short", a64W(nop, nop), 16, 0, ErrTooShort},
		{"cbz inside ok", a64W(0xb4000040, nop, nop, nop), 16, 16, nil},
		{"b.al out inside", a64W(0x5400800e, nop, nop, nop), 16, 0, ErrTooShort},
		{"b.al within function", a64W(0x5400004e, nop, nop, nop), 16, 16, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := PrologueLength(ARM64, tc.code, at, tc.need)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				var ts *TooShortError
				require.ErrorAs(t, err, &ts)
				require.Equal(t, uint64(at), ts.Addr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, n)
		})
	}
}

// One word of every PC-relative class (and a few plain ones), assembled by
// llvm-mc; each targets from+0x100 (or from's page + 0x5000 for ADRP).
var a64ClassWords = []struct {
	name string
	word uint32
}{
	{"b", 0x14000040}, {"bl", 0x94000040}, {"b.ne", 0x54000801}, {"b.al", 0x5400080e},
	{"bc.eq", 0x54000810}, {"cbz w3", 0x34000803}, {"cbnz x7", 0xb5000807},
	{"tbz w1,#5", 0x36280801}, {"tbnz x2,#63", 0xb7f80802},
	{"adr x0", 0x10000800}, {"adr x5,+0x103", 0x70000805}, {"adrp x16", 0xb0000030},
	{"ldr w2", 0x18000802}, {"ldr x3", 0x58000803}, {"ldrsw x4", 0x98000804},
	{"ldr s5", 0x1c000805}, {"ldr d6", 0x5c000806}, {"ldr q7", 0x9c000807},
	{"prfm pldl1keep", 0xd8000800}, {"ldr x16 (own scratch)", 0x58000810}, {"ldr wzr", 0x1800081f},
	{"mov x0,x1", 0xaa0103e0}, {"ret", 0xd65f03c0}, {"ldadd (no arm64asm)", 0xf8200201},
}

// TestARM64CBcc: FEAT_CMPBR's CB<cc> is re-encoded within its +-1 KiB and
// refused beyond it, never copied with a stale displacement.
func TestARM64CBcc(t *testing.T) {
	const from = 0x10_0000_0000
	code := a64W(0x74050105, 0xd65f03c0, 0xd503201f, 0xd503201f, 0xd503201f, 0xd503201f, 0xd503201f, 0xd503201f, 0xd503201f) // cbgt w5, w5, +0x20 (in run); ret
	rel, err := Relocate(ARM64, code, from, from+8<<30, nil)
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, from, from+8<<30, rel, func(t uint64) uint64 { return t }))
	out := a64W(0x74050105, 0xd65f03c0) // target +0x20 is outside this run
	rel, err = Relocate(ARM64, out, from, from+0x100, nil)
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(out, from, from+0x100, rel, func(t uint64) uint64 { return t }))
	_, err = Relocate(ARM64, out, from, from+0x1000, nil)
	var ie *InstructionError
	require.ErrorAs(t, err, &ie)
	require.Contains(t, ie.Why, "FEAT_CMPBR")
}

// TestARM64RelocateClasses relocates each class to places that hit every
// reach (same page, past imm14, past imm19/ADR, past B, past ADRP) and with
// ForceFar and a Map, and checks the result with the independent evaluator.
func TestARM64RelocateClasses(t *testing.T) {
	const from = 0x10_0000_0000
	places := []struct {
		name string
		to   uint64
		far  bool
	}{
		{"same page", from + 0x40, false},
		{"+64KiB (past imm14)", from + 0x10000, false},
		{"+2MiB (past imm19/ADR)", from + 0x200000, false},
		{"-2MiB", from - 0x200000, false},
		{"+200MiB (past B)", from + 200<<20, false},
		{"+8GiB (past ADRP)", from + 8<<30, false},
		{"-8GiB", from - 8<<30, false},
		{"ForceFar same page", from + 0x40, true},
	}
	mapped := func(tgt uint64) (uint64, bool) {
		if tgt == from+0x100 {
			return 0x7_0000_0000, true
		}
		return 0, false
	}
	n := 0
	for _, w := range a64ClassWords {
		for _, p := range places {
			for _, withMap := range []bool{false, true} {
				name := fmt.Sprintf("%s/%s/map=%v", w.name, p.name, withMap)
				code := a64W(w.word, 0xd503201f)
				opts := &Options{ForceFar: p.far}
				mapTarget := func(t uint64) uint64 { return t }
				if withMap {
					opts.Map = mapped
					mapTarget = func(t uint64) uint64 {
						if m, ok := mapped(t); ok {
							return m
						}
						return t
					}
				}
				rel, err := Relocate(ARM64, code, from, p.to, opts)
				require.NoError(t, err, name)
				require.NoError(t, checkRelocationA64(code, from, p.to, rel, mapTarget), name)
				n++
			}
		}
	}
	t.Logf("%d relocations checked", n)
}

// TestARM64RelocateInternal: branches inside the run stay inside the copy
// even when instructions between them grow.
func TestARM64RelocateInternal(t *testing.T) {
	const from = 0x10_0000_0000
	code := a64W(
		0xb4000080, // cbz x0, +0x10 (in run)
		0x58100001, // ldr x1, +0x20000 (out: grows when far)
		0x37180042, // tbnz w2, #3, +8 (in run)
		0x17fffffd, // b -0xc (in run, back to the ldr)
		0xd65f03c0, // ret
		0x14000000, // b . (in run: itself)
	)
	for _, to := range []uint64{from + 0x1000, from + 8<<30} {
		for _, far := range []bool{false, true} {
			rel, err := Relocate(ARM64, code, from, to, &Options{ForceFar: far})
			require.NoError(t, err)
			require.NoError(t, checkRelocationA64(code, from, to, rel, func(t uint64) uint64 { return t }))
			if far || to > from+1<<30 {
				require.Greater(t, len(rel.Code), len(code))
				require.Equal(t, 3, rel.Rewritten) // the ldr, and the cbz and b whose distances it changed
			}
		}
	}
	// TBZ whose in-run target is pushed past 32 KiB by a grown instruction
	// between them is widened.
	big := make([]uint32, 0, 9000)
	big = append(big, 0x36000000|uint32(8190)<<5) // tbz w0, #0, +32760
	for range 8189 {
		big = append(big, 0x58000001) // ldr x1, . (the word itself: in run)
	}
	big = append(big, 0xd503201f)
	code = a64W(big...)
	code = append(code, a64W(0x94000000|(1<<20))...) // bl far outside
	rel, err := Relocate(ARM64, code, from, from+8<<30, &Options{ForceFar: true})
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, from, from+8<<30, rel, func(t uint64) uint64 { return t }))
	i := dec.Decode(binary.LittleEndian.Uint32(rel.Code), from+8<<30)
	require.Equal(t, dec.TBZ, i.Class)
}

func TestARM64BranchInto(t *testing.T) {
	const at = 0x400000
	fn := a64W(
		0xd503201f, 0xd503201f, 0xd503201f, 0xd503201f, // moved
		0xb4ffffa0, // cbz x0, -0xc: into the moved bytes
		0xd65f03c0,
	)
	_, err := Relocate(ARM64, fn[:16], at, at+0x1000, &Options{Function: fn, FunctionAddr: at})
	var bi *BranchIntoError
	require.ErrorAs(t, err, &bi)
	require.ErrorIs(t, err, ErrBranchIntoMoved)
	require.Equal(t, uint64(at+16), bi.From)
	require.Equal(t, uint64(at+4), bi.To)
	// To the first byte is fine: that is where the entry jump is.
	binary.LittleEndian.PutUint32(fn[16:], 0xb4ffff80) // cbz x0, -0x10
	_, err = Relocate(ARM64, fn[:16], at, at+0x1000, &Options{Function: fn, FunctionAddr: at})
	require.NoError(t, err)
	// ADR of a moved address from the rest of the function is refused too.
	binary.LittleEndian.PutUint32(fn[16:], 0x10ffffa0) // adr x0, -0xc
	_, err = Relocate(ARM64, fn[:16], at, at+0x1000, &Options{Function: fn, FunctionAddr: at})
	require.ErrorIs(t, err, ErrBranchIntoMoved)
	_, err = NewDetour(ARM64, at, fn, at+8<<30, at+0x1000, nil) // far: moves 16 bytes
	require.ErrorIs(t, err, ErrBranchIntoMoved)
}

// TestARM64Scratch: code that names x16 gets x17 for its absolute forms;
// code naming both is refused, except where a call clobbers them anyway.
func TestARM64Scratch(t *testing.T) {
	const from = 0x10_0000_0000
	const to = from + 8<<30
	movX16 := uint32(0xaa0003f0)          // mov x16, x0
	movX17 := uint32(0xaa0103f1)          // mov x17, x1
	cbz := uint32(0xb4000800)             // cbz x0, +0x100 (out of the run)
	code := a64W(movX16, cbz, 0x91000600) // add x0, x16, #1
	rel, err := Relocate(ARM64, code, from, to, nil)
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, from, to, rel, func(t uint64) uint64 { return t }))
	for off := 8; off < rel.Boundaries[2].New; off += 4 {
		w := binary.LittleEndian.Uint32(rel.Code[off:])
		require.False(t, dec.Decode(w, 0).UsesReg(16), "%#08x clobbers x16", w)
	}
	require.True(t, dec.Decode(binary.LittleEndian.Uint32(rel.Code[rel.Boundaries[2].New-4:]), 0).UsesReg(17))

	code = a64W(movX16, movX17, cbz, 0x8b110200) // add x0, x16, x17
	_, err = Relocate(ARM64, code, from, to, nil)
	var ie *InstructionError
	require.ErrorAs(t, err, &ie)
	require.ErrorIs(t, err, ErrUnrelocatable)
	require.Equal(t, uint64(from+8), ie.Addr)
	require.Contains(t, ie.Why, "x16 and x17")
	// Near, nothing needs a scratch register.
	_, err = Relocate(ARM64, code, from, from+0x1000, nil)
	require.NoError(t, err)
	// A BL may use x16: the callee may clobber it.
	code = a64W(movX16, movX17, 0x94000040, 0x8b110200)
	rel, err = Relocate(ARM64, code, from, to, nil)
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, from, to, rel, func(t uint64) uint64 { return t }))
	// A PRFM with no scratch is dropped (NOPs): it is only a hint.
	code = a64W(movX16, movX17, 0xd8000800, 0x8b110200)
	rel, err = Relocate(ARM64, code, from, to, nil)
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, from, to, rel, func(t uint64) uint64 { return t }))
}

// gcc's switch dispatch: adrp/add of the table (in .rodata), ldrb the
// offset, adr of the base label, add sxtb #2, br.
var a64JumpTable = []uint32{
	0x7100101f, // 0: cmp w0, #4
	0x54000208, // 4: b.hi +0x40 (default, outside)
	0xb0000001, // 8: adrp x1, table page (+0x1000)
	0x91000021, // c: add x1, x1, #0
	0x38604821, // 10: ldrb w1, [x1, w0, uxtw]
	0x10000062, // 14: adr x2, +0xc (base = 0x20)
	0x8b218841, // 18: add x1, x2, w1, sxtb #2
	0xd61f0020, // 1c: br x1
	0x52800060, // 20: mov w0, #3 (case 0)
	0xd65f03c0, // 24: ret
	0x52800120, // 28: mov w0, #9 (case 1)
	0xd65f03c0, // 2c: ret
}

func TestARM64JumpTable(t *testing.T) {
	const from = 0x10_0000_0000
	code := a64W(a64JumpTable...)
	// Whole function, layout unchanged: the base points into the copy.
	rel, err := Relocate(ARM64, code, from, from+0x10000, nil)
	require.NoError(t, err)
	require.Equal(t, len(code), len(rel.Code))
	adr := dec.Decode(binary.LittleEndian.Uint32(rel.Code[0x14:]), from+0x10000+0x14)
	require.Equal(t, uint64(from+0x10000+0x20), adr.Target)
	// Whole function, layout changed (the b.hi grows): refused.
	_, err = Relocate(ARM64, code, from, from+0x10000, &Options{ForceFar: true})
	var ie *InstructionError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, uint64(from+0x14), ie.Addr)
	require.Contains(t, ie.Why, "jump table")
	require.Contains(t, ie.Why, fmt.Sprintf("%#x", from+0x1c))
	// Only the first 0x20 bytes move (base inside): refused.
	_, err = Relocate(ARM64, code[:0x24], from, from+0x10000, &Options{Function: code, FunctionAddr: from})
	require.ErrorAs(t, err, &ie)
	require.Contains(t, ie.Why, "only part of the function")
	// The dispatch stays in the old code, but sxtb offsets reach 512 bytes
	// below its base (0x20), into the moved bytes: the table decides.
	head := &Options{Function: code, FunctionAddr: from}
	_, err = Relocate(ARM64, code[:0x10], from, from+8<<30, head)
	var jt *JumpTableError
	require.ErrorAs(t, err, &jt)
	require.ErrorIs(t, err, ErrJumpTable)
	require.Equal(t, uint64(from+0x1c), jt.Dispatch)
	require.Equal(t, uint64(from+0x1000), jt.Table, "adrp+add of the table")
	head.JumpTableTargets = []uint64{from + 0x20, from + 0x28}
	_, err = Relocate(ARM64, code[:0x10], from, from+8<<30, head)
	require.NoError(t, err)
	head.JumpTableTargets = []uint64{from + 0x20, from + 0x8}
	_, err = Relocate(ARM64, code[:0x10], from, from+8<<30, head)
	var bi *BranchIntoError
	require.ErrorAs(t, err, &bi)
	require.Equal(t, uint64(from+0x1c), bi.From)
	require.Equal(t, uint64(from+0x8), bi.To)
	// With uxtb offsets no target lies below the base: nothing to ask.
	uxtb := a64W(a64JumpTable...)
	binary.LittleEndian.PutUint32(uxtb[0x18:], 0x8b210841) // add x1, x2, w1, uxtb #2
	_, err = Relocate(ARM64, uxtb[:0x10], from, from+8<<30, &Options{Function: uxtb, FunctionAddr: from})
	require.NoError(t, err)
	// clang's form (ldrb then add lsl #2) is bounded by the byte load.
	clang := a64W(a64JumpTable...)
	binary.LittleEndian.PutUint32(clang[0x10:], 0x38616821) // ldrb w1, [x1, x1]
	binary.LittleEndian.PutUint32(clang[0x18:], 0x8b010841) // add x1, x2, x1, lsl #2
	_, err = Relocate(ARM64, clang[:0x10], from, from+8<<30, &Options{Function: clang, FunctionAddr: from})
	require.NoError(t, err)
	// The same dispatch with its base below the moved bytes is refused.
	_, err = Relocate(ARM64, clang[0x24:0x2c], from+0x24, from+8<<30, &Options{Function: clang, FunctionAddr: from})
	require.ErrorIs(t, err, ErrJumpTable)
}

func TestARM64Unaligned(t *testing.T) {
	_, err := Relocate(ARM64, []byte{1, 2, 3}, 0x1000, 0x2000, nil)
	require.Error(t, err)
	_, err = Relocate(ARM64, a64W(0xd503201f), 0x1002, 0x2000, nil)
	require.Error(t, err)
	require.False(t, errors.Is(err, ErrBranchIntoMoved))
}

func TestARM64LiteralInMovedBytes(t *testing.T) {
	const at = 0x400000
	// ldr x0, #8 in the run reads a literal in the run: copied with it.
	code := a64W(0x58000040, 0xd65f03c0, 0x11111111, 0x22222222)
	rel, err := Relocate(ARM64, code, at, at+8<<30, nil)
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, at, at+8<<30, rel, func(t uint64) uint64 { return t }))
	require.Equal(t, code[8:], rel.Code[8:16], "literal copied verbatim")
	// The literal straddles the end of the run: refused.
	_, err = Relocate(ARM64, code[:12], at, at+8<<30, &Options{Function: code, FunctionAddr: at})
	require.ErrorIs(t, err, ErrUnrelocatable)
	// The rest of the function loads a literal from the moved bytes: refused.
	fn := a64W(0xd503201f, 0xd503201f, 0xd503201f, 0xd503201f, 0x58ffff80, 0xd65f03c0) // ldr x0, -0x10
	_, err = Relocate(ARM64, fn[:16], at, at+0x1000, &Options{Function: fn, FunctionAddr: at})
	var bi *BranchIntoError
	require.ErrorAs(t, err, &bi)
	require.Equal(t, uint64(at), bi.To)
}

// TestARM64NewDetour plans detours without running them (every host): the
// entry is the jump (after a kept BTI), the trampoline is the relocated
// prologue then a jump back to the first byte not moved.
func TestARM64NewDetour(t *testing.T) {
	const at = 0x10_0000_0000
	fn := a64W(a64Prologue[:15]...)        // without the final b back into the first 16 bytes
	bti := append(a64W(0xd503245f), fn...) // bti c
	for _, tc := range []struct {
		name        string
		code        []byte
		repl, tramp uint64
		keep, moved int
	}{
		{"near", fn, at + 0x100000, at + 0x200000, 0, 4},
		{"far", fn, at + 8<<30, at + 0x200000, 0, 16},
		{"far trampoline", fn, at + 0x100000, at + 8<<30, 0, 4},
		{"bti near", bti, at + 0x100000, at + 0x200000, 4, 8},
		{"bti far", bti, at + 8<<30, at + 16<<30, 4, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDetour(ARM64, at, tc.code, tc.repl, tc.tramp, nil)
			require.NoError(t, err)
			require.Len(t, d.Original, tc.moved)
			require.Equal(t, tc.code[:tc.moved], d.Original)
			require.Len(t, d.Entry, tc.moved)
			require.Equal(t, tc.code[:tc.keep], d.Entry[:tc.keep])
			// The entry jump reaches the replacement.
			jump := d.Entry[tc.keep:]
			e, err := evalA64(jump[:min(len(jump), 8)], at+uint64(tc.keep))
			if len(jump) == 16 { // ldr x16, #8; br x16; .quad
				require.Equal(t, tc.repl, binary.LittleEndian.Uint64(jump[8:]))
			} else {
				require.NoError(t, err)
				require.Len(t, e.effects, 1)
				require.Equal(t, tc.repl, e.effects[0].target)
			}
			// The trampoline: relocated prologue, then back to at+moved.
			rel, err := Relocate(ARM64, tc.code[:tc.moved], at, tc.tramp, &Options{Function: tc.code, FunctionAddr: at})
			require.NoError(t, err)
			require.Equal(t, rel.Code, d.Code[:len(rel.Code)])
			require.Equal(t, rel.Boundaries, d.Boundaries)
			require.NoError(t, checkRelocationA64(tc.code[:tc.moved], at, tc.tramp, rel, func(t uint64) uint64 { return t }))
			back := d.Code[len(rel.Code):]
			if len(back) == 16 {
				require.Equal(t, uint64(at+tc.moved), binary.LittleEndian.Uint64(back[8:]))
			} else {
				e, err := evalA64(back, tc.tramp+uint64(len(rel.Code)))
				require.NoError(t, err)
				require.Equal(t, uint64(at+tc.moved), e.effects[0].target)
			}
		})
	}
}

// TestARM64JumpBackX16: a detour whose moved prologue uses x16 is refused
// when the jump back must be far (it goes through x16), accepted when near.
func TestARM64JumpBackX16(t *testing.T) {
	const at = 0x10_0000_0000
	fn := a64W(0xaa0003f0, 0xd503201f, 0xd503201f, 0xd503201f, 0x91000600, 0xd65f03c0) // mov x16, x0; nop x3; add x0, x16, #1; ret
	_, err := NewDetour(ARM64, at, fn, at+8<<30, at+0x100000, nil)                     // far entry, near trampoline
	require.NoError(t, err)
	_, err = NewDetour(ARM64, at, fn, at+8<<30, at+16<<30, nil) // far entry, far trampoline
	var ie *InstructionError
	require.ErrorAs(t, err, &ie)
	require.Equal(t, uint64(at), ie.Addr)
	require.Contains(t, ie.Why, "x16")
	// A prologue ending in a return never jumps back.
	ret := a64W(0xaa0003f0, 0xd503201f, 0x91000600, 0xd65f03c0)
	_, err = NewDetour(ARM64, at, ret, at+8<<30, at+16<<30, nil)
	require.NoError(t, err)
}

// TestARM64MapPairs: with a Map, an ADRP pair maps as the address it forms.
func TestARM64MapPairs(t *testing.T) {
	const from = 0x10_0000_0000
	sym := uint64(from + 0x10000 + 0x123)
	moved := uint64(0x7_0000_0a48) // new home of sym: other page, other low bits
	mapping := func(t uint64) (uint64, bool) {
		switch t {
		case sym:
			return moved, true
		case from + 0x10000 + 0x128: // ldr x0, [x0, #0x128]'s target
			return moved + 8, true
		case from + 0x10000 + 0x18:
			return 0x7_0000_0a4c, true // not a multiple of 8
		}
		return 0, false
	}
	mapTarget := func(t uint64) uint64 {
		if m, ok := mapping(t); ok {
			return m
		}
		return t
	}
	for _, tc := range []struct {
		name string
		code []byte
		err  string
	}{
		{"adrp+add", a64W(0x90000080, 0x91048c00, 0xd65f03c0), ""},              // adrp x0; add x0, x0, #0x123
		{"adrp+ldr", a64W(0x90000080, 0xf9409400, 0xd65f03c0), ""},              // adrp x0; ldr x0, [x0, #0x128]
		{"page reused", a64W(0x90000080, 0x91048c01, 0xd65f03c0), "used again"}, // add x1, x0, #0x123
		{"misaligned", a64W(0x90000080, 0xf9400c00, 0xd65f03c0), "multiple"},    // ldr x0, [x0, #0x18]
		{"unmapped pair", a64W(0x90000080, 0x91000400, 0xd65f03c0), ""},         // add x0, x0, #1
	} {
		for _, to := range []uint64{from + 0x1000, from + 8<<30} {
			rel, err := Relocate(ARM64, tc.code, from, to, &Options{Map: mapping})
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err, tc.name)
				require.ErrorIs(t, err, ErrUnrelocatable)
				continue
			}
			require.NoError(t, err, tc.name)
			require.NoError(t, checkRelocationA64(tc.code, from, to, rel, mapTarget), tc.name)
		}
	}
}

// TestARM64InRunLiteralFar: a literal in the run more than 1 MiB from its
// load (the run grew past LDR's reach) goes through ADRP+ADD+LDR, whose size
// cannot depend on where the literal lands.
func TestARM64InRunLiteralFar(t *testing.T) {
	const from = 0x10_0000_0000
	const n = 70000 // words: 280 KB, beyond 1 MiB once the BLs grow to 16 bytes
	ws := make([]uint32, n+2)
	ws[0] = 0x58000000 | uint32(n)<<5 // ldr x0, +n*4 (the literal, in the run)
	for k := 1; k < n; k++ {
		ws[k] = 0x94000000 | 0x100000 // bl far away: grows when forced far
	}
	ws[n], ws[n+1] = 0x11111111, 0x22222222
	code := a64W(ws...)
	rel, err := Relocate(ARM64, code, from, from+8<<30, &Options{ForceFar: true})
	require.NoError(t, err)
	require.NoError(t, checkRelocationA64(code, from, from+8<<30, rel, func(t uint64) uint64 { return t }))
	require.Equal(t, 12, rel.Boundaries[1].New, "adrp+add+ldr")
}

// TestARM64LoopAfterBTI: a loop whose head is right after a kept BTI c
// branches to the entry jump's first word: allowed, like a branch to the
// entry; a branch past it is still refused.
func TestARM64LoopAfterBTI(t *testing.T) {
	const at = 0x10_0000_0000
	fn := a64W(0xd503245f, 0xd1000400, 0xd503201f, 0xd503201f, 0xd503201f, 0xb5ffff80, 0xd65f03c0) // bti c; 1: sub x0, x0, #1; nop x3; cbnz x0, 1b; ret
	d, err := NewDetour(ARM64, at, fn, at+8<<30, at+0x100000, nil)
	require.NoError(t, err)
	require.Len(t, d.Original, 20)
	binary.LittleEndian.PutUint32(fn[20:], 0xb5ffffa0) // cbnz x0, -0xc: to at+8, inside the jump
	_, err = NewDetour(ARM64, at, fn, at+8<<30, at+0x100000, nil)
	var bi *BranchIntoError
	require.ErrorAs(t, err, &bi)
	require.Equal(t, uint64(at+8), bi.To)
}
