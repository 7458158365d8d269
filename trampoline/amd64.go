package trampoline

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"golang.org/x/arch/x86/x86asm"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
)

// amd64Code generates x86-64 code.
//
// Relocation decisions (see also the issue "trampoline"):
//
//   - Branches (jmp/jcc/call rel8/rel32, loop/jrcxz) are re-encoded in their
//     rel32 form; beyond +-2 GiB (or with ForceFar) they become absolute:
//     jmp -> jmp [rip+0]; imm64 (14 bytes); jcc -> inverted jcc over that jmp
//     (16); call -> call [rip+2]; jmp +8; imm64 (16: the return address is the
//     short jmp, which skips the literal); loop/jrcxz -> "loop +2; jmp +5/+14;
//     jmp target" (the loop keeps its rCX semantics).
//   - A branch to an instruction boundary inside the run (or its end) stays
//     inside the copy; to the middle of an instruction it is refused.
//   - [rip+x] operands get a new disp32; out of reach: lea r64 becomes
//     mov r64, imm64; call/jmp [rip+x] load the pointer through rax saved
//     on the stack (they use the 8 bytes below rsp, which a call overwrites
//     anyway and which are dead at a tail jump); any other instruction gets
//     its ModR/M rewritten to [scratch+0] with a scratch register it does not
//     name (r8-r11/r13-r15 when the encoding's B bit is set, else rsi, rdi,
//     rbp: never an implicit operand of an instruction with a memory
//     operand), saved with push/pop below the 128-byte red zone. Instructions
//     that touch rsp, and push/pop [rip+x], are refused out of reach, as are
//     [eip+x] and xbegin.
//   - call $+5 (reads its own return address) is refused.
//   - Jump tables: a table's entries are relative to its base, so a
//     relocated `lea base,[rip+table]` keeps pointing at the OLD table, whose
//     targets are the OLD code: correct as long as no target lies inside the
//     moved bytes, because the rest of the old function stays intact (only
//     its first bytes are replaced by the entry jump). The relocator cannot
//     read the table, so with Options.Function set it recognises dispatches
//     (an indirect jmp through a register loaded from [base+idx*4|8], or jmp
//     [base+idx*8]) and refuses them (*JumpTableError) unless the caller
//     passes Options.JumpTableTargets, which are then checked like direct
//     branches.
//   - ENDBR64 at the entry is kept first in the copy (the trampoline is
//     reached by an indirect call when IBT is on), and NewDetour leaves it in
//     place at the entry and writes the jump after it (keepAtEntry): an
//     indirect call into the patched function must still land on ENDBR64.
//     The absolute forms use indirect jumps without NOTRACK: under enforced
//     IBT their targets would need ENDBR64 (no OS enforces user IBT today).
type amd64Code struct{}

func amdRel32Fits(d int64) bool { return d >= math.MinInt32 && d <= math.MaxInt32 }

func (amd64Code) nearReach(from, to uint64) bool { return amdRel32Fits(int64(to - (from + 5))) }

func (c amd64Code) jump(from, to uint64, far bool) ([]byte, error) {
	if far {
		return amd64JmpAbs(to), nil
	}
	if !c.nearReach(from, to) {
		return nil, &InstructionError{Addr: from, Inst: "jmp rel32", Why: fmt.Sprintf("target %#x is beyond rel32 reach", to)}
	}
	return amd64JmpRel32(nil, from, to), nil
}

func (amd64Code) trap() []byte { return []byte{0xcc} }

// keepAtEntry implements entryKeeper: ENDBR64/ENDBR32 stays at the entry.
func (amd64Code) keepAtEntry(code []byte) int {
	if in, err := dec.Decode(code, 0); err == nil && in.Endbr {
		return in.Len
	}
	return 0
}

