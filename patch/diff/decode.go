package diff

import (
	"encoding/binary"
	"hash/maphash"
	"slices"

	"golang.org/x/arch/x86/x86asm"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

// template is the decoding of one function's code, independent of where the
// code is: ref targets are relative to the function start. Functions with
// identical bytes (most of them, between two builds) share one template.
type template struct {
	code   []byte
	masked []byte
	refs   []relRef
	// masks are the ARM64 immediate fields masked (x86-64 fields are the
	// refs' displacements).
	masks []wordMask
}

type wordMask struct{ off, bits uint32 }

type relRef struct {
	rawRef
	rel int64 // target - function start (ADRP pairs: target - the ADRP's page)
	// adrp: rel is relative to the 4 KiB page of the ADRP's address, which
	// depends on where the function is, not only on its bytes.
	adrp bool
	// end is the x86-64 instruction's end offset; shift the scale of an
	// ARM64 low-half immediate: what derive needs to recompute rel.
	end   uint32
	shift uint8
}

// decoder decodes functions into templates, caching by content.
type decoder struct {
	arch  image.Arch
	seed  maphash.Seed
	cache map[uint64][]*template
}

func newDecoder(a image.Arch) *decoder {
	return &decoder{arch: a, seed: maphash.MakeSeed(), cache: make(map[uint64][]*template)}
}

// decode returns the template of code; the caller must not modify it.
func (d *decoder) decode(code []byte) *template {
	h := maphash.Bytes(d.seed, code)
	for _, t := range d.cache[h] {
		if string(t.code) == string(code) {
			return t
		}
	}
	t := &template{code: code}
	if d.arch == image.ARM64 {
		decodeARM64(t)
	} else {
		decodeAMD64(t)
	}
	d.cache[h] = append(d.cache[h], t)
	return t
}

// derive returns the template of code from t, the template of another
// build's version of the same function, when code differs from t's code only
// inside masked address fields: the instructions are then the same and only
// the targets are read again. nil when it does not apply.
func (d *decoder) derive(t *template, code []byte) *template {
	if t == nil || len(code) != len(t.code) || len(t.refs) == 0 && len(t.masks) == 0 {
		return nil
	}
	nm := append([]byte(nil), code...)
	if d.arch == image.ARM64 {
		for _, m := range t.masks {
			w := binary.LittleEndian.Uint32(nm[m.off:])
			binary.LittleEndian.PutUint32(nm[m.off:], w&^m.bits)
		}
	} else {
		for _, r := range t.refs {
			if n := fieldSize(r.form); n > 0 {
				clear(nm[r.field : int(r.field)+n])
			}
		}
	}
	if string(nm) != string(t.masked) {
		return nil
	}
	nt := &template{code: code, masked: t.masked, refs: slices.Clone(t.refs), masks: t.masks}
	word := func(off uint32) uint32 { return binary.LittleEndian.Uint32(code[off:]) }
	for i := range nt.refs {
		r := &nt.refs[i]
		switch {
		case r.form == FormRel8:
			r.rel = int64(r.end) + int64(int8(code[r.field]))
		case r.form == FormRel32 || r.form == FormRIP32:
			r.rel = int64(r.end) + int64(int32(binary.LittleEndian.Uint32(code[r.field:])))
		case d.arch != image.ARM64 || r.form == FormNone:
		case r.form == FormADRP || r.form == FormADR && r.pair != 0:
			// The other build may have the ADRP relaxed to an ADR, or back.
			in := arm64.Classify(word(r.inst), uint64(r.inst))
			if in.Class == arm64.ADRP {
				r.form, r.adrp = FormADRP, true
				r.rel = int64(in.Target) - int64(r.inst&^0xFFF)
			} else {
				r.form, r.adrp = FormADR, false
				r.rel = int64(in.Target)
			}
			if !r.pageOnly {
				r.rel += int64(word(r.pair)>>10&0xFFF) << r.shift
			}
		default:
			r.rel = int64(arm64.Classify(word(r.inst), uint64(r.inst)).Target)
		}
	}
	return nt
}

// fieldSize is the size of an x86-64 displacement field.
func fieldSize(f Form) int {
	switch f {
	case FormRel8:
		return 1
	case FormRel32, FormRIP32:
		return 4
	}
	return 0
}

// instantiate places a template at function fn of v: absolute targets, and
// the function's base relocations masked and added as references.
func instantiate(v *view, t *template, fn *image.Function) body {
	b := body{masked: t.masked, refs: make([]rawRef, 0, len(t.refs))}
	for _, r := range t.refs {
		rr := r.rawRef
		if r.adrp {
			rr.target = uint32(int64((fn.RVA+r.inst)&^0xFFF) + r.rel)
		} else {
			rr.target = uint32(int64(fn.RVA) + r.rel)
		}
		b.refs = append(b.refs, rr)
	}
	if rs := v.relocsIn(fn.RVA, fn.End()); len(rs) > 0 {
		b.masked = append([]byte(nil), b.masked...)
		for _, r := range rs {
			n := int(r.Size)
			off := r.RVA - fn.RVA
			if n == 0 || int(off)+n > len(b.masked) {
				continue
			}
			tgt, ok := v.pointerAt(r.RVA, n)
			clear(b.masked[off : int(off)+n])
			form := FormAbs64
			if n == 4 {
				form = FormAbs32
			}
			if !ok {
				// An address outside the image: compared as masked bytes only.
				continue
			}
			if tgt >= fn.RVA && tgt < fn.End() {
				// Points into the function itself: compared as an offset.
				b.refs = append(b.refs, rawRef{inst: off, field: off, form: form, kind: RefAddress, target: tgt})
				continue
			}
			b.refs = append(b.refs, rawRef{inst: off, field: off, form: form, kind: RefAddress, target: tgt})
		}
		sortRefs(b.refs)
	}
	return b
}

func sortRefs(rs []rawRef) {
	// Insertion sort: few relocations, refs already sorted.
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && (rs[j].inst < rs[j-1].inst || rs[j].inst == rs[j-1].inst && rs[j].field < rs[j-1].field); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// decodeAMD64 walks x86-64 code. Outside references are rel8/rel32 branches
// and RIP-relative operands that leave the function; their displacement is
// masked. Branches inside the function keep their bytes: they are the same
// wherever the function is. Decoding stops at the first undecodable byte;
// the rest is compared as raw bytes.
func decodeAMD64(t *template) {
	code := t.code
	var masked []byte
	hasIndirect := false
	type lea struct {
		ref int // index in t.refs
		at  int // instruction offset
	}
	leas := map[x86asm.Reg]lea{}
	lastCmp := -1 // offset of the last CMP reg, imm
	var cmpImm int64
	for off := 0; off < len(code); {
		in, err := amd64.Decode(code[off:], uint64(off))
		if err != nil {
			break
		}
		if in.Flow == amd64.IndirectJump {
			hasIndirect = true
		}
		if in.Op == x86asm.CMP {
			if imm, ok := in.Args[1].(x86asm.Imm); ok {
				lastCmp, cmpImm = off, int64(imm)
			}
		}
		for _, a := range in.Args {
			if a == nil {
				break
			}
			m, ok := a.(x86asm.Mem)
			if !ok {
				continue
			}
			if m.Segment == x86asm.FS || m.Segment == x86asm.GS {
				t.refs = append(t.refs, relRef{rawRef: rawRef{inst: uint32(off), field: uint32(off), form: FormNone, kind: RefTLS}})
			}
			// A jump table read through a register that holds a table address.
			if m.Index != 0 && (m.Scale == 4 || m.Scale == 8) {
				if l, ok := leas[amd64.Family(m.Base)]; ok && t.refs[l.ref].table == nil {
					spec := &tableSpec{size: m.Scale, base: "absolute"}
					if m.Scale == 4 {
						spec.base, spec.signed = "table", true
					}
					if lastCmp >= 0 && off-lastCmp < 64 && cmpImm >= 0 && cmpImm < 4096 {
						spec.count = int(cmpImm) + 1
					}
					t.refs[l.ref].table = spec
				}
			}
		}
		if in.RelKind != amd64.RelNone && in.RelKind != amd64.EIPDisp32 {
			tgt := int64(in.Target)
			if tgt < 0 || tgt >= int64(len(code)) {
				if masked == nil {
					masked = append([]byte(nil), code...)
				}
				fo := off + in.RelOff
				clear(masked[fo : fo+in.RelKind.Size()])
				r := rawRef{inst: uint32(off), field: uint32(fo), kind: amd64Kind(&in)}
				switch in.RelKind {
				case amd64.Rel8:
					r.form = FormRel8
				case amd64.Rel32:
					r.form = FormRel32
				default:
					r.form = FormRIP32
				}
				t.refs = append(t.refs, relRef{rawRef: r, rel: tgt, end: uint32(off + in.Len)})
				if in.Op == x86asm.LEA {
					if reg, ok := in.Args[0].(x86asm.Reg); ok {
						leas[amd64.Family(reg)] = lea{ref: len(t.refs) - 1, at: off}
					}
				}
			}
		} else if in.Op != 0 && len(in.Args) > 0 {
			if reg, ok := in.Args[0].(x86asm.Reg); ok && writesFirst(in.Op) {
				delete(leas, amd64.Family(reg))
			}
		}
		off += in.Len
	}
	if !hasIndirect {
		for i := range t.refs {
			t.refs[i].table = nil
		}
	}
	if masked == nil {
		masked = code
	}
	t.masked = masked
}

// writesFirst reports whether op writes its first operand (for forgetting a
// register's table address); conservative: most ops do.
func writesFirst(op x86asm.Op) bool {
	switch op {
	case x86asm.CMP, x86asm.TEST, x86asm.PUSH, x86asm.BT, x86asm.JMP, x86asm.CALL:
		return false
	}
	return true
}

// amd64Kind is what an instruction does with its RIP-relative or branch target.
func amd64Kind(in *amd64.Inst) RefKind {
	switch in.Flow {
	case amd64.Call, amd64.IndirectCall:
		return RefCall
	case amd64.Jump, amd64.CondJump, amd64.Loop, amd64.IndirectJump:
		return RefJump
	}
	switch in.Op {
	case x86asm.LEA:
		return RefAddress
	case x86asm.CMP, x86asm.TEST, x86asm.PUSH, x86asm.BT:
		return RefRead
	}
	if in.MemArg == 0 {
		return RefWrite
	}
	return RefRead
}

// ARM64 encodings of the instructions that complete an ADRP (the low 12 bits).
const (
	a64AddImmMask = 0xFFC00000 // ADD Xd, Xn, #imm12 (no shift)
	a64AddImm     = 0x91000000
	a64LdStUMask  = 0x3B000000 // LDR/STR (unsigned offset), any size, GPR or SIMD
	a64LdStU      = 0x39000000
	a64LdRegMask  = 0xFFE00C00 // LDR* (register offset)
	a64CmpImmMask = 0x7F80001F // CMP Rn, #imm (SUBS with Rd = ZR)
	a64CmpImm     = 0x7100001F
	a64MRSTPIDR   = 0xD53BD040 // MRS Xt, TPIDR_EL0
)

// decodeARM64 walks ARM64 code word by word. Branch, ADR and literal targets
// outside the function are references (their immediate masked); an ADRP is
// paired with the ADD/LDR/STR instructions that add the low 12 bits to the
// page it computes (found by a forward data-flow over the function's basic
// blocks: compilers hoist ADRPs into callee-saved registers far from their
// uses). Both halves are masked.
func decodeARM64(t *template) {
	code := t.code
	n := len(code) / 4
	var masked []byte
	mask := func(off int, bits uint32) {
		if masked == nil {
			masked = append([]byte(nil), code...)
		}
		w := binary.LittleEndian.Uint32(masked[off:])
		binary.LittleEndian.PutUint32(masked[off:], w&^bits)
		t.masks = append(t.masks, wordMask{uint32(off), bits})
	}
	insts := make([]arm64.Inst, n)
	hasIndirect := false
	for k := range insts {
		insts[k] = arm64.Classify(binary.LittleEndian.Uint32(code[k*4:]), uint64(k*4))
		if insts[k].Class == arm64.BR {
			hasIndirect = true
		}
	}
	pairs := adrpPairs(insts, len(code))
	paired := map[int32]bool{} // ADRs/ADRPs some instruction adds low bits to
	for _, ats := range pairs {
		for _, at := range ats {
			paired[at] = true
		}
	}
	regTable := map[uint8]int{} // register -> ref index of an ADRP+ADD address
	lastCmp, cmpImm := -1, int64(0)
	lastLoad := -1
	lastADR, lastADRTarget := -1, int64(0)
	for k := range insts {
		in := &insts[k]
		off := k * 4
		w := in.Word
		if w&0xFFFFFFE0 == a64MRSTPIDR {
			t.refs = append(t.refs, relRef{rawRef: rawRef{inst: uint32(off), field: uint32(off), kind: RefTLS}})
		}
		if w&a64CmpImmMask == a64CmpImm {
			imm := int64(w>>10) & 0xFFF
			if w&(1<<22) != 0 {
				imm <<= 12
			}
			lastCmp, cmpImm = off, imm
		}
		// Table loads: LDR* (register offset) from a register holding a table.
		if w&0x3B200C00 == 0x38200800 {
			rn := uint8(w>>5) & 31
			if ri, ok := regTable[rn]; ok && t.refs[ri].table == nil {
				size := uint8(1) << (w >> 30)
				opc := (w >> 22) & 3
				if opc != 0 && w&(1<<26) == 0 { // a GPR load
					spec := &tableSpec{size: size, signed: opc >= 2}
					if size == 8 {
						spec.base = "absolute"
					} else {
						spec.base = "table"
					}
					if lastCmp >= 0 && off-lastCmp < 64 && cmpImm < 4096 {
						spec.count = int(cmpImm) + 1
					}
					t.refs[ri].table = spec
					lastLoad = ri
					if size < 4 && lastADR >= 0 && off-lastADR <= 16 {
						// clang: the label's ADR comes before the load.
						spec.base, spec.label, spec.scale = "label", uint32(lastADRTarget), 4
						lastLoad = -1
					}
				}
			}
		}
		if in.Class == arm64.ADR {
			lastADR, lastADRTarget = off, int64(in.Target)
			if lastADRTarget < 0 || lastADRTarget >= int64(len(code)) {
				lastADR = -1
			}
		}
		if in.Class == arm64.ADR && lastLoad >= 0 {
			// gcc: the table's entries are offsets from this label, in words.
			tgt := int64(in.Target)
			if tgt >= 0 && tgt < int64(len(code)) && t.refs[lastLoad].table.size < 4 {
				spec := t.refs[lastLoad].table
				spec.base, spec.label, spec.scale = "label", uint32(tgt), 4
			}
			lastLoad = -1
		}
		for _, at := range pairs[int32(k)] {
			base := &insts[at]
			// rel: for an ADRP, from the ADRP's page; for an ADR (a linker
			// relaxes ADRP to ADR when the page is near), from the function.
			rel := int64(base.Target) - int64(base.PC&^0xFFF)
			isADRP := base.Class == arm64.ADRP
			form := FormADRP
			if !isADRP {
				rel, form = int64(base.Target), FormADR
			}
			imm := int64(w>>10) & 0xFFF
			kind := RefAddress
			shift := uint8(0)
			if w&a64LdStUMask == a64LdStU {
				size := w >> 30
				v := w&(1<<26) != 0
				opc := (w >> 22) & 3
				if v && opc >= 2 {
					size = 4
				}
				imm <<= size
				shift = uint8(size)
				if opc == 0 || (v && opc == 2) {
					kind = RefWrite
				} else {
					kind = RefRead
				}
			}
			mask(off, 0xFFF<<10)
			t.refs = append(t.refs, relRef{rawRef: rawRef{inst: uint32(at * 4), field: uint32(at * 4), pair: uint32(off), form: form, kind: kind}, rel: rel + imm, adrp: isADRP, shift: shift})
			if kind == RefAddress {
				regTable[uint8(w)&31] = len(t.refs) - 1
			}
		}
		if !in.Class.PCRelative() {
			continue
		}
		tgt := int64(in.Target)
		if in.Class == arm64.ADRP || in.Class == arm64.ADR && paired[int32(k)] {
			// Bit 31 too: ADR and ADRP of one address are the same.
			mask(off, 1<<31|3<<29|0x7FFFF<<5)
			if in.Class == arm64.ADRP && !paired[int32(k)] {
				// No low half found: listed (a relocator must know), compared
				// as "some page".
				t.refs = append(t.refs, relRef{rawRef: rawRef{inst: uint32(off), field: uint32(off), form: FormADRP, kind: RefAddress, pageOnly: true}, rel: tgt - int64(off&^0xFFF), adrp: true})
			}
			continue
		}
		if tgt >= 0 && tgt < int64(len(code)) {
			continue // inside the function: same bytes wherever it is
		}
		r := rawRef{inst: uint32(off), field: uint32(off)}
		switch in.Class {
		case arm64.B, arm64.BL:
			mask(off, 0x03FFFFFF)
			r.form = FormBranch26
		case arm64.BCond, arm64.CBZ, arm64.CBNZ:
			mask(off, 0x7FFFF<<5)
			r.form = FormBranch19
		case arm64.TBZ, arm64.TBNZ:
			mask(off, 0x3FFF<<5)
			r.form = FormBranch14
		case arm64.ADR:
			mask(off, 3<<29|0x7FFFF<<5)
			r.form = FormADR
		case arm64.LDRLiteral:
			mask(off, 0x7FFFF<<5)
			r.form = FormLiteral
		}
		switch in.Flow {
		case arm64.Call:
			r.kind = RefCall
		case arm64.Jump, arm64.CondJump:
			r.kind = RefJump
		default:
			if in.Class == arm64.ADR {
				r.kind = RefAddress
			} else {
				r.kind = RefRead
			}
		}
		t.refs = append(t.refs, relRef{rawRef: r, rel: tgt})
	}
	if !hasIndirect {
		for i := range t.refs {
			t.refs[i].table = nil
		}
	}
	if masked == nil {
		masked = code
	}
	t.masked = masked
	// ADRP pairs are appended at their low half: keep refs in instruction order.
	sortRel(t.refs)
}

// Register states of the ADRP data-flow.
const (
	regTop     = -2 // not reached yet
	regUnknown = -1 // anything but one ADRP's page
)

// adrpPairs maps each instruction index that adds the low 12 bits to an
// ADRP's page (ADD imm, LDR/STR unsigned offset) to the indices of the ADRPs
// (or ADRs) whose page the base register may hold there (several where paths
// join, each having computed the same symbol's page). A
// register holds an ADRP's page from the ADRP until it is written again; at a
// join the page must be the same on every incoming path. Blocks reached only
// through an indirect branch (jump-table cases) get the state at the branch.
func adrpPairs(insts []arm64.Inst, size int) map[int32][]int32 {
	hasADRP := false
	for i := range insts {
		if insts[i].Class == arm64.ADRP || insts[i].Class == arm64.ADR {
			hasADRP = true
			break
		}
	}
	if !hasADRP {
		return nil
	}
	n := len(insts)
	// A register may hold the page of one of several ADRPs (paths joined
	// after each computed the same symbol's page: gcc merges tails): such
	// sets are interned, their code is -3-index.
	var sets [][]int32
	setCode := func(s []int32) int32 {
		for i, x := range sets {
			if slices.Equal(x, s) {
				return int32(-3 - i)
			}
		}
		sets = append(sets, s)
		return int32(-3 - (len(sets) - 1))
	}
	members := func(c int32) []int32 {
		if c >= 0 {
			return []int32{c}
		}
		return sets[-3-c]
	}
	union := func(a, b int32) int32 {
		u := append(append([]int32(nil), members(a)...), members(b)...)
		slices.Sort(u)
		u = slices.Compact(u)
		if len(u) > 32 {
			return regUnknown
		}
		return setCode(u)
	}
	// Basic blocks.
	leader := make([]bool, n+1)
	leader[0] = true
	for i := range insts {
		in := &insts[i]
		if in.Flow != arm64.Seq && in.Flow != arm64.Call {
			leader[i+1] = true
			if tgt := int64(in.Target); in.Class.PCRelative() && in.Flow != arm64.Seq && tgt >= 0 && tgt < int64(size) {
				leader[tgt/4] = true
			}
		}
	}
	var starts []int
	blockOf := make([]int32, n)
	for i := 0; i < n; i++ {
		if leader[i] {
			starts = append(starts, i)
		}
		blockOf[i] = int32(len(starts) - 1)
	}
	nb := len(starts)
	end := func(b int) int {
		if b+1 < nb {
			return starts[b+1]
		}
		return n
	}
	succs := make([][]int32, nb)
	hasPred := make([]bool, nb)
	var indirect []int32 // blocks ending in BR
	for b := 0; b < nb; b++ {
		last := &insts[end(b)-1]
		if !last.Flow.Ends() && end(b) < n {
			succs[b] = append(succs[b], int32(b+1))
		}
		if tgt := int64(last.Target); last.Class.PCRelative() && (last.Flow == arm64.Jump || last.Flow == arm64.CondJump) && tgt >= 0 && tgt < int64(size) {
			succs[b] = append(succs[b], blockOf[tgt/4])
		}
		if last.Flow == arm64.IndirectJump {
			indirect = append(indirect, int32(b))
		}
		for _, s := range succs[b] {
			hasPred[s] = true
		}
	}
	hasPred[0] = true
	for b := 0; b < nb; b++ {
		if !hasPred[b] {
			for _, ib := range indirect {
				succs[ib] = append(succs[ib], int32(b))
			}
		}
	}
	// Stack slots a 64-bit register is spilled to ([sp, #imm]): the page
	// may be spilled and reloaded (gcc does under register pressure).
	var slotOff []uint32
	for i := range insts {
		w := insts[i].Word
		if isSpill(w, 0xF9000000) { // STR Xt, [sp or x29, #imm]
			o := spillKey(w)
			if !slices.Contains(slotOff, o) && len(slotOff) < 32 {
				slotOff = append(slotOff, o)
			}
		}
	}
	width := 32 + len(slotOff)
	slotIndex := func(o uint32) int {
		for k, x := range slotOff {
			if x == o {
				return 32 + k
			}
		}
		return -1
	}
	type state []int32
	in := make([]state, nb)
	for b := range in {
		in[b] = make(state, width)
		for r := range in[b] {
			in[b][r] = regTop
		}
	}
	// At entry the argument registers (x0-x8) and sp hold values; the others
	// hold the caller's, which the function never reads before writing: they
	// are "no information" like a clobbered register.
	for r := 0; r <= 8; r++ {
		in[0][r] = regUnknown
	}
	in[0][31] = regUnknown
	transfer := func(st state, i int, pairs map[int32][]int32) {
		x := &insts[i]
		w := x.Word
		rd := w & 31
		rn := (w >> 5) & 31
		switch {
		case x.Class == arm64.ADRP || x.Class == arm64.ADR && (int64(x.Target) < 0 || int64(x.Target) >= int64(size)):
			st[rd] = int32(i)
			return
		case w&0xFFE0FFE0 == 0xAA0003E0: // MOV Xd, Xm (ORR Xd, XZR, Xm)
			st[rd] = st[(w>>16)&31]
			return
		case isSpill(w, 0xF9000000): // spill
			if k := slotIndex(spillKey(w)); k >= 0 {
				st[k] = st[rd]
			}
			return
		case isSpill(w, 0xF9400000): // reload
			st[rd] = regUnknown
			if k := slotIndex(spillKey(w)); k >= 0 {
				st[rd] = st[k]
			}
			return
		case w&a64AddImmMask == a64AddImm || w&a64LdStUMask == a64LdStU:
			if pairs != nil && (st[rn] >= 0 || st[rn] <= -3) {
				pairs[int32(i)] = members(st[rn])
			}
			if w&a64LdStUMask == a64LdStU && isStore(w) {
				return
			}
		case x.Class == arm64.BL || x.Class == arm64.BLR:
			// A call clobbers the caller-saved registers: code never reads
			// them afterwards before writing them, so a path that reaches a
			// read with a clobbered register is not taken (the callee did
			// not return: gcc lets noreturn calls fall into the next
			// block). Clobbered is "no information" (top), not unknown.
			for r := 0; r <= 18; r++ {
				st[r] = regTop
			}
			st[30] = regTop
			return
		case x.Flow != arm64.Seq || isStore(w):
			return // branches, stores: bits 0-4 are read
		}
		st[rd] = regUnknown
		if w&0x3A000000 == 0x28000000 { // load pair: Rt2 too
			st[(w>>10)&31] = regUnknown
		}
	}
	meet := func(dst state, src state) bool {
		changed := false
		for r := range dst {
			a, b := dst[r], src[r]
			var m int32
			switch {
			case a == regTop:
				m = b
			case b == regTop || a == b:
				m = a
			case a == regUnknown || b == regUnknown:
				m = regUnknown
			default:
				m = union(a, b)
			}
			if m != a {
				dst[r] = m
				changed = true
			}
		}
		return changed
	}
	work := []int32{0}
	queued := make([]bool, nb)
	queued[0] = true
	st := make(state, width)
	for len(work) > 0 {
		b := work[len(work)-1]
		work = work[:len(work)-1]
		queued[b] = false
		copy(st, in[b])
		for i := starts[b]; i < end(int(b)); i++ {
			transfer(st, i, nil)
		}
		for _, s := range succs[b] {
			if meet(in[s], st) && !queued[s] {
				queued[s] = true
				work = append(work, s)
			}
		}
	}
	pairs := map[int32][]int32{}
	for b := 0; b < nb; b++ {
		copy(st, in[b])
		for r := range st {
			if st[r] == regTop {
				st[r] = regUnknown // not reached by any direct path
			}
		}
		for i := starts[b]; i < end(b); i++ {
			transfer(st, i, pairs)
		}
	}
	return pairs
}

func sortRel(rs []relRef) {
	for i := 1; i < len(rs); i++ {
		for j := i; j > 0 && (rs[j].inst < rs[j-1].inst || rs[j].inst == rs[j-1].inst && rs[j].pair < rs[j-1].pair); j-- {
			rs[j], rs[j-1] = rs[j-1], rs[j]
		}
	}
}

// isSpill reports whether w is the 64-bit STR (op 0xF9000000) or LDR
// (0xF9400000) with an unsigned offset from sp or x29: a stack slot.
func isSpill(w, op uint32) bool {
	rn := (w >> 5) & 31
	return w&0xFFC00000 == op && (rn == 31 || rn == 29)
}

// spillKey identifies the stack slot of a spill or reload.
func spillKey(w uint32) uint32 { return (w>>5)&31<<12 | (w>>10)&0xFFF }

// isStore reports whether an ARM64 load/store word is a store, whose Rt
// (bits 0-4) is read, not written.
func isStore(w uint32) bool {
	if w&0x0A000000 != 0x08000000 { // not a load/store
		return false
	}
	return w&(1<<22) == 0 // L bit clear (for most forms)
}
