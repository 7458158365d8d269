package arm64

import (
	"encoding/binary"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/arch/arm64/arm64asm"
)

// Class is what an instruction is, as far as moving it elsewhere cares:
// every PC-relative form has its own class, control flow out of straight-line
// code has one, everything else is Other.
type Class uint8

// Instruction classes. The PC-relative ones are B through LDRLiteral.
const (
	Other      Class = iota // not PC-relative and not a branch: copied as is
	B                       // B label (imm26, +-128 MiB)
	BL                      // BL label (imm26, +-128 MiB)
	BCond                   // B.cond / BC.cond label (imm19, +-1 MiB)
	CBZ                     // CBZ Rt, label (imm19)
	CBNZ                    // CBNZ Rt, label (imm19)
	TBZ                     // TBZ Rt, #bit, label (imm14, +-32 KiB)
	TBNZ                    // TBNZ Rt, #bit, label (imm14)
	ADR                     // ADR Xd, label (+-1 MiB, byte granular)
	ADRP                    // ADRP Xd, page (+-4 GiB, 4 KiB pages)
	LDRLiteral              // LDR/LDRSW/PRFM/LDR (SIMD) label (imm19)
	BR                      // BR Xn and its pointer-authenticated forms
	BLR                     // BLR Xn and its pointer-authenticated forms
	RET                     // RET, RETAA/RETAB, ERET, DRPS
	BRK                     // BRK #imm
	HLT                     // HLT #imm
	UDF                     // UDF #imm (permanently undefined)
	// CBcc is FEAT_CMPBR's compare-and-branch (CB<cc>, CBB<cc>, CBH<cc>,
	// register or immediate; Armv9.6): imm9, +-1 KiB.
	CBcc
)

var classNames = [...]string{"other", "B", "BL", "B.cond", "CBZ", "CBNZ", "TBZ", "TBNZ", "ADR", "ADRP", "LDR (literal)", "BR", "BLR", "RET", "BRK", "HLT", "UDF", "CB<cc>"}

// String names the class.
func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return fmt.Sprintf("Class(%d)", uint8(c))
}

// PCRelative reports whether instructions of class c encode a PC-relative
// target (which must be re-encoded when the instruction moves).
func (c Class) PCRelative() bool { return c >= B && c <= LDRLiteral || c == CBcc }

// Flow is how an instruction passes control on.
type Flow uint8

// Control-flow kinds.
const (
	Seq          Flow = iota // falls through to the next instruction
	Call                     // BL: calls Target, returns to the next instruction
	Jump                     // B (and B.AL/B.NV): always continues at Target
	CondJump                 // B.cond, CBZ, CBNZ, TBZ, TBNZ: Target or next
	Ret                      // RET and friends: leaves the function
	IndirectJump             // BR: continues at a register's address
	IndirectCall             // BLR: calls a register's address
	Trap                     // BRK, HLT, UDF: never falls through normally
)

var flowNames = [...]string{"seq", "call", "jump", "condjump", "ret", "indirectjump", "indirectcall", "trap"}

// String names the flow kind.
func (f Flow) String() string {
	if int(f) < len(flowNames) {
		return flowNames[f]
	}
	return fmt.Sprintf("Flow(%d)", uint8(f))
}

// Ends reports whether control never falls through to the next instruction
// (unconditional jump, return, indirect jump, trap).
func (f Flow) Ends() bool {
	return f == Jump || f == Ret || f == IndirectJump || f == Trap
}

// Literal is the kind of an LDR (literal) instruction: what it loads and how
// many bytes it reads.
type Literal uint8

// LDR (literal) kinds.
const (
	LitNone Literal = iota
	LitW            // LDR Wt, label: 4 bytes, zero-extended
	LitX            // LDR Xt, label: 8 bytes
	LitSW           // LDRSW Xt, label: 4 bytes, sign-extended
	LitS            // LDR St, label: 4 bytes (SIMD&FP)
	LitD            // LDR Dt, label: 8 bytes (SIMD&FP)
	LitQ            // LDR Qt, label: 16 bytes (SIMD&FP)
	LitPRFM         // PRFM op, label: prefetch hint, reads nothing
)