func (amd64Code) prologue(code []byte, addr uint64, need int) (int, error) {
	off := 0
	for off < need {
		if off >= len(code) {
			return 0, &TooShortError{Addr: addr, Size: off, Need: need}
		}
		in, err := dec.Decode(code[off:], addr+uint64(off))
		if err != nil {
			return 0, &InstructionError{Addr: addr + uint64(off), Why: "does not decode", Err: err}
		}
		off += in.Len
		if in.Flow.Terminal() && off < need {
			// The function ends (ret, jmp, int3, ud2) before the jump
			// would: writing it would overwrite the next function.
			return 0, &TooShortError{Addr: addr, Size: off, Need: need}
		}
	}
	return off, nil
}

// amd64JmpRel32 appends jmp rel32 placed at pc reaching to.
func amd64JmpRel32(b []byte, pc, to uint64) []byte {
	return amdAppendRel32(append(b, 0xe9), int64(to-(pc+5)))
}

// amd64JmpAbs is jmp [rip+0] followed by the 8-byte target.
func amd64JmpAbs(to uint64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{0xff, 0x25, 0, 0, 0, 0}, to)
}

func amdAppendRel32(b []byte, d int64) []byte {
	return binary.LittleEndian.AppendUint32(b, uint32(int32(d)))
}

// Forms of a relocated instruction.
const (
	amdCopy = iota // bytes unchanged
	amdNear        // same shape, new rel32/disp32 (branches widened)
	amdFar         // absolute sequence
)

// amdItem is one instruction of the run being relocated.
type amdItem struct {
	in       dec.Inst
	off      int    // offset in the original run
	branch   bool   // a rel8/rel32 branch (or xbegin)
	rip      bool   // a [rip+x] operand
	internal int    // index of the target instruction in the run (n = end), or -1
	target   uint64 // external target after opts.Map
	form     int
	newOff   int
}

