package trampoline

import (
	"encoding/binary"
	"fmt"
	"slices"

	"golang.org/x/arch/x86/x86asm"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
)

// amdChunkTargets decodes one relocated instruction's code (chunk, placed at
// pc) with the decoder as oracle and returns every address it reaches or
// references outside itself: branch targets, [rip+x] addresses, the literal
// of jmp/call [rip+x] when the slot is inside the chunk, and mov reg,imm
// values (absolute forms). A branch to the chunk's own start counts too.
func amdChunkTargets(chunk []byte, pc uint64) ([]uint64, []dec.Inst, error) {
	var out []uint64
	var insts []dec.Inst
	end := pc + uint64(len(chunk))
	in := func(a uint64) bool { return a >= pc && a < end }
	var literals [][2]uint64
	for off := 0; off < len(chunk); {
		a := pc + uint64(off)
		skip := false
		for _, l := range literals {
			if a >= l[0] && a < l[1] {
				off = int(l[1] - pc)
				skip = true
			}
		}
		if skip {
			continue
		}
		i, err := dec.Decode(chunk[off:], a)
		if err != nil {
			return nil, nil, err
		}
		insts = append(insts, i)
		off += i.Len
		switch i.RelKind {
		case dec.Rel8, dec.Rel32:
			if !in(i.Target) || i.Target == pc {
				out = append(out, i.Target)
			}
		case dec.RIPDisp32, dec.EIPDisp32:
			if in(i.Target) && (i.Op == x86asm.JMP || i.Op == x86asm.CALL) {
				o := i.Target - pc
				if o+8 > uint64(len(chunk)) {
					return nil, nil, fmt.Errorf("literal at %#x runs past the chunk", i.Target)
				}
				out = append(out, binary.LittleEndian.Uint64(chunk[o:]))
				literals = append(literals, [2]uint64{i.Target, i.Target + 8})
			} else {
				out = append(out, i.Target)
			}
		}
		if i.Op == x86asm.MOV {
			if v, ok := i.Args[1].(x86asm.Imm); ok {
				if r, ok := i.Args[0].(x86asm.Reg); ok && r >= x86asm.RAX && r <= x86asm.R15 {
					out = append(out, uint64(v))
				} else if ok && r >= x86asm.EAX && r <= x86asm.R15L {
					out = append(out, uint64(uint32(v)))
				}
			}
		}
	}
	return out, insts, nil
}

// amdBranchesInto reports whether want lies inside the chunk at pc and one
// of its branches goes there. amdChunkTargets leaves such targets out (they
// are the chunk's own control flow), but an original target outside the
// run may fall inside its relocated copy when the copy sits near it: the
// fuzzer found XBEGIN moved to 2 bytes before its abort target.
func amdBranchesInto(insts []dec.Inst, want, pc uint64, n int) bool {
	if want <= pc || want >= pc+uint64(n) {
		return false
	}
	for _, i := range insts {
		if (i.RelKind == dec.Rel8 || i.RelKind == dec.Rel32) && i.Target == want {
			return true
		}
	}
	return false
}

