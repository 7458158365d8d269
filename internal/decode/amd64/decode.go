package amd64

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"

	"golang.org/x/arch/x86/x86asm"
)

// Sentinels matched with errors.Is through *Error.
var (
	// ErrTruncated: the bytes end inside an instruction.
	ErrTruncated = errors.New("truncated instruction")
	// ErrInvalid: the bytes are not a valid 64-bit mode instruction (or one
	// x86asm does not know and this package does not add).
	ErrInvalid = errors.New("invalid instruction")
)

// Error reports an instruction that does not decode, with its address.
type Error struct {
	PC    uint64
	Bytes []byte // up to 15 bytes starting at PC
	Err   error  // ErrTruncated or ErrInvalid
}

// Error names the address and why decoding failed.
func (e *Error) Error() string {
	return fmt.Sprintf("amd64: %v at %#x (% x)", e.Err, e.PC, e.Bytes)
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

// Flow classifies what an instruction does to the program counter.
type Flow uint8

// Control-flow classes.
const (
	Seq          Flow = iota // falls through to the next instruction
	Call                     // call rel32: returns to the next instruction
	Jump                     // jmp rel8/rel32: never falls through
	CondJump                 // jcc rel8/rel32
	Loop                     // loop/loope/loopne/jecxz/jrcxz rel8 (conditional on rCX)
	Ret                      // ret, retf, iret, sysret: leaves the function
	IndirectJump             // jmp r/m, jmp far: never falls through
	IndirectCall             // call r/m, call far
	Trap                     // int3, ud0/ud1/ud2, hlt: does not fall through
)

var flowNames = [...]string{"Seq", "Call", "Jump", "CondJump", "Loop", "Ret", "IndirectJump", "IndirectCall", "Trap"}

// String returns the flow's name.
func (f Flow) String() string {
	if int(f) < len(flowNames) {
		return flowNames[f]
	}
	return fmt.Sprintf("Flow(%d)", f)
}

// Terminal reports whether execution never falls through to the next
// instruction (unconditional jumps, returns, traps).
func (f Flow) Terminal() bool {
	return f == Jump || f == IndirectJump || f == Ret || f == Trap
}

// RelKind says how an instruction refers to an address relative to its end.
type RelKind uint8

// PC-relative operand kinds.
const (
	RelNone   RelKind = iota
	Rel8              // 1-byte signed branch displacement (jmp/jcc/loop/jrcxz)
	Rel32             // 4-byte signed branch displacement (jmp/jcc/call/xbegin)
	RIPDisp32         // [rip+disp32] memory operand (any instruction, VEX/EVEX included)
	// EIPDisp32 is [eip+disp32] (an 0x67 address-size prefix): the address
	// is computed modulo 2^32. Reported so a relocator can refuse it.
	EIPDisp32
)

var relNames = [...]string{"None", "Rel8", "Rel32", "RIPDisp32", "EIPDisp32"}

// String returns the kind's name.
func (k RelKind) String() string {
	if int(k) < len(relNames) {
		return relNames[k]
	}
	return fmt.Sprintf("RelKind(%d)", k)
}

// Size is the size in bytes of the displacement field (0 for RelNone).
func (k RelKind) Size() int {
	switch k {
	case Rel8:
		return 1
	case Rel32, RIPDisp32, EIPDisp32:
		return 4
	}
	return 0
}

// Inst is one decoded x86-64 instruction. The embedded x86asm.Inst is
// corrected: Len is the true length, and PCRel/PCRelOff are set for VEX/EVEX
// RIP-relative operands too (whose Mem.Base is then RIP).
type Inst struct {
	x86asm.Inst
	PC   uint64 // address the instruction was decoded at
	Flow Flow
	// RelKind, RelOff and Target describe the PC-relative operand, if any:
	// RelOff is the byte offset of the displacement within the instruction,
	// Target the absolute address it reaches (branch target or memory
	// operand address), computed from PC.
	RelKind RelKind
	RelOff  int
	Target  uint64
	// MemArg is the index in Args of the RIP-relative memory operand, or -1.
	MemArg int
	// Endbr is set for ENDBR64/ENDBR32, which x86asm does not know (Op is
	// then x86asm.NOP: architecturally a NOP without CET).
	Endbr bool
	// Mnemonic names a legacy 0F 38 / 0F 3A instruction x86asm does not
	// know (ADCX, ADOX, ...): its length, ModR/M operand and RIP-relative
	// displacement are decoded here, its Op is 0 and Args holds at most
	// the memory operand.
	Mnemonic string
	// OpPos is the index of the opcode byte (after legacy, REX and
	// VEX/EVEX prefixes). BaseExt is the encoding's B bit (REX.B, or VEX/
	// EVEX B un-inverted), which extends ModR/M.rm to r8..r15: a relocator
	// that rewrites the ModR/M byte needs both.
	OpPos   int
	BaseExt bool
}

// Rel returns the signed displacement stored in the instruction's
// PC-relative field (0 when RelKind is RelNone).
func (i *Inst) Rel(code []byte) int64 {
	switch i.RelKind.Size() {
	case 1:
		return int64(int8(code[i.RelOff]))
	case 4:
		return int64(int32(binary.LittleEndian.Uint32(code[i.RelOff:])))
	}
	return 0
}

// End is the address just past the instruction.
func (i *Inst) End() uint64 { return i.PC + uint64(i.Len) }

// String returns the instruction in Intel syntax.
func (i Inst) String() string {
	if i.Endbr {
		if i.Opcode&0xff == 0xfb {
			return "ENDBR32"
		}
		return "ENDBR64"
	}
	if i.Mnemonic != "" {
		if i.MemArg >= 0 {
			return i.Mnemonic + " " + i.Args[i.MemArg].String()
		}
		return i.Mnemonic
	}
	return i.Inst.String()
}

// rawModRM builds the x86asm.Inst of an instruction x86asm does not know:
// opLen opcode bytes at p.opPos, a ModR/M operand, immLen immediate bytes.
func rawModRM(code []byte, p prefixes, opLen, immLen int) (x86asm.Inst, bool) {
	pos := p.opPos + opLen
	n, ok := modrmLen(code, pos)
	if !ok || pos+n+immLen > len(code) {
		return x86asm.Inst{}, false
	}
	x := x86asm.Inst{Mode: 64, AddrSize: 64, DataSize: 32, Len: pos + n + immLen}
	for k := 0; k < opLen; k++ {
		x.Opcode |= uint32(code[p.opPos+k]) << (24 - 8*k)
	}
	if m := code[pos]; m>>6 == 0 && m&7 == 5 {
		base := x86asm.RIP
		if p.has(0x67) {
			base = x86asm.EIP
		}
		x.Args[0] = x86asm.Mem{Base: base, Disp: int64(int32(binary.LittleEndian.Uint32(code[pos+1:])))}
		if base == x86asm.RIP {
			x.PCRel, x.PCRelOff = 4, pos+1
		}
	}
	return x, true
}

// Decode decodes the instruction at the start of code, located at pc, in
// 64-bit mode. It returns *Error (ErrTruncated or ErrInvalid) when code does
// not start with a whole valid instruction.
func Decode(code []byte, pc uint64) (Inst, error) {
	if len(code) > 15 {
		code = code[:15]
	}
	fail := func(err error) (Inst, error) {
		return Inst{}, &Error{PC: pc, Bytes: append([]byte(nil), code...), Err: err}
	}
	if len(code) == 0 {
		return fail(ErrTruncated)
	}
	p := scanPrefixes(code)

	var x x86asm.Inst
	var endbr bool
	var mnemonic string
	switch {
	case p.vex != 0 && p.vexMap == 1 && p.opPos < len(code) && code[p.opPos] == 0x77 && p.vex != 0x62:
		// VZEROUPPER/VZEROALL have no ModR/M byte; x86asm eats one anyway.
		x = x86asm.Inst{Op: x86asm.VZEROUPPER, Mode: 64, AddrSize: 64, DataSize: 32, Len: p.opPos + 1}
		if p.vexL != 0 {
			x.Op = x86asm.VZEROALL
		}
		for k := 0; k < p.opPos && k < len(x.Prefix); k++ {
			x.Prefix[k] = x86asm.Prefix(code[k])
		}
	case p.vex == 0 && p.opPos+1 < len(code) && code[p.opPos] == 0x0f && code[p.opPos+1] >= 0x19 && code[p.opPos+1] <= 0x1e:
		// 0F 19..0F 1E /r are reserved hint NOPs (ENDBR64 is F3 0F 1E FA).
		// x86asm knows some of them under prefixes (MPX BND*); for the rest
		// decode the ModR/M length ourselves.
		var err error
		x, err = x86asm.Decode(code, 64)
		if err == nil && x.Op != 0 {
			break
		}
		var ok bool
		if x, ok = rawModRM(code, p, 2, 0); !ok {
			return fail(ErrTruncated)
		}
		x.Op = x86asm.NOP
		if m := code[p.opPos+2]; code[p.opPos+1] == 0x1e && (m == 0xfa || m == 0xfb) && p.has(0xf3) {
			endbr = true
			x.Opcode |= uint32(m)
		}
	case p.vex == 0 && p.opPos+2 < len(code) && code[p.opPos] == 0x0f && (code[p.opPos+1] == 0x38 || code[p.opPos+1] == 0x3a):
		// Every legacy 0F 38 opcode has a ModR/M byte and no immediate,
		// every 0F 3A one a ModR/M byte and an imm8: that gives the length
		// of those x86asm does not know (ADCX, ADOX, SHA*, ...).
		var err error
		x, err = x86asm.Decode(code, 64)
		if err == nil && x.Op != 0 && x.Len <= len(code) {
			break
		}
		imm := 0
		if code[p.opPos+1] == 0x3a {
			imm = 1
		}
		var ok bool
		if x, ok = rawModRM(code, p, 3, imm); !ok {
			return fail(ErrTruncated)
		}
		mnemonic = fmt.Sprintf("0F%02X%02X", code[p.opPos+1], code[p.opPos+2])
		if code[p.opPos+1] == 0x38 && code[p.opPos+2] == 0xf6 && p.has(0x66) {
			mnemonic = "ADCX"
		} else if code[p.opPos+1] == 0x38 && code[p.opPos+2] == 0xf6 && p.has(0xf3) {
			mnemonic = "ADOX"
		}
	default:
		var err error
		x, err = x86asm.Decode(code, 64)
		if err != nil || x.Op == 0 || x.Len == 0 || x.Len > len(code) {
			// x86asm reports truncated input as Op==0 with a nil error:
			// it is truncated when more bytes would make it decode.
			if len(code) < 15 {
				pad := make([]byte, 15)
				copy(pad, code)
				if y, err := x86asm.Decode(pad, 64); err == nil && y.Op != 0 && y.Len > len(code) {
					return fail(ErrTruncated)
				}
			}
			return fail(ErrInvalid)
		}
	}

	in := Inst{Inst: x, PC: pc, MemArg: -1, Endbr: endbr, Mnemonic: mnemonic, OpPos: p.opPos, BaseExt: p.baseExt(code)}
	if err := in.fixPCRel(code, p); err != nil {
		return fail(err)
	}
	in.Flow = flowOf(&in.Inst)
	return in, nil
}

// fixPCRel locates the PC-relative operand, repairing what x86asm misses.
func (i *Inst) fixPCRel(code []byte, p prefixes) error {
	memArg := -1
	for k, a := range i.Args {
		if m, ok := a.(x86asm.Mem); ok {
			memArg = k
			if m.Disp > 1<<31-1 && m.Disp < 1<<32 && !(i.Opcode>>24 >= 0xa0 && i.Opcode>>24 <= 0xa3) {
				// x86asm stores disp32 zero-extended; the CPU sign-extends it
				// (moffs A0..A3 carry a true 64-bit address and are left alone).
				m.Disp = int64(int32(m.Disp))
				i.Args[k] = m
			}
			if p.vex != 0 && m.Base == 0 && m.Index == 0 && p.opPos+1 < i.Len {
				// x86asm >= v0.28 decodes VEX/EVEX mod=00 rm=101 as an
				// absolute address: in 64-bit mode it is RIP-relative.
				mod := code[p.opPos+1]
				if mod>>6 == 0 && mod&7 == 5 {
					m.Base = x86asm.RIP
					if p.has(0x67) {
						m.Base = x86asm.EIP
					}
					i.Args[k] = m
					i.PCRel, i.PCRelOff = 4, p.opPos+2
				}
			}
			if m.Base == x86asm.EIP && i.PCRel == 0 {
				// x86asm sets PCRel only for RIP: find [eip+disp32] ourselves.
				for off := p.opPos + 1; off+4 <= i.Len; off++ {
					if code[off-1]&0xc7 == 0x05 && int64(int32(binary.LittleEndian.Uint32(code[off:]))) == m.Disp {
						i.PCRel, i.PCRelOff = 4, off
						break
					}
				}
				if i.PCRel == 0 {
					return ErrInvalid
				}
			}
			break
		}
	}
	if i.PCRel == 0 {
		return nil
	}
	if i.PCRelOff <= 0 || i.PCRelOff+i.PCRel > i.Len {
		return ErrInvalid
	}
	i.RelOff = i.PCRelOff
	switch i.PCRel {
	case 1:
		i.RelKind = Rel8
	case 4:
		i.RelKind = Rel32
		if memArg >= 0 {
			m := i.Args[memArg].(x86asm.Mem)
			if m.Base != x86asm.RIP && m.Base != x86asm.EIP {
				return ErrInvalid
			}
			i.RelKind, i.MemArg = RIPDisp32, memArg
			if m.Base == x86asm.EIP {
				i.RelKind = EIPDisp32
			}
			// Cross-check the field we will rewrite against the operand.
			if int64(int32(binary.LittleEndian.Uint32(code[i.RelOff:]))) != m.Disp {
				return ErrInvalid
			}
		}
	default:
		// rel16 does not exist for near branches in 64-bit mode.
		return ErrInvalid
	}
	i.Target = i.End() + uint64(i.Rel(code))
	if i.RelKind == EIPDisp32 {
		i.Target = uint64(uint32(i.Target))
	}
	return nil
}

func flowOf(x *x86asm.Inst) Flow {
	_, rel := x.Args[0].(x86asm.Rel)
	switch x.Op {
	case x86asm.JMP:
		if rel {
			return Jump
		}
		return IndirectJump
	case x86asm.LJMP:
		return IndirectJump
	case x86asm.CALL:
		if rel {
			return Call
		}
		return IndirectCall
	case x86asm.LCALL:
		return IndirectCall
	case x86asm.JA, x86asm.JAE, x86asm.JB, x86asm.JBE, x86asm.JE, x86asm.JG, x86asm.JGE, x86asm.JL,
		x86asm.JLE, x86asm.JNE, x86asm.JNO, x86asm.JNP, x86asm.JNS, x86asm.JO, x86asm.JP, x86asm.JS:
		return CondJump
	case x86asm.LOOP, x86asm.LOOPE, x86asm.LOOPNE, x86asm.JCXZ, x86asm.JECXZ, x86asm.JRCXZ:
		return Loop
	case x86asm.RET, x86asm.LRET, x86asm.IRET, x86asm.IRETD, x86asm.IRETQ, x86asm.SYSRET:
		return Ret
	case x86asm.INT:
		if len(x.Args) > 0 && x.Args[0] == x86asm.Imm(3) {
			return Trap
		}
	case x86asm.UD0, x86asm.UD1, x86asm.UD2, x86asm.HLT:
		return Trap
	}
	return Seq
}

// prefixes is what scanPrefixes learns about the bytes before the opcode.
type prefixes struct {
	legacy []byte
	rex    byte
	vex    byte // 0xc5, 0xc4 or 0x62 (EVEX), 0 for none
	vexMap byte // 1 = 0F, 2 = 0F38, 3 = 0F3A
	vexL   byte
	opPos  int // index of the opcode byte (after any VEX/EVEX payload)
}

// baseExt returns the B bit of the REX, VEX3 or EVEX prefix.
func (p prefixes) baseExt(code []byte) bool {
	switch p.vex {
	case 0:
		return p.rex&1 != 0
	case 0xc5:
		return false
	}
	// VEX3 and EVEX carry ~B in bit 5 of the byte after C4/62.
	i := len(p.legacy)
	return code[i+1]&0x20 == 0
}

func (p prefixes) has(b byte) bool {
	for _, c := range p.legacy {
		if c == b {
			return true
		}
	}
	return false
}

func scanPrefixes(code []byte) prefixes {
	var p prefixes
	i := 0
	for i < len(code) && i < 14 {
		switch code[i] {
		case 0xf0, 0xf2, 0xf3, 0x2e, 0x36, 0x3e, 0x26, 0x64, 0x65, 0x66, 0x67:
			i++
			continue
		}
		break
	}
	p.legacy = code[:i]
	if i < len(code) && code[i]&0xf0 == 0x40 {
		p.rex = code[i]
		i++
		p.opPos = i
		return p
	}
	if i < len(code) {
		switch code[i] {
		case 0xc5:
			if i+1 < len(code) {
				p.vex, p.vexMap, p.vexL = 0xc5, 1, code[i+1]>>2&1
				p.opPos = i + 2
				return p
			}
		case 0xc4:
			if i+2 < len(code) {
				p.vex, p.vexMap, p.vexL = 0xc4, code[i+1]&0x1f, code[i+2]>>2&1
				p.opPos = i + 3
				return p
			}
		case 0x62:
			if i+3 < len(code) {
				p.vex, p.vexMap, p.vexL = 0x62, code[i+1]&3, code[i+3]>>5&3
				p.opPos = i + 4
				return p
			}
		}
	}
	p.opPos = i
	return p
}

// modrmLen returns the number of bytes of the ModR/M byte at code[pos] and
// the SIB and displacement that follow it (64-bit addressing).
func modrmLen(code []byte, pos int) (int, bool) {
	if pos >= len(code) {
		return 0, false
	}
	m := code[pos]
	mod, rm := m>>6, m&7
	n := 1
	if mod == 3 {
		return n, true
	}
	if rm == 4 {
		if pos+1 >= len(code) {
			return 0, false
		}
		n++
		if mod == 0 && code[pos+1]&7 == 5 {
			n += 4
		}
	}
	switch {
	case mod == 0 && rm == 5:
		n += 4
	case mod == 1:
		n++
	case mod == 2:
		n += 4
	}
	return n, pos+n <= len(code)
}

// Walk decodes code (located at pc) instruction by instruction. It yields
// each instruction with a nil error, or, at the first byte that does not
// decode, a zero Inst with the *Error and stops.
func Walk(code []byte, pc uint64) iter.Seq2[Inst, error] {
	return func(yield func(Inst, error) bool) {
		for off := 0; off < len(code); {
			in, err := Decode(code[off:], pc+uint64(off))
			if !yield(in, err) || err != nil {
				return
			}
			off += in.Len
		}
	}
}

// DecodeAll decodes all of code (located at pc) as a run of instructions.
func DecodeAll(code []byte, pc uint64) ([]Inst, error) {
	var out []Inst
	for in, err := range Walk(code, pc) {
		if err != nil {
			return out, err
		}
		out = append(out, in)
	}
	return out, nil
}

// Family returns the 64-bit general-purpose register r is part of (AL, AX,
// EAX -> RAX; SPB -> RSP), or r itself when it is not a general-purpose
// register.
func Family(r x86asm.Reg) x86asm.Reg {
	switch {
	case r >= x86asm.AL && r <= x86asm.R15B:
		i := int(r - x86asm.AL)
		switch {
		case i < 4:
		case i < 8: // AH..BH
			i -= 4
		default: // SPB.. and R8B..
			i -= 4
		}
		return x86asm.RAX + x86asm.Reg(i)
	case r >= x86asm.AX && r <= x86asm.R15W:
		return x86asm.RAX + (r - x86asm.AX)
	case r >= x86asm.EAX && r <= x86asm.R15L:
		return x86asm.RAX + (r - x86asm.EAX)
	}
	return r
}

// UsesReg reports whether any explicit operand of the instruction names the
// 64-bit general-purpose register r (in any width, or as a memory base or
// index). Implicit operands (rAX of MUL, rCX of LOOP, ...) are not included.
func (i *Inst) UsesReg(r x86asm.Reg) bool {
	for _, a := range i.Args {
		switch a := a.(type) {
		case x86asm.Reg:
			if Family(a) == r {
				return true
			}
		case x86asm.Mem:
			if Family(a.Base) == r || Family(a.Index) == r {
				return true
			}
		}
	}
	return false
}
