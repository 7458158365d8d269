package arm64

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/arch/arm64/arm64asm"
)

// The words below were assembled by llvm-mc (-triple=aarch64 -show-encoding)
// from the syntax in each name; targets are relative to pc.
const pc = 0x4000_0000

func TestDecodeClasses(t *testing.T) {
	tests := []struct {
		name   string
		word   uint32
		class  Class
		flow   Flow
		target int64 // displacement from pc (ADRP: from pc's page)
		reg    uint8
		check  func(t *testing.T, i Inst)
	}{
		{"b #0x7fffffc (imm26 max)", 0x15ffffff, B, Jump, 0x7fffffc, 0, nil},
		{"b #-0x8000000 (imm26 min)", 0x16000000, B, Jump, -0x8000000, 0, nil},
		{"bl #4", 0x94000001, BL, Call, 4, 0, nil},
		{"bl #-4", 0x97ffffff, BL, Call, -4, 0, nil},
		{"b.eq #0xffffc (imm19 max)", 0x547fffe0, BCond, CondJump, 0xffffc, 0, func(t *testing.T, i Inst) { require.EqualValues(t, 0, i.Cond) }},
		{"b.ne #-0x100000 (imm19 min)", 0x54800001, BCond, CondJump, -0x100000, 0, func(t *testing.T, i Inst) { require.EqualValues(t, 1, i.Cond) }},
		{"b.al #8", 0x5400004e, BCond, Jump, 8, 0, func(t *testing.T, i Inst) { require.EqualValues(t, 14, i.Cond) }},
		{"bc.eq #8", 0x54000050, BCond, CondJump, 8, 0, func(t *testing.T, i Inst) { require.True(t, i.Consistent) }},
		{"cbz w3, #0xffffc", 0x347fffe3, CBZ, CondJump, 0xffffc, 3, func(t *testing.T, i Inst) { require.False(t, i.Wide) }},
		{"cbnz x7, #-0x100000", 0xb5800007, CBNZ, CondJump, -0x100000, 7, func(t *testing.T, i Inst) { require.True(t, i.Wide) }},
		{"tbz w1, #5, #0x7ffc (imm14 max)", 0x362bffe1, TBZ, CondJump, 0x7ffc, 1, func(t *testing.T, i Inst) { require.EqualValues(t, 5, i.Bit) }},
		{"tbnz x2, #63, #-0x8000 (imm14 min)", 0xb7fc0002, TBNZ, CondJump, -0x8000, 2, func(t *testing.T, i Inst) { require.EqualValues(t, 63, i.Bit) }},
		{"adr x0, #0xfffff (max)", 0x707fffe0, ADR, Seq, 0xfffff, 0, nil},
		{"adr x30, #-0x100000 (min)", 0x1080001e, ADR, Seq, -0x100000, 30, nil},
		{"adrp x16, #0xfffff000 (max)", 0xf07ffff0, ADRP, Seq, 0xfffff000, 16, nil},
		{"adrp x1, #-0x100000000 (min)", 0x90800001, ADRP, Seq, -0x100000000, 1, nil},
		{"ldr w2, #8", 0x18000042, LDRLiteral, Seq, 8, 2, func(t *testing.T, i Inst) { require.Equal(t, LitW, i.Literal) }},
		{"ldr x3, #-0x100000", 0x58800003, LDRLiteral, Seq, -0x100000, 3, func(t *testing.T, i Inst) { require.Equal(t, LitX, i.Literal) }},
		{"ldrsw x4, #0xffffc", 0x987fffe4, LDRLiteral, Seq, 0xffffc, 4, func(t *testing.T, i Inst) { require.Equal(t, LitSW, i.Literal) }},
		{"ldr s5, #16", 0x1c000085, LDRLiteral, Seq, 16, 5, func(t *testing.T, i Inst) { require.Equal(t, LitS, i.Literal) }},
		{"ldr d6, #20", 0x5c0000a6, LDRLiteral, Seq, 20, 6, func(t *testing.T, i Inst) { require.Equal(t, LitD, i.Literal) }},
		{"ldr q7, #24", 0x9c0000c7, LDRLiteral, Seq, 24, 7, func(t *testing.T, i Inst) { require.Equal(t, LitQ, i.Literal); require.Equal(t, 16, i.Literal.Size()) }},
		{"prfm pldl1keep, #28", 0xd80000e0, LDRLiteral, Seq, 28, 0, func(t *testing.T, i Inst) { require.Equal(t, LitPRFM, i.Literal) }},
		{"br x16", 0xd61f0200, BR, IndirectJump, 0, 16, nil},
		{"blr x17", 0xd63f0220, BLR, IndirectCall, 0, 17, nil},
		{"ret", 0xd65f03c0, RET, Ret, 0, 30, nil},
		{"ret x3", 0xd65f0060, RET, Ret, 0, 3, nil},
		{"retaa", 0xd65f0bff, RET, Ret, 0, 30, nil},
		{"braaz x5", 0xd61f08bf, BR, IndirectJump, 0, 5, nil},
		{"blraa x1, x2", 0xd73f0822, BLR, IndirectCall, 0, 1, nil},
		{"eret", 0xd69f03e0, RET, Ret, 0, 30, nil},
		{"brk #0xf000", 0xd43e0000, BRK, Trap, 0, 0, nil},
		{"hlt #1", 0xd4400020, HLT, Trap, 0, 0, nil},
		{"udf #7", 0x00000007, UDF, Trap, 0, 0, nil},
		{"ldadd x0, x1, [x16] (LSE)", 0xf8200201, Other, Seq, 0, 0, nil},
		{"sha512h q0, q1, v2.2d", 0xce628020, Other, Seq, 0, 0, nil},
		{"nop", 0xd503201f, Other, Seq, 0, 0, nil},
		{"unallocated ldr literal V=1 opc=11", 0xdc000000, Other, Seq, 0, 0, nil},
		// FEAT_CMPBR, words from LLVM's MC tests (label 0x4 bytes before).
		{"cbgt w5, w5, +0", 0x74050005, CBcc, CondJump, 0, 5, func(t *testing.T, i Inst) { require.False(t, i.Wide); require.True(t, i.UsesReg(5)) }},
		{"cbgt x5, x5, -4", 0xf4053fe5, CBcc, CondJump, -4, 5, func(t *testing.T, i Inst) { require.True(t, i.Wide) }},
		{"cbhgt w5, w5, -48", 0x7405fe85, CBcc, CondJump, -48, 5, nil},
		{"cbgt w5, #63, -96", 0x751fbd05, CBcc, CondJump, -96, 5, func(t *testing.T, i Inst) { require.False(t, i.UsesReg(31)) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			i := Decode(tc.word, pc)
			require.Equal(t, tc.class, i.Class)
			require.Equal(t, tc.flow, i.Flow)
			require.Equal(t, tc.class.PCRelative(), i.PCRelative())
			if i.PCRelative() {
				base := uint64(pc)
				if tc.class == ADRP {
					base &^= 0xFFF
				}
				require.Equal(t, base+uint64(tc.target), i.Target, "target")
				require.True(t, Reaches(i.Class, pc, i.Target))
				// Retargeting to the decoded target reproduces the word.
				w, ok := Retarget(i, pc, i.Target)
				require.True(t, ok)
				require.Equal(t, tc.word, w)
				// arm64asm, where it decodes, agrees on the target.
				if i.AsmOK {
					require.Equal(t, i.Target, asmTarget(t, i), "arm64asm target")
				}
			}
			if tc.class != Other && tc.class != BRK && tc.class != HLT && tc.class != UDF && tc.class != B && tc.class != BL && tc.class != BCond {
				require.Equal(t, tc.reg, i.Reg, "reg")
			}
			if tc.check != nil {
				tc.check(t, i)
			}
			require.NotEmpty(t, i.String())
		})
	}
}