var litNames = [...]string{"none", "W", "X", "SW", "S", "D", "Q", "PRFM"}

// String names the literal kind.
func (l Literal) String() string {
	if int(l) < len(litNames) {
		return litNames[l]
	}
	return fmt.Sprintf("Literal(%d)", uint8(l))
}

// Size is the number of bytes the load reads (0 for PRFM).
func (l Literal) Size() int {
	switch l {
	case LitW, LitSW, LitS:
		return 4
	case LitX, LitD:
		return 8
	case LitQ:
		return 16
	}
	return 0
}

// SIMD reports whether the destination is a SIMD&FP register (S, D, Q).
func (l Literal) SIMD() bool { return l == LitS || l == LitD || l == LitQ }

// Inst is one decoded instruction word.
type Inst struct {
	Word  uint32
	PC    uint64 // address the word was decoded at
	Class Class
	Flow  Flow
	// Target is the absolute address a PC-relative instruction reaches: the
	// branch target, the ADR address, the literal's address, and for ADRP
	// the 4 KiB page (low 12 bits zero; the page offset is in the ADD or
	// load that follows).
	Target uint64
	// Reg is Rt for CBZ/CBNZ/TBZ/TBNZ/CB<cc>/LDR (literal), Rd for ADR/ADRP, Rn for
	// BR/BLR/RET (30 for the authenticated RETAA/RETAB). 31 is XZR/WZR.
	Reg uint8
	// Wide: CBZ/CBNZ/CB<cc> test a 64-bit X register (else W).
	Wide bool
	// Cond is the B.cond condition (0 EQ .. 15 NV), or CB<cc>'s 3-bit cc.
	Cond uint8
	// Consistent marks BC.cond (FEAT_HBC), which relocates like B.cond.
	Consistent bool
	// Bit is the bit TBZ/TBNZ test (0..63).
	Bit uint8
	// Literal is the kind of an LDR (literal).
	Literal Literal
	// Asm is arm64asm's decoding when AsmOK (it fails on some valid words,
	// e.g. LSE atomics and SHA3/SHA512, and on unallocated ones).
	Asm   arm64asm.Inst
	AsmOK bool
	// asmTried: Decode ran arm64asm (Classify does not).
	asmTried bool
}

// asmMu serialises arm64asm.Decode: it records decoder coverage in a
// package-level slice on every call, a data race under concurrent use.
var asmMu sync.Mutex

// Decode decodes the instruction word found at pc, with arm64asm's decoding
// in Asm when it has one. It never fails: a word that is not a known branch
// or PC-relative form is Other with Flow Seq.
func Decode(word uint32, pc uint64) Inst {
	i := Classify(word, pc)
	i.decodeAsm()
	return i
}

// Classify is Decode without arm64asm (Asm stays empty, AsmOK false): every
// field but Asm is filled, at a small fraction of the cost. String and
// UsesReg still consult arm64asm on demand. Relocators use it.
func Classify(word uint32, pc uint64) Inst {
	i := Inst{Word: word, PC: pc}
	classify(&i)
	return i
}

// DecodeAsm fills Asm/AsmOK of an instruction from Classify (a no-op after
// Decode), so later String and UsesReg calls do not decode it again.
func (i *Inst) DecodeAsm() { i.decodeAsm() }

func (i *Inst) decodeAsm() {
	if i.asmTried {
		return
	}
	i.asmTried = true
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], i.Word)
	asmMu.Lock()
	a, err := arm64asm.Decode(b[:])
	asmMu.Unlock()
	if err == nil {
		i.Asm, i.AsmOK = a, true
	}
}