func (amd64Code) relocate(code []byte, from, to uint64, opts *Options) (*Relocation, error) {
	end := from + uint64(len(code))
	items := make([]amdItem, 0, len(code)/3+1)
	// byOff maps an offset in the run to the index of the instruction
	// starting there (-1 inside an instruction); the end maps to len(items).
	byOff := make([]int, len(code)+1)
	for i := range byOff {
		byOff[i] = -1
	}
	for off := 0; off < len(code); {
		in, err := dec.Decode(code[off:], from+uint64(off))
		if err != nil {
			return nil, &InstructionError{Addr: from + uint64(off), Why: "does not decode", Err: err}
		}
		byOff[off] = len(items)
		items = append(items, amdItem{in: in, off: off, internal: -1})
		off += in.Len
	}
	byOff[len(code)] = len(items)
	if err := amd64CheckFunction(opts, from, end); err != nil {
		return nil, err
	}

	mapTarget := func(t uint64) uint64 {
		if opts.Map != nil {
			if m, ok := opts.Map(t); ok {
				return m
			}
		}
		return t
	}
	for i := range items {
		it := &items[i]
		in := &it.in
		bad := func(why string) error {
			return &InstructionError{Addr: in.PC, Inst: in.String(), Why: why}
		}
		switch in.RelKind {
		case dec.RelNone:
			continue
		case dec.EIPDisp32:
			return nil, bad("[eip+disp32] addresses modulo 2^32: not relocatable")
		case dec.Rel8, dec.Rel32:
			it.branch, it.form = true, amdNear
			if in.Flow == dec.Call && in.Target == in.End() {
				return nil, bad("call $+5 reads its own address")
			}
			if in.Target >= from && in.Target <= end {
				k := byOff[int(in.Target-from)]
				if k < 0 {
					return nil, bad(fmt.Sprintf("branches to %#x, inside an instruction of the moved run", in.Target))
				}
				it.internal = k
				continue
			}
			it.target = mapTarget(in.Target)
		case dec.RIPDisp32:
			it.rip, it.form = true, amdNear
			if in.Target >= from && in.Target < end && !(in.Op == x86asm.LEA && in.Target == from) {
				// lea of the run's own first byte is the function's address
				// (kept: the entry stays the function's identity).
				k := byOff[int(in.Target-from)]
				if in.Op != x86asm.LEA {
					return nil, bad(fmt.Sprintf("reads %#x, inside the moved bytes", in.Target))
				}
				if k < 0 {
					return nil, bad(fmt.Sprintf("takes the address %#x, inside an instruction of the moved run", in.Target))
				}
				it.internal = k
				continue
			}
			it.target = in.Target
			if m := in.Args[in.MemArg].(x86asm.Mem); m.Segment != x86asm.FS && m.Segment != x86asm.GS {
				// fs:/gs:[rip+x] is an offset from the segment base, not
				// an address in the image: Map does not apply to it.
				it.target = mapTarget(in.Target)
			}
		}
		if opts.ForceFar && amd64HasFar(in) {
			it.form = amdFar
		}
	}

	// Lay out until stable: a near form that does not reach becomes far
	// (only near -> far moves, so this terminates).
	for {
		off := 0
		for i := range items {
			items[i].newOff = off
			off += amd64Size(&items[i])
		}
		changed := false
		for i := range items {
			it := &items[i]
			if it.form != amdNear || it.internal >= 0 {
				continue
			}
			endNew := to + uint64(it.newOff) + uint64(amd64Size(it))
			if !amdRel32Fits(int64(it.target - endNew)) {
				if !amd64HasFar(&it.in) {
					why := fmt.Sprintf("target %#x is beyond rel32 reach of %#x and it has no absolute form", it.target, to+uint64(it.newOff))
					if err := amd64FarRefusal(&it.in); err != "" {
						why = fmt.Sprintf("target %#x is beyond rel32 reach of %#x and %s", it.target, to+uint64(it.newOff), err)
					}
					return nil, &InstructionError{Addr: it.in.PC, Inst: it.in.String(), Why: why}
				}
				it.form = amdFar
				changed = true
			}
		}
		if !changed {
			break
		}
	}

	newEnd := 0
	if n := len(items); n > 0 {
		newEnd = items[n-1].newOff + amd64Size(&items[n-1])
	}
	rel := &Relocation{}
	out := make([]byte, 0, newEnd)
	for i := range items {
		it := &items[i]
		orig := code[it.off : it.off+it.in.Len]
		tgt := it.target
		if it.internal >= 0 {
			if it.internal == len(items) {
				tgt = to + uint64(newEnd)
			} else {
				tgt = to + uint64(items[it.internal].newOff)
			}
		}
		pc := to + uint64(it.newOff)
		start := len(out)
		var err error
		out, err = amd64Emit(out, it, orig, pc, tgt)
		if err != nil {
			return nil, err
		}
		if len(out)-start != amd64Size(it) {
			return nil, fmt.Errorf("trampoline: internal error: %v emitted %d bytes, planned %d", it.in, len(out)-start, amd64Size(it))
		}
		if !bytes.Equal(out[start:], orig) {
			rel.Rewritten++
		}
		rel.Boundaries = append(rel.Boundaries, Boundary{Old: it.off, New: it.newOff})
	}
	rel.Code = out
	return rel, nil
}

// amd64HasFar reports whether the instruction has an absolute form.
func amd64HasFar(in *dec.Inst) bool { return amd64FarRefusal(in) == "" }