// asmTarget returns arm64asm's absolute target for a PC-relative instruction.
func asmTarget(t *testing.T, i Inst) uint64 {
	t.Helper()
	for _, a := range i.Asm.Args {
		if r, ok := a.(arm64asm.PCRel); ok {
			if i.Class == ADRP {
				return i.PC&^0xFFF + uint64(r)
			}
			return i.PC + uint64(r)
		}
	}
	t.Fatalf("arm64asm has no PCRel operand in %v", i.Asm)
	return 0
}

// TestReachEdges retargets one instruction of each PC-relative class to the
// first and last displacement it can encode and one step past each, and
// checks the encodings against arm64asm.
func TestReachEdges(t *testing.T) {
	words := map[Class]uint32{
		B: 0x14000000, BL: 0x94000000, BCond: 0x54000000, CBZ: 0x34000003, CBNZ: 0xb5000007,
		TBZ: 0x36280001, TBNZ: 0xb7f80002, ADR: 0x10000000, ADRP: 0x90000010, LDRLiteral: 0x58000003,
		CBcc: 0x74050005,
	}
	const at = 0x1_2345_6000
	n := 0
	for c, w := range words {
		lo, hi, align, ok := Reach(c)
		require.True(t, ok)
		base := Decode(w, at)
		require.Equal(t, c, base.Class)
		for _, d := range []int64{lo, lo + align, -align, 0, align, hi - align, hi} {
			target := uint64(at + d)
			nw, ok := Retarget(base, at, target)
			require.True(t, ok, "%v %+#x", c, d)
			got := Decode(nw, at)
			require.Equal(t, c, got.Class)
			require.Equal(t, target, got.Target, "%v %+#x", c, d)
			require.Equal(t, base.Reg, got.Reg)
			if c != CBcc { // FEAT_CMPBR is unknown to arm64asm
				require.True(t, got.AsmOK, "%v %#08x", c, nw)
				require.Equal(t, target, asmTarget(t, got))
			}
			n++
		}
		for _, d := range []int64{lo - align, hi + align} {
			_, ok := Retarget(base, at, uint64(at+d))
			require.False(t, ok, "%v %+#x must not reach", c, d)
		}
		if align > 1 && c != ADRP { // ADRP ignores the low 12 bits by design
			_, ok := Retarget(base, at, uint64(at+align/2))
			require.False(t, ok, "%v misaligned", c)
		}
	}
	t.Logf("%d edge encodings checked against arm64asm", n)
}