// amdVerifyRelocation checks rel against the original run with the decoder as
// oracle: every original instruction's copy reaches the mapped target (or the
// copy of an internal target), instructions without a PC-relative operand are
// copied byte for byte, and the copies of PC-relative instructions keep the
// same operation.
func amdVerifyRelocation(code []byte, from, to uint64, opts *Options, rel *Relocation) error {
	orig, err := dec.DecodeAll(code, from)
	if err != nil {
		return err
	}
	if len(orig) != len(rel.Boundaries) {
		return fmt.Errorf("%d instructions, %d boundaries", len(orig), len(rel.Boundaries))
	}
	end := from + uint64(len(code))
	newStart := func(k int) int {
		if k == len(rel.Boundaries) {
			return len(rel.Code)
		}
		return rel.Boundaries[k].New
	}
	oldIndex := func(t uint64) (int, bool) {
		if t == end {
			return len(orig), true
		}
		for k, o := range orig {
			if o.PC == t {
				return k, true
			}
		}
		return 0, false
	}
	for k, o := range orig {
		b := rel.Boundaries[k]
		if b.Old != int(o.PC-from) {
			return fmt.Errorf("boundary %d: old %d, want %d", k, b.Old, o.PC-from)
		}
		chunk := rel.Code[b.New:newStart(k+1)]
		pc := to + uint64(b.New)
		if o.RelKind == dec.RelNone {
			if string(chunk) != string(code[b.Old:b.Old+o.Len]) {
				return fmt.Errorf("%v at %#x: copied as % x", o, o.PC, chunk)
			}
			continue
		}
		want := o.Target
		internal := false
		if o.RelKind == dec.Rel8 || o.RelKind == dec.Rel32 {
			internal = o.Target >= from && o.Target <= end
		} else if o.Op == x86asm.LEA && o.Target > from && o.Target < end {
			internal = true
		}
		if internal {
			j, ok := oldIndex(o.Target)
			if !ok {
				return fmt.Errorf("%v at %#x: internal target %#x is not a boundary", o, o.PC, o.Target)
			}
			want = to + uint64(newStart(j))
		} else if m, ok := o.Args[max(o.MemArg, 0)].(x86asm.Mem); ok && (m.Segment == x86asm.FS || m.Segment == x86asm.GS) {
			// an offset from the segment base: never mapped
		} else if opts != nil && opts.Map != nil {
			if m, ok := opts.Map(o.Target); ok {
				want = m
			}
		}
		got, insts, err := amdChunkTargets(chunk, pc)
		if err != nil {
			return fmt.Errorf("%v at %#x: relocated % x: %w", o, o.PC, chunk, err)
		}
		if r, ok := o.Args[0].(x86asm.Reg); ok && o.Op == x86asm.LEA && r >= x86asm.EAX && r <= x86asm.R15L {
			// lea r32 computes the low 32 bits of the address.
			want = uint64(uint32(want))
			for k := range got {
				got[k] = uint64(uint32(got[k]))
			}
		}
		if !slices.Contains(got, want) && !amdBranchesInto(insts, want, pc, len(chunk)) {
			return fmt.Errorf("%v at %#x: relocated % x reaches %x, want %#x", o, o.PC, chunk, got, want)
		}
		if err := amdCheckShape(o, code[b.Old:b.Old+o.Len], chunk, pc, insts, want); err != nil {
			return fmt.Errorf("%v at %#x: relocated % x: %w", o, o.PC, chunk, err)
		}
		sameOp := false
		for _, i := range insts {
			if i.Op == o.Op || o.Flow == dec.CondJump && i.Flow == dec.CondJump ||
				o.Flow != dec.Seq && i.Flow == o.Flow || o.Op == x86asm.LEA && i.Op == x86asm.MOV {
				sameOp = true
			}
		}
		if !sameOp && o.Mnemonic == "" && !o.Endbr {
			return fmt.Errorf("%v at %#x: relocated % x lost the operation", o, o.PC, chunk)
		}
	}
	return nil
}

// amdCheckShape checks the control structure of a relocated branch: every
// branch inside the chunk lands on one of its instruction boundaries or its
// end (or on target, the original's target, when the copy happens to cover
// it: see amdBranchesInto), a jcc keeps its condition (or inverts it when it skips an absolute
// jump to the chunk's end), a loop/jrcxz skips to the jump to the target, and
// a call returns to code that leaves the chunk.
func amdCheckShape(o dec.Inst, orig, chunk []byte, pc uint64, insts []dec.Inst, target uint64) error {
	end := pc + uint64(len(chunk))
	starts := map[uint64]bool{end: true}
	for _, i := range insts {
		starts[i.PC] = true
	}
	cc := func(i dec.Inst, b []byte) byte { return b[i.RelOff-1] & 0x0f }
	for k, i := range insts {
		if (i.RelKind == dec.Rel8 || i.RelKind == dec.Rel32) && i.Target > pc && i.Target < end && !starts[i.Target] && i.Target != target {
			return fmt.Errorf("branch at %#x into the middle of an instruction (%#x)", i.PC, i.Target)
		}
		ib := chunk[i.PC-pc:]
		switch {
		case i.Flow == dec.CondJump && o.Flow == dec.CondJump:
			want := cc(o, orig)
			if i.Target == end && len(insts) > k+1 {
				want ^= 1 // inverted over the absolute jump
			}
			if cc(i, ib) != want {
				return fmt.Errorf("condition %x, want %x", cc(i, ib), want)
			}
		case i.Flow == dec.Loop:
			if i.Op != o.Op || k != 0 || len(insts) < 3 || i.Target != insts[2].PC || insts[1].Flow != dec.Jump || insts[1].Target != end {
				return fmt.Errorf("loop rewrite shape %v", insts)
			}
		case i.Flow == dec.Call || i.Flow == dec.IndirectCall:
			if k+1 < len(insts) && !(insts[k+1].Flow == dec.Jump && insts[k+1].Target == end) {
				return fmt.Errorf("call at %#x returns into %v", i.PC, insts[k+1])
			}
		}
	}
	return nil
}
