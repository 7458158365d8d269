package trampoline

import (
	"encoding/binary"
	"fmt"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

// This file is an independent reading of relocated ARM64 code: it evaluates
// the few instruction forms the relocator emits (MOVZ/MOVK, ADR/ADRP, ADD
// immediate, loads, branches) over a slice of output and reports what the
// slice does, so tests can compare it with what the original instruction did.

type a64EffKind int

const (
	a64EffJump a64EffKind = iota // unconditional transfer
	a64EffCall                   // call (BL/BLR)
	a64EffCond                   // conditional branch (word kept for its condition)
	a64EffLoad                   // load (or prefetch) from an address
)

type a64Effect struct {
	kind   a64EffKind
	target uint64
	inst   dec.Inst // the instruction producing the effect
}

type a64Eval struct {
	regs    map[uint8]uint64
	effects []a64Effect
}

// a64LdrKinds maps LDR (unsigned offset) opcodes to their literal kinds.
var a64LdrKinds = map[uint32]dec.Literal{
	0xB9400000: dec.LitW, 0xF9400000: dec.LitX, 0xB9800000: dec.LitSW,
	0xBD400000: dec.LitS, 0xFD400000: dec.LitD, 0x3DC00000: dec.LitQ, 0xF9800000: dec.LitPRFM,
}

// evalA64 evaluates code placed at pc.
func evalA64(code []byte, pc uint64) (*a64Eval, error) {
	e := &a64Eval{regs: map[uint8]uint64{}}
	for off := 0; off+4 <= len(code); off += 4 {
		w := binary.LittleEndian.Uint32(code[off:])
		at := pc + uint64(off)
		i := dec.Decode(w, at)
		rd, rn := uint8(w&0x1F), uint8(w>>5&0x1F)
		known := func(r uint8) (uint64, error) {
			v, ok := e.regs[r]
			if !ok {
				return 0, fmt.Errorf("%#x: %v uses x%d of unknown value", at, i, r)
			}
			return v, nil
		}
		switch {
		case i.Class == dec.B:
			e.effects = append(e.effects, a64Effect{a64EffJump, i.Target, i})
		case i.Class == dec.BL:
			e.effects = append(e.effects, a64Effect{a64EffCall, i.Target, i})
		case i.Class == dec.BCond && i.Cond >= 14:
			e.effects = append(e.effects, a64Effect{a64EffJump, i.Target, i})
		case i.Class == dec.BCond || i.Class == dec.CBZ || i.Class == dec.CBNZ || i.Class == dec.TBZ || i.Class == dec.TBNZ || i.Class == dec.CBcc:
			e.effects = append(e.effects, a64Effect{a64EffCond, i.Target, i})
		case i.Class == dec.ADR || i.Class == dec.ADRP:
			e.regs[rd] = i.Target
		case i.Class == dec.LDRLiteral:
			e.effects = append(e.effects, a64Effect{a64EffLoad, i.Target, i})
		case i.Class == dec.BR || i.Class == dec.BLR:
			v, err := known(rn)
			if err != nil {
				return nil, err
			}
			k := a64EffJump
			if i.Class == dec.BLR {
				k = a64EffCall
			}
			e.effects = append(e.effects, a64Effect{k, v, i})
		case w&0xFF800000 == 0xD2800000: // MOVZ X
			e.regs[rd] = uint64(w>>5&0xFFFF) << (16 * (w >> 21 & 3))
		case w&0xFF800000 == 0xF2800000: // MOVK X
			v, err := known(rd)
			if err != nil {
				return nil, err
			}
			sh := 16 * (w >> 21 & 3)
			e.regs[rd] = v&^(0xFFFF<<sh) | uint64(w>>5&0xFFFF)<<sh
		case w&0xFFC00000 == 0x91000000: // ADD Xd, Xn, #imm12
			v, err := known(rn)
			if err != nil {
				return nil, err
			}
			e.regs[rd] = v + uint64(w>>10&0xFFF)
		case a64LdrKinds[w&0xFFC00000] != dec.LitNone:
			v, err := known(rn)
			if err != nil {
				return nil, err
			}
			lit := a64LdrKinds[w&0xFFC00000]
			scale := uint64(max(lit.Size(), 4))
			if lit == dec.LitPRFM {
				scale = 8
			}
			// Describe the load as the LDR (literal) it stands for.
			litWord := [...]uint32{dec.LitW: 0x18000000, dec.LitX: 0x58000000, dec.LitSW: 0x98000000,
				dec.LitS: 0x1C000000, dec.LitD: 0x5C000000, dec.LitQ: 0x9C000000, dec.LitPRFM: 0xD8000000}[lit] | w&0x1F
			e.effects = append(e.effects, a64Effect{a64EffLoad, v + uint64(w>>10&0xFFF)*scale, dec.Decode(litWord, at)})
			if !lit.SIMD() && lit != dec.LitPRFM {
				delete(e.regs, rd) // loaded value: unknown
			}
		case w == a64NOP:
		default:
			return nil, fmt.Errorf("%#x: unexpected %v in relocated sequence", at, i)
		}
	}
	return e, nil
}

// checkA64 verifies that out (the relocated form of orig, placed at pc, with
// the next instruction at pc+len(out)) does what orig did with target t (for
// ADRP: the page of t).
func checkA64(orig dec.Inst, out []byte, pc, t uint64) error {
	if !orig.PCRelative() {
		if len(out) != 4 || binary.LittleEndian.Uint32(out) != orig.Word {
			return fmt.Errorf("%v: not PC-relative but changed to % x", orig, out)
		}
		return nil
	}
	if orig.Class == dec.ADR && orig.Reg == 31 {
		return nil
	}
	e, err := evalA64(out, pc)
	if err != nil {
		return fmt.Errorf("%v: %w", orig, err)
	}
	next := pc + uint64(len(out))
	effs := e.effects
	want := func(k a64EffKind, target uint64) error {
		if len(effs) != 1 || effs[0].kind != k || effs[0].target != target {
			return fmt.Errorf("%v at %#x: got effects %+v, want one of kind %d to %#x", orig, pc, effs, k, target)
		}
		return nil
	}
	switch orig.Class {
	case dec.B:
		return want(a64EffJump, t)
	case dec.BL:
		return want(a64EffCall, t)
	case dec.BCond, dec.CBZ, dec.CBNZ, dec.TBZ, dec.TBNZ, dec.CBcc:
		if orig.Class == dec.BCond && orig.Cond >= 14 {
			return want(a64EffJump, t)
		}
		if len(effs) == 1 { // same condition, re-encoded
			if effs[0].kind != a64EffCond || effs[0].target != t || !a64SameCond(orig, effs[0].inst, false) {
				return fmt.Errorf("%v: got %v to %#x", orig, effs[0].inst, effs[0].target)
			}
			return nil
		}
		if len(effs) != 2 || effs[0].kind != a64EffCond || effs[0].target != next || !a64SameCond(orig, effs[0].inst, true) || effs[1].kind != a64EffJump || effs[1].target != t {
			return fmt.Errorf("%v at %#x: got effects %+v, want inverted skip to %#x then jump to %#x", orig, pc, effs, next, t)
		}
		return nil
	case dec.ADR, dec.ADRP:
		if orig.Class == dec.ADRP {
			t &^= 0xFFF
		}
		if len(effs) != 0 || e.regs[orig.Reg] != t {
			return fmt.Errorf("%v: x%d = %#x (effects %+v), want %#x", orig, orig.Reg, e.regs[orig.Reg], effs, t)
		}
		return nil
	case dec.LDRLiteral:
		if orig.Literal == dec.LitPRFM && len(effs) == 0 {
			return nil // dropped hint (no scratch register)
		}
		if err := want(a64EffLoad, t); err != nil {
			return err
		}
		got := effs[0].inst
		if got.Literal != orig.Literal || got.Reg != orig.Reg {
			return fmt.Errorf("%v: loads as %v", orig, got)
		}
		return nil
	}
	return fmt.Errorf("%v: unexpected class", orig)
}

// a64SameCond reports whether b tests the same condition as a (inverted if inv).
func a64SameCond(a dec.Inst, b dec.Inst, inv bool) bool {
	switch a.Class {
	case dec.BCond:
		c := a.Cond
		if inv {
			c ^= 1
		}
		return b.Class == dec.BCond && b.Cond == c && b.Consistent == a.Consistent
	case dec.CBZ, dec.CBNZ:
		want := a.Class
		if inv {
			want = map[dec.Class]dec.Class{dec.CBZ: dec.CBNZ, dec.CBNZ: dec.CBZ}[a.Class]
		}
		return b.Class == want && b.Reg == a.Reg && b.Wide == a.Wide
	case dec.CBcc:
		return !inv && b.Class == dec.CBcc && b.Word&^(0x1FF<<5) == a.Word&^(0x1FF<<5)
	case dec.TBZ, dec.TBNZ:
		want := a.Class
		if inv {
			want = map[dec.Class]dec.Class{dec.TBZ: dec.TBNZ, dec.TBNZ: dec.TBZ}[a.Class]
		}
		return b.Class == want && b.Reg == a.Reg && b.Bit == a.Bit
	}
	return false
}

// checkRelocationA64 checks every instruction of a relocation of code (from
// `from` to `to`): in-run targets must land on the copy of their instruction,
// others on mapTarget(target).
func checkRelocationA64(code []byte, from, to uint64, rel *Relocation, mapTarget func(uint64) uint64) error {
	n := len(code) / 4
	if len(rel.Boundaries) != n {
		return fmt.Errorf("%d boundaries for %d a64W", len(rel.Boundaries), n)
	}
	end := from + uint64(len(code))
	data := map[uint64]bool{}
	insts := dec.DecodeAll(code, from)
	for _, i := range insts {
		if i.Class == dec.LDRLiteral && i.Target >= from && i.Target < end {
			for a := i.Target &^ 3; a < i.Target+uint64(max(i.Literal.Size(), 4)); a += 4 {
				data[a] = true
			}
		}
	}
	// In-run branch targets: an ADRP whose next word is one is not a pair.
	targets := map[uint64]bool{}
	for _, i := range insts {
		if !data[i.PC] && i.Flow != dec.Seq && i.Target >= from && i.Target < end {
			targets[i.Target] = true
		}
	}
	slice := func(k int) []byte {
		stop := len(rel.Code)
		if k+1 < n {
			stop = rel.Boundaries[k+1].New
		}
		return rel.Code[rel.Boundaries[k].New:stop]
	}
	pairSecond := map[int]bool{}
	for k, i := range insts {
		if pairSecond[k] {
			continue
		}
		b := rel.Boundaries[k]
		out := slice(k)
		if k+1 < n && !data[i.PC] && !data[insts[k+1].PC] && !targets[insts[k+1].PC] {
			if p, ok := dec.PairTarget(i, insts[k+1]); ok {
				// The pair must still form the (mapped) address: run the
				// ADRP's slice, then decode the second word against it.
				pairSecond[k+1] = true
				e, err := evalA64(out, to+uint64(b.New))
				if err != nil {
					return fmt.Errorf("pair %v: %w", i, err)
				}
				page, ok := e.regs[i.Reg]
				if !ok || len(e.effects) != 0 {
					return fmt.Errorf("pair %v: x%d not set (effects %+v)", i, i.Reg, e.effects)
				}
				second := slice(k + 1)
				if len(second) != 4 {
					return fmt.Errorf("pair %v: second instruction became %d bytes", i, len(second))
				}
				w := binary.LittleEndian.Uint32(second)
				if w&^(0xFFF<<10) != insts[k+1].Word&^(0xFFF<<10) {
					return fmt.Errorf("pair %v: second word %#08x changed beyond imm12 (%#08x)", i, w, insts[k+1].Word)
				}
				np, ok := dec.PairTarget(dec.Inst{Class: dec.ADRP, Reg: i.Reg, Target: page}, dec.Classify(w, 0))
				want := mapTarget(p.Target)
				if !ok || np.Target != want {
					return fmt.Errorf("pair %v + %#08x: forms %#x, want %#x", i, insts[k+1].Word, np.Target, want)
				}
				if !p.Consumes && want != p.Target {
					return fmt.Errorf("pair %v: remapped although its page is used again", i)
				}
				continue
			}
		}
		if data[i.PC] {
			if len(out) != 4 || binary.LittleEndian.Uint32(out) != i.Word {
				return fmt.Errorf("literal word at %#x changed", i.PC)
			}
			continue
		}
		t := i.Target
		if i.PCRelative() && t >= from && t < end && i.Class != dec.ADRP {
			nb, ok := rel.NewOffset(int(t-from) &^ 3)
			if !ok {
				return fmt.Errorf("%v: in-run target %#x has no boundary", i, t)
			}
			t = to + uint64(nb) + t&3
		} else if i.PCRelative() {
			t = mapTarget(t)
		}
		if err := checkA64(i, out, to+uint64(b.New), t); err != nil {
			return err
		}
	}
	return nil
}