func TestUsesReg(t *testing.T) {
	tests := []struct {
		word uint32
		r    uint8
		want bool
	}{
		{0xf8200201, 16, true},  // ldadd x0, x1, [x16]: not decoded by arm64asm, raw fields
		{0xd61f0200, 16, true},  // br x16
		{0xd61f0200, 17, false}, // br x16
		{0xaa1103e0, 17, true},  // mov x0, x17
		{0xaa1103e0, 16, false}, // mov x0, x17
		{0x4eb01e10, 16, false}, // mov v16.16b, v16.16b uses V16 not X16
		{0x94000001, 30, true},  // bl writes x30
		{0x9c0000d0, 16, false}, // ldr q16, #24
		{0xf9400a10, 16, true},  // ldr x16, [x16, #16]
	}
	for _, tc := range tests {
		require.Equal(t, tc.want, Decode(tc.word, 0).UsesReg(tc.r), "%#08x x%d", tc.word, tc.r)
	}
}

func TestClassifyMatchesDecode(t *testing.T) {
	for _, w := range []uint32{0x15ffffff, 0x54800001, 0xb7fc0002, 0x707fffe0, 0xf07ffff0, 0x9c0000c7, 0xd65f0bff, 0xf8200201, 0xaa1103e0} {
		c, d := Classify(w, pc), Decode(w, pc)
		require.False(t, c.AsmOK)
		d.Asm, d.AsmOK, d.asmTried = c.Asm, c.AsmOK, c.asmTried
		require.Equal(t, d, c, "%#08x", w)
		require.Equal(t, Decode(w, pc).String(), Classify(w, pc).String())
		require.Equal(t, Decode(w, pc).UsesReg(17), Classify(w, pc).UsesReg(17))
	}
}

func TestPairTarget(t *testing.T) {
	adrp := Decode(0x90000080, pc) // adrp x0, +0x10000
	page := uint64(pc + 0x10000)
	tests := []struct {
		name     string
		next     uint32
		target   uint64
		scale    uint64
		consumes bool
		ok       bool
	}{
		{"add x0, x0, #0x123", 0x91048c00, page + 0x123, 1, true, true},
		{"add x1, x0, #0x123", 0x91048c01, page + 0x123, 1, false, true},
		{"ldr x0, [x0, #0x18]", 0xf9400c00, page + 0x18, 8, true, true},
		{"ldr w2, [x0, #0x8]", 0xb9400802, page + 0x8, 4, false, true},
		{"str x0, [x0, #8]", 0xf9000400, page + 8, 8, false, true},
		{"ldrb w0, [x0, #5]", 0x39401400, page + 5, 1, true, true},
		{"ldr q1, [x0, #0x20]", 0x3dc00801, page + 0x20, 16, false, true},
		{"ldr d0, [x0, #0x8]", 0xfd400400, page + 0x8, 8, false, true},
		{"prfm pldl1keep, [x0]", 0xf9800000, page, 8, false, true},
		{"add x0, x1, #1 (other base)", 0x91000420, 0, 0, false, false},
		{"mov x1, x0", 0xaa0003e1, 0, 0, false, false},
	}
	for _, tc := range tests {
		p, ok := PairTarget(adrp, Decode(tc.next, pc+4))
		require.Equal(t, tc.ok, ok, tc.name)
		if ok {
			require.Equal(t, Pair{tc.target, tc.scale, tc.consumes}, p, tc.name)
		}
	}
}