// DecodeAll decodes code (located at pc) word by word. A trailing partial
// word (len(code) not a multiple of 4) is ignored.
func DecodeAll(code []byte, pc uint64) []Inst {
	out := make([]Inst, 0, len(code)/4)
	for off := 0; off+4 <= len(code); off += 4 {
		out = append(out, Decode(binary.LittleEndian.Uint32(code[off:]), pc+uint64(off)))
	}
	return out
}

// sext sign-extends the low n bits of v.
func sext(v uint32, n uint) int64 {
	return int64(int32(v<<(32-n)) >> (32 - n))
}

func classify(i *Inst) {
	w := i.Word
	switch {
	case w&0x7C000000 == 0x14000000: // B / BL: op 00101 imm26
		i.Class, i.Flow = B, Jump
		if w>>31 == 1 {
			i.Class, i.Flow = BL, Call
		}
		i.Target = i.PC + uint64(sext(w&0x3FFFFFF, 26)<<2)
	case w&0xFF000000 == 0x54000000: // B.cond / BC.cond: 01010100 imm19 o0 cond
		i.Class, i.Flow = BCond, CondJump
		i.Cond = uint8(w & 0xF)
		if i.Cond >= 14 { // AL, NV: always taken
			i.Flow = Jump
		}
		i.Consistent = w&0x10 != 0
		i.Target = i.PC + uint64(sext(w>>5&0x7FFFF, 19)<<2)
	case w&0x7E000000 == 0x34000000: // CBZ/CBNZ: sf 011010 op imm19 Rt
		i.Class, i.Flow = CBZ, CondJump
		if w&0x01000000 != 0 {
			i.Class = CBNZ
		}
		i.Wide = w>>31 == 1
		i.Reg = uint8(w & 0x1F)
		i.Target = i.PC + uint64(sext(w>>5&0x7FFFF, 19)<<2)
	case w&0x7E000000 == 0x36000000: // TBZ/TBNZ: b5 011011 op b40 imm14 Rt
		i.Class, i.Flow = TBZ, CondJump
		if w&0x01000000 != 0 {
			i.Class = TBNZ
		}
		i.Bit = uint8(w>>31<<5 | w>>19&0x1F)
		i.Reg = uint8(w & 0x1F)
		i.Target = i.PC + uint64(sext(w>>5&0x3FFF, 14)<<2)
	case w&0x1F000000 == 0x10000000: // ADR/ADRP: op immlo 10000 immhi Rd
		imm := sext(w>>5&0x7FFFF<<2|w>>29&3, 21)
		i.Reg = uint8(w & 0x1F)
		if w>>31 == 0 {
			i.Class = ADR
			i.Target = i.PC + uint64(imm)
		} else {
			i.Class = ADRP
			i.Target = i.PC&^0xFFF + uint64(imm<<12)
		}
	case w&0x3B000000 == 0x18000000: // LDR (literal): opc 011 V 00 imm19 Rt
		lit := [2][4]Literal{{LitW, LitX, LitSW, LitPRFM}, {LitS, LitD, LitQ, LitNone}}[w>>26&1][w>>30]
		if lit == LitNone { // V=1 opc=11: unallocated
			return
		}
		i.Class, i.Literal = LDRLiteral, lit
		i.Reg = uint8(w & 0x1F)
		i.Target = i.PC + uint64(sext(w>>5&0x7FFFF, 19)<<2)
	case w&0xFE1F0000 == 0xD61F0000: // unconditional branch (register)
		classifyBranchReg(i)
	case w&0xFFE0001F == 0xD4200000:
		i.Class, i.Flow = BRK, Trap
	case w&0xFFE0001F == 0xD4400000:
		i.Class, i.Flow = HLT, Trap
	case w&0x7E000000 == 0x74000000 && (w&0x01000000 == 0 || w&0x4000 == 0): // FEAT_CMPBR
		i.Class, i.Flow = CBcc, CondJump
		i.Wide = w>>31 == 1
		i.Reg = uint8(w & 0x1F)
		i.Cond = uint8(w >> 21 & 7)
		i.Target = i.PC + uint64(sext(w>>5&0x1FF, 9)<<2)
	case w>>16 == 0:
		i.Class, i.Flow = UDF, Trap
	}
}