// amd64FarRefusal says why an instruction has no absolute form ("" if it has).
func amd64FarRefusal(in *dec.Inst) string {
	switch in.RelKind {
	case dec.Rel8, dec.Rel32:
		if in.Flow == dec.Seq {
			return "xbegin has no absolute form"
		}
		return ""
	case dec.RIPDisp32:
	default:
		return "not PC-relative"
	}
	switch in.Op {
	case x86asm.LEA:
		if r, ok := in.Args[0].(x86asm.Reg); ok && (r >= x86asm.EAX && r <= x86asm.R15) {
			return ""
		}
		return "a 16-bit lea has no absolute form"
	case x86asm.JMP, x86asm.CALL:
		if in.Flow == dec.IndirectJump || in.Flow == dec.IndirectCall {
			if m, ok := in.Args[0].(x86asm.Mem); ok && m.Base == x86asm.RIP && in.MemBytes == 8 {
				return ""
			}
		}
		return "a far or 16/32-bit indirect branch has no absolute form"
	case x86asm.PUSH, x86asm.POP:
		return "push/pop [rip+x] moves the stack the scratch register is saved on"
	}
	if in.Flow != dec.Seq {
		// lcall/ljmp m16:64: a far branch would see the stack the scratch
		// register is saved on.
		return "a far (segment) branch through memory has no absolute form"
	}
	if in.Mnemonic != "" {
		return "its register operands are unknown to the decoder (" + in.Mnemonic + ")"
	}
	if in.UsesReg(x86asm.RSP) {
		return "it uses rsp, which the scratch register save moves"
	}
	if _, ok := amd64Scratch(in); !ok {
		return "no scratch register is free"
	}
	return ""
}

// amd64Scratch picks the register that replaces rip as the base: its ModR/M
// rm field (mod=10, disp32=0) and the register.
func amd64Scratch(in *dec.Inst) (x86asm.Reg, bool) {
	cands := []x86asm.Reg{x86asm.RSI, x86asm.RDI, x86asm.RBP}
	if in.BaseExt {
		cands = []x86asm.Reg{x86asm.R11, x86asm.R10, x86asm.R9, x86asm.R8, x86asm.R15, x86asm.R14, x86asm.R13}
	}
	for _, r := range cands {
		if !in.UsesReg(r) {
			return r, true
		}
	}
	return 0, false
}

// Sizes of the absolute forms.
const (
	amdFarJmp     = 14 // jmp [rip+0]; imm64
	amdFarJcc     = 16 // j!cc +14; jmp [rip+0]; imm64
	amdFarCall    = 16 // call [rip+2]; jmp +8; imm64
	amdFarIndir   = 27 // push rax; mov rax,imm64; mov rax,[rax]; xchg [rsp],rax; lea rsp,[rsp+8]; jmp/call [rsp-8]
	amdScratchAdd = 5 + 10 + 8
)

func amd64Size(it *amdItem) int {
	in := &it.in
	switch it.form {
	case amdCopy:
		return in.Len
	case amdNear:
		if it.rip {
			return in.Len
		}
		switch in.Flow {
		case dec.Jump, dec.Call:
			return 5
		case dec.CondJump:
			return 6
		case dec.Loop:
			return in.RelOff + 1 + 2 + 5
		}
		return in.RelOff + 4 // xbegin
	}
	if it.branch {
		switch in.Flow {
		case dec.Jump:
			return amdFarJmp
		case dec.CondJump:
			return amdFarJcc
		case dec.Call:
			return amdFarCall
		case dec.Loop:
			return in.RelOff + 1 + 2 + amdFarJmp
		}
	}
	switch in.Op {
	case x86asm.LEA:
		r := in.Args[0].(x86asm.Reg)
		if r >= x86asm.RAX {
			return 10
		}
		if r >= x86asm.R8L {
			return 6
		}
		return 5
	case x86asm.JMP, x86asm.CALL:
		return amdFarIndir
	}
	s, _ := amd64Scratch(in)
	return in.Len + amdScratchAdd + 2*amd64RegLen(s)
}

func amd64RegLen(r x86asm.Reg) int {
	if r >= x86asm.R8 {
		return 2
	}
	return 1
}