// classifyBranchReg handles 1101011 opc op2=11111 op3 Rn op4.
func classifyBranchReg(i *Inst) {
	w := i.Word
	opc, op3, rn, op4 := w>>21&0xF, w>>10&0x3F, uint8(w>>5&0x1F), w&0x1F
	plain := op3 == 0 && op4 == 0
	authZ := op3&0x3E == 2 && op4 == 0x1F // BRAAZ/BRABZ, BLRAAZ/BLRABZ, RETAA/RETAB
	authR := op3&0x3E == 2                // BRAA/BRAB, BLRAA/BLRAB (op4 = Rm)
	switch {
	case opc == 0 && (plain || authZ):
		i.Class, i.Flow, i.Reg = BR, IndirectJump, rn
	case opc == 1 && (plain || authZ):
		i.Class, i.Flow, i.Reg = BLR, IndirectCall, rn
	case opc == 2 && plain:
		i.Class, i.Flow, i.Reg = RET, Ret, rn
	case opc == 2 && authZ && rn == 31:
		i.Class, i.Flow, i.Reg = RET, Ret, 30
	case (opc == 4 || opc == 5) && rn == 31 && op4 == 0 && (op3 == 0 || (opc == 4 && op3&0x3E == 2)):
		i.Class, i.Flow, i.Reg = RET, Ret, 30 // ERET, ERETAA/AB, DRPS
	case opc == 8 && authR:
		i.Class, i.Flow, i.Reg = BR, IndirectJump, rn
	case opc == 9 && authR:
		i.Class, i.Flow, i.Reg = BLR, IndirectCall, rn
	}
}

// PCRelative reports whether the instruction encodes a PC-relative target.
func (i Inst) PCRelative() bool { return i.Class.PCRelative() }

// String is the GNU-syntax disassembly, with the absolute target appended
// for PC-relative forms; ".inst 0x…" for a word arm64asm cannot decode.
func (i Inst) String() string {
	i.decodeAsm()
	var s string
	if i.AsmOK {
		s = arm64asm.GNUSyntax(i.Asm)
	} else {
		s = fmt.Sprintf(".inst %#08x", i.Word)
	}
	if i.PCRelative() {
		s += fmt.Sprintf(" // %#x", i.Target)
	}
	return s
}

// Reach returns the displacement range [lo, hi] (bytes, from the
// instruction's PC, or from its 4 KiB page for ADRP) class c can encode, and
// the alignment the displacement needs. ok is false for non-PC-relative
// classes.
func Reach(c Class) (lo, hi int64, align int64, ok bool) {
	switch c {
	case B, BL:
		return -1 << 27, 1<<27 - 4, 4, true
	case BCond, CBZ, CBNZ, LDRLiteral:
		return -1 << 20, 1<<20 - 4, 4, true
	case TBZ, TBNZ:
		return -1 << 15, 1<<15 - 4, 4, true
	case CBcc:
		return -1 << 10, 1<<10 - 4, 4, true
	case ADR:
		return -1 << 20, 1<<20 - 1, 1, true
	case ADRP:
		return -1 << 32, 1<<32 - 4096, 4096, true
	}
	return 0, 0, 0, false
}

// Reaches reports whether an instruction of class c placed at pc can encode
// target (for ADRP, target's page).
func Reaches(c Class, pc, target uint64) bool {
	lo, hi, align, ok := Reach(c)
	if !ok {
		return false
	}
	d := int64(target - pc)
	if c == ADRP {
		d = int64(target&^0xFFF - pc&^0xFFF)
	}
	return d >= lo && d <= hi && d%align == 0
}