func amd64Emit(out []byte, it *amdItem, orig []byte, pc, tgt uint64) ([]byte, error) {
	in := &it.in
	switch it.form {
	case amdCopy:
		return append(out, orig...), nil
	case amdNear:
		if it.rip {
			b := append(out, orig...)
			binary.LittleEndian.PutUint32(b[len(out)+in.RelOff:], uint32(int32(int64(tgt-(pc+uint64(in.Len))))))
			return b, nil
		}
		switch in.Flow {
		case dec.Jump:
			return amd64JmpRel32(out, pc, tgt), nil
		case dec.Call:
			return amdAppendRel32(append(out, 0xe8), int64(tgt-(pc+5))), nil
		case dec.CondJump:
			return amdAppendRel32(append(out, 0x0f, 0x80|amd64Cond(in, orig)), int64(tgt-(pc+6))), nil
		case dec.Loop:
			b := append(out, orig[:in.RelOff]...)
			b = append(b, 0x02, 0xeb, 0x05) // loop +2 (taken -> the jmp below); jmp +5 (not taken)
			jpc := pc + uint64(in.RelOff+3)
			return amd64JmpRel32(b, jpc, tgt), nil
		}
		// xbegin: same opcode, new rel32.
		b := append(out, orig[:in.RelOff]...)
		return amdAppendRel32(b, int64(tgt-(pc+uint64(in.RelOff+4)))), nil
	}
	if it.branch {
		switch in.Flow {
		case dec.Jump:
			return append(out, amd64JmpAbs(tgt)...), nil
		case dec.CondJump:
			b := append(out, 0x70|(amd64Cond(in, orig)^1), amdFarJmp)
			return append(b, amd64JmpAbs(tgt)...), nil
		case dec.Call:
			b := append(out, 0xff, 0x15, 0x02, 0, 0, 0, 0xeb, 0x08)
			return binary.LittleEndian.AppendUint64(b, tgt), nil
		case dec.Loop:
			b := append(out, orig[:in.RelOff]...)
			b = append(b, 0x02, 0xeb, amdFarJmp)
			return append(b, amd64JmpAbs(tgt)...), nil
		}
	}
	switch in.Op {
	case x86asm.LEA:
		r := in.Args[0].(x86asm.Reg)
		switch {
		case r >= x86asm.RAX:
			n := byte(r - x86asm.RAX)
			b := append(out, 0x48|n>>3, 0xb8|n&7)
			return binary.LittleEndian.AppendUint64(b, tgt), nil
		default:
			// lea r32 computes the low 32 bits of the address.
			n := byte(r - x86asm.EAX)
			if n >= 8 {
				out = append(out, 0x41)
			}
			b := append(out, 0xb8|n&7)
			return binary.LittleEndian.AppendUint32(b, uint32(tgt)), nil
		}
	case x86asm.JMP, x86asm.CALL:
		b := append(out, 0x50, 0x48, 0xb8)
		b = binary.LittleEndian.AppendUint64(b, tgt)
		b = append(b, 0x48, 0x8b, 0x00, 0x48, 0x87, 0x04, 0x24, 0x48, 0x8d, 0x64, 0x24, 0x08)
		if in.Op == x86asm.JMP {
			return append(b, 0xff, 0x64, 0x24, 0xf8), nil
		}
		return append(b, 0xff, 0x54, 0x24, 0xf8), nil
	}
	s, ok := amd64Scratch(in)
	if !ok {
		return nil, &InstructionError{Addr: in.PC, Inst: in.String(), Why: "no scratch register is free"}
	}
	n := byte(s - x86asm.RAX)
	b := append(out, 0x48, 0x8d, 0x64, 0x24, 0x80) // lea rsp,[rsp-128]: step over the red zone
	if n >= 8 {
		b = append(b, 0x41)
	}
	b = append(b, 0x50|n&7)            // push scratch
	b = append(b, 0x48|n>>3, 0xb8|n&7) // mov scratch, imm64
	b = binary.LittleEndian.AppendUint64(b, tgt)
	at := len(b)
	b = append(b, orig...)
	modrm := orig[in.RelOff-1]
	b[at+in.RelOff-1] = 0x80 | modrm&0x38 | n&7 // [scratch+disp32]
	binary.LittleEndian.PutUint32(b[at+in.RelOff:], 0)
	if n >= 8 {
		b = append(b, 0x41)
	}
	b = append(b, 0x58|n&7)                              // pop scratch
	b = append(b, 0x48, 0x8d, 0xa4, 0x24, 0x80, 0, 0, 0) // lea rsp,[rsp+128]
	return b, nil
}