// Retarget re-encodes the PC-relative instruction i for placement at pc so
// that it reaches target (for ADRP, target's page; its low 12 bits are
// ignored). Every other field of the word is kept. ok is false when i is not
// PC-relative or the displacement does not fit.
func Retarget(i Inst, pc, target uint64) (word uint32, ok bool) {
	if !Reaches(i.Class, pc, target) {
		return 0, false
	}
	d := int64(target - pc)
	w := i.Word
	switch i.Class {
	case B, BL:
		return w&^0x3FFFFFF | uint32(d>>2)&0x3FFFFFF, true
	case BCond, CBZ, CBNZ, LDRLiteral:
		return w&^(0x7FFFF<<5) | (uint32(d>>2)&0x7FFFF)<<5, true
	case TBZ, TBNZ:
		return w&^(0x3FFF<<5) | (uint32(d>>2)&0x3FFF)<<5, true
	case CBcc:
		return w&^(0x1FF<<5) | (uint32(d>>2)&0x1FF)<<5, true
	case ADRP:
		d = int64(target&^0xFFF-pc&^0xFFF) >> 12
	}
	// ADR / ADRP: immlo (bits 30:29), immhi (bits 23:5).
	return w&^(3<<29|0x7FFFF<<5) | (uint32(d)&3)<<29 | (uint32(d>>2)&0x7FFFF)<<5, true
}

// gprNames are the arm64asm spellings of the general-purpose registers, per
// register number, used to spot operands in its decoding.
func gprNames(r uint8) (string, string) {
	return fmt.Sprintf("X%d", r), fmt.Sprintf("W%d", r)
}

// UsesReg reports whether the instruction names general-purpose register r
// (0..30) as any operand, read or written. When arm64asm decodes the word its
// operands are inspected; otherwise every register field (bits 0-4, 5-9,
// 10-14, 16-20) is assumed to be one, which over-approximates: callers use
// this to keep scratch registers away from code that might use them.
func (i Inst) UsesReg(r uint8) bool {
	if r >= 31 {
		return false
	}
	switch i.Class {
	case B, BCond:
		return false
	case BL:
		return r == 30
	case CBcc: // Rt, and Rm in the register form
		return i.Reg == r || (i.Word&0x01000000 == 0 && uint8(i.Word>>16&0x1F) == r)
	case CBZ, CBNZ, TBZ, TBNZ, ADR, ADRP, BR, RET:
		return i.Reg == r
	case BLR:
		return i.Reg == r || r == 30
	case LDRLiteral:
		return !i.Literal.SIMD() && i.Literal != LitPRFM && i.Reg == r
	}
	i.decodeAsm()
	if !i.AsmOK {
		w := uint32(r)
		return i.Word&0x1F == w || i.Word>>5&0x1F == w || i.Word>>10&0x1F == w || i.Word>>16&0x1F == w
	}
	x, wn := gprNames(r)
	xr, wr := arm64asm.X0+arm64asm.Reg(r), arm64asm.W0+arm64asm.Reg(r)
	for _, a := range i.Asm.Args {
		if a == nil {
			break
		}
		// The common operand kinds, without formatting them.
		switch v := a.(type) {
		case arm64asm.Reg:
			if v == xr || v == wr {
				return true
			}
			continue
		case arm64asm.RegSP:
			if arm64asm.Reg(v) == xr || arm64asm.Reg(v) == wr {
				return true
			}
			continue
		case arm64asm.MemImmediate:
			if arm64asm.Reg(v.Base) == xr {
				return true
			}
			if v.Mode != arm64asm.AddrPostReg {
				continue
			}
		case arm64asm.MemExtend:
			if arm64asm.Reg(v.Base) == xr || v.Index == xr || v.Index == wr {
				return true
			}
			continue
		case arm64asm.Imm, arm64asm.Imm64, arm64asm.ImmShift, arm64asm.PCRel, arm64asm.Cond:
			continue
		}
		for _, tok := range strings.FieldsFunc(a.String(), func(c rune) bool {
			return !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9')
		}) {
			if tok == x || tok == wn {
				return true
			}
		}
	}
	return false
}