// amd64Cond returns the condition code (low nibble) of a jcc.
func amd64Cond(in *dec.Inst, orig []byte) byte {
	return orig[in.RelOff-1] & 0x0f
}

// amd64CheckFunction refuses a run that other parts of opts.Function branch
// into (past its first byte), directly, through a lea of a code address, or
// through a jump table whose targets were not supplied.
func amd64CheckFunction(opts *Options, from, end uint64) error {
	fn := opts.Function
	if fn == nil {
		return nil
	}
	inside := func(t uint64) bool { return t > from && t < end && t != opts.entryJump }
	var recent []dec.Inst
	var lastTable uint64
	for off := 0; off < len(fn); {
		in, err := dec.Decode(fn[off:], opts.FunctionAddr+uint64(off))
		if err != nil {
			if errors.Is(err, dec.ErrTruncated) && off+15 > len(fn) {
				break // the slice ends inside a trailing instruction
			}
			return &InstructionError{Addr: opts.FunctionAddr + uint64(off), Why: "the function body does not decode here, so branches into the moved bytes cannot be excluded", Err: err}
		}
		off += in.Len
		inRun := in.PC >= from && in.PC < end
		if !inRun {
			switch in.RelKind {
			case dec.Rel8, dec.Rel32:
				if inside(in.Target) {
					return &BranchIntoError{From: in.PC, To: in.Target}
				}
			case dec.RIPDisp32:
				if in.Op == x86asm.LEA && inside(in.Target) {
					return &BranchIntoError{From: in.PC, To: in.Target}
				}
			}
		}
		if in.Op == x86asm.LEA && in.RelKind == dec.RIPDisp32 {
			lastTable = in.Target
		}
		if amd64IsDispatch(&in, recent) {
			if opts.JumpTableTargets == nil {
				return &JumpTableError{Dispatch: in.PC, Table: lastTable}
			}
			for _, t := range opts.JumpTableTargets {
				if inside(t) {
					return &BranchIntoError{From: in.PC, To: t}
				}
			}
		}
		if len(recent) == 8 {
			recent = recent[1:]
		}
		recent = append(recent, in)
	}
	return nil
}

// amd64IsDispatch recognises a jump-table dispatch: jmp [base+idx*8], or
// jmp reg where reg was loaded from [base+idx*4|8] by one of the previous
// instructions (gcc/clang: movsxd r,[b+i*4]; add r,b; jmp r. MSVC: mov
// r32,[b+i*4+rva]; add r,imagebase; jmp r. Go: mov r,[b+i*8]; jmp r).
func amd64IsDispatch(in *dec.Inst, recent []dec.Inst) bool {
	if in.Flow != dec.IndirectJump {
		return false
	}
	switch a := in.Args[0].(type) {
	case x86asm.Mem:
		return a.Index != 0
	case x86asm.Reg:
		r := dec.Family(a)
		for k := len(recent) - 1; k >= 0; k-- {
			p := &recent[k]
			d, ok := p.Args[0].(x86asm.Reg)
			if !ok || dec.Family(d) != r {
				continue
			}
			if m, ok := p.Args[1].(x86asm.Mem); ok && m.Index != 0 && (m.Scale == 4 || m.Scale == 8) {
				return true
			}
			if p.Op != x86asm.ADD {
				return false // r was last set by something else: a computed tail call
			}
		}
	}
	return false
}
