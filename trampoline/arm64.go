package trampoline

import (
	"encoding/binary"
	"fmt"

	dec "github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

// ARM64 code generation.
//
// Entry jumps. Near: one B (imm26, +-128 MiB), which a single aligned 4-byte
// store can write while other threads run. Far: LDR X16, #8; BR X16; .quad
// target (16 bytes). LDR (literal) needs no alignment of its 8-byte literal
// on AArch64 (user mode runs with SCTLR_EL1.A clear on Linux and Windows; an
// unaligned literal costs at most a split load), so the far jump works at any
// 4-byte aligned address; it clobbers x16, which AAPCS64 lets any branch
// between functions (veneer) clobber.
//
// Trap filler: BRK #0xF000, the encoding of Windows' __debugbreak, which both
// Windows (STATUS_BREAKPOINT) and Linux (SIGTRAP) report as a breakpoint,
// rather than UDF (SIGILL), so a stray jump into the filler reads as a debug
// trap. Prologue lengths are whole words, so the filler is rarely written.
//
// Relocation keeps each PC-relative instruction in its own form when the
// displacement from its new address fits, and otherwise escalates, never
// shrinking, until the layout is stable:
//
//	B, BL          B/BL            -> MOV x16, #abs; BR/BLR x16
//	B.cond, CBZ/CBNZ, TBZ/TBNZ
//	               re-encoded      -> inverted over a B (8 bytes)
//	                               -> inverted over MOV x16, #abs; BR x16
//	ADR Xd         ADR             -> ADRP Xd; ADD Xd, Xd, #lo12 -> MOV Xd, #abs
//	ADRP Xd        ADRP            -> MOV Xd, #page
//
// opts.Map is asked for each target outside the run; for an ADRP followed
// by its ADD #lo12 or load/store it is asked for the pair's full address
// (see a64MapPairs), for a lone ADRP for its page.
//
//	LDR (literal)  re-encoded      -> ADRP Xs; LDR Rt, [Xs, #lo12] (or ADD first)
//	                               -> MOV Xs, #abs; LDR Rt, [Xs]
//
// MOV x, #abs is a MOVZ plus one MOVK per further non-zero halfword: no data
// in the instruction stream. Xs is Rt itself for W, X and SW loads (the load
// overwrites it anyway) and a scratch register for SIMD loads and PRFM.
//
// Scratch registers: x16 (IP0) or x17 (IP1), the first one no instruction of
// the run names. BL (and B to a target outside the function) may always use
// x16: the callee is free to clobber both. When the run names both and a form
// needs one, Relocate refuses (a PRFM then becomes a NOP: it is only a hint).
//
// Jump tables and other code addresses: an ADR (or ADRP+ADD pair) in the run
// whose target is code inside the run takes the address of moved code, as
// the switch dispatch `adr xB, base; ldrb wI, [xT, wI, uxtw]; add xB, xB, wI,
// sxtb #2; br xB` (gcc) and clang's variant (table in .rodata, offsets from a
// code label) do. The table's offsets stay valid only if the copy keeps every
// instruction at its original offset from the base, and only if every case
// target moved too. So: when the run is the whole function and no instruction
// changed size, the ADR points into the copy; otherwise Relocate refuses with
// an *InstructionError naming the dispatch. It never leaves the base pointing
// into the old, overwritten bytes.
//
// A dispatch elsewhere in opts.Function (its BR or base not moved) keeps
// using the old table and the old code, which is right unless a case target
// lies in the moved bytes. The table is data the relocator cannot read, so
// the offsets' range is bounded from the dispatch itself (uxtb/ldrb: base to
// base+1020; sxtb: base-512 to base+508; halfwords likewise); when that range
// cannot reach past the first moved word the dispatch is accepted, else
// opts.JumpTableTargets decides and without it Relocate refuses with a
// *JumpTableError (Table: the offsets table's address, when an ADRP+ADD or
// ADR of it is seen).
//
// Data in the run: words an LDR (literal) of the run reads are copied
// verbatim. Other data inside the moved bytes (a table reached by ADR, say)
// is indistinguishable from code and is decoded as instructions, so a word
// that looks PC-relative would be re-encoded: compilers place such tables
// outside the function (gcc after it, clang and MSVC in read-only data),
// and a run holding an ADR of its own bytes is refused unless it is the
// whole function and keeps its layout.
//
// Not handled: BTI-guarded pages (a far jump's BR x16 landing mid-function,
// or on a replacement without BTI c, faults where the kernel enforces BTI);
// FEAT_CMPBR compare-and-branch (CB<cc>, Armv9.6) is re-encoded within its
// +-1 KiB but refused beyond it (no inverted form is generated).
type arm64Code struct{}

const (
	a64BRK    = 0xD43E0000 // BRK #0xF000
	a64NOP    = 0xD503201F
	a64LDRX16 = 0x58000050 // LDR X16, #8
	a64BRX16  = 0xD61F0200 // BR X16
	a64MOVZ   = 0xD2800000 // MOVZ Xd, #imm16, LSL #hw*16
	a64MOVK   = 0xF2800000 // MOVK Xd, #imm16, LSL #hw*16
	a64BR     = 0xD61F0000 // BR Xn
	a64BLR    = 0xD63F0000 // BLR Xn
	a64B      = 0x14000000
	a64ADRP   = 0x90000000
	a64ADDimm = 0x91000000 // ADD Xd, Xn, #imm12
	a64IP0    = 16
	a64IP1    = 17
	a64ZR     = 31
)

func a64Words(ws ...uint32) []byte {
	b := make([]byte, 4*len(ws))
	for k, w := range ws {
		binary.LittleEndian.PutUint32(b[4*k:], w)
	}
	return b
}

func (arm64Code) nearReach(from, to uint64) bool { return dec.Reaches(dec.B, from, to) }

func (c arm64Code) jump(from, to uint64, far bool) ([]byte, error) {
	if from&3 != 0 || to&3 != 0 {
		return nil, fmt.Errorf("trampoline: arm64 jump %#x -> %#x: both addresses must be 4-byte aligned", from, to)
	}
	if !far {
		w, ok := dec.Retarget(dec.Classify(a64B, from), from, to)
		if !ok {
			return nil, fmt.Errorf("trampoline: arm64 B at %#x cannot reach %#x (+-128 MiB)", from, to)
		}
		return a64Words(w), nil
	}
	b := a64Words(a64LDRX16, a64BRX16, 0, 0)
	binary.LittleEndian.PutUint64(b[8:], to)
	return b, nil
}

func (arm64Code) trap() []byte { return a64Words(a64BRK) }

// keepAtEntry keeps a leading BTI (c, j or jc) at the entry: where the
// kernel enforces BTI an indirect call must land on one, and it has no other
// effect. PACIASP/PACIBSP, also valid landing pads, are not kept: they sign
// LR, which the replacement would then return to unauthenticated; they move
// into the trampoline, whose jump back reaches the original's AUTIASP with
// the same SP.
func (arm64Code) keepAtEntry(code []byte) int {
	if len(code) < 4 {
		return 0
	}
	switch binary.LittleEndian.Uint32(code) {
	case 0xD503241F, 0xD503245F, 0xD503249F, 0xD50324DF: // BTI, BTI c, BTI j, BTI jc
		return 4
	}
	return 0
}

// prologue returns need rounded up to whole words, refusing when the function
// ends (return, indirect jump, trap, or B leaving code) before need bytes:
// the words after it may be another function or data.
func (arm64Code) prologue(code []byte, addr uint64, need int) (int, error) {
	if addr&3 != 0 {
		return 0, fmt.Errorf("trampoline: arm64 function at %#x is not 4-byte aligned", addr)
	}
	n := 0
	for n < need {
		if n+4 > len(code) {
			return 0, &TooShortError{Addr: addr, Size: len(code), Need: need}
		}
		i := dec.Classify(binary.LittleEndian.Uint32(code[n:]), addr+uint64(n))
		n += 4
		ends := i.Flow.Ends()
		if i.Flow == dec.Jump && i.Target >= addr && i.Target < addr+uint64(len(code)) {
			ends = false // a branch inside the function does not end it
		}
		if ends && n < need {
			return 0, &TooShortError{Addr: addr, Size: n, Need: need}
		}
	}
	return n, nil
}

// form is how one instruction is emitted, in escalating order.
type a64Form uint8

const (
	a64Copy a64Form = iota // copied or re-encoded in place (4 bytes)
	a64Near                // 8-12 bytes, still PC-relative (inverted+B, ADRP pairs)
	a64Abs                 // absolute address in a register
)

type a64Inst struct {
	dec.Inst
	off     int    // offset in the run
	data    bool   // a literal read by an LDR of the run: copied verbatim
	inRun   bool   // PC-relative target inside the run
	target  uint64 // target to reach (mapped when outside the run)
	form    a64Form
	scratch uint8 // register for absolute forms that need one
	// ADRP pairs (a64MapPairs): the ADRP's page after Map, and the second
	// instruction's word with its imm12 adjusted.
	paired   bool
	pairPage uint64
	patched  bool
	patch    uint32
	callOut  bool // BL, or B leaving the function: x16 is dead there
	size     int
}

func (arm64Code) relocate(code []byte, from, to uint64, opts *Options) (*Relocation, error) {
	if len(code)%4 != 0 || from&3 != 0 || to&3 != 0 {
		return nil, fmt.Errorf("trampoline: arm64 code must be whole 4-byte words at aligned addresses (len %d, from %#x, to %#x)", len(code), from, to)
	}
	end := from + uint64(len(code))
	inRun := func(t uint64) bool { return t >= from && t < end }
	insts := make([]a64Inst, len(code)/4)
	for k := range insts {
		insts[k] = a64Inst{Inst: dec.Classify(binary.LittleEndian.Uint32(code[4*k:]), from+uint64(4*k)), off: 4 * k}
	}
	// Literals inside the run are data: never reinterpret them. One that
	// straddles the run's end would be read half from the copy, half from
	// the original: refuse it.
	for _, in := range insts {
		if in.Class == dec.LDRLiteral && inRun(in.Target) {
			size := max(in.Literal.Size(), 4)
			if in.Target+uint64(size) > end {
				return nil, &InstructionError{Addr: in.PC, Inst: in.Inst.String(), Why: fmt.Sprintf("its literal at %#x straddles the end of the moved bytes (%#x)", in.Target, end)}
			}
			for t := in.Target &^ 3; t < in.Target+uint64(size) && inRun(t); t += 4 {
				insts[(t-from)/4].data = true
			}
		}
	}
	if err := a64CheckBranchInto(from, end, opts); err != nil {
		return nil, err
	}
	if err := a64MapPairs(insts, from, end, opts); err != nil {
		return nil, err
	}
	wholeFunction := opts.Function == nil || (opts.FunctionAddr == from && len(opts.Function) == len(code))
	codeAddrTaken, err := a64CheckAddressTaken(insts, from, end, wholeFunction)
	if err != nil {
		return nil, err
	}
	// Scratch registers no instruction of the run names, computed when a
	// form first needs one (it needs arm64asm's operands: the slow part).
	var free []uint8
	freeDone := false
	scratch := func() []uint8 {
		if !freeDone {
			freeDone = true
			for k := range insts {
				insts[k].DecodeAsm() // once, not per register asked
			}
			for _, r := range []uint8{a64IP0, a64IP1} {
				used := false
				for _, in := range insts {
					if !in.data && in.UsesReg(r) {
						used = true
						break
					}
				}
				if !used {
					free = append(free, r)
				}
			}
		}
		return free
	}
	funcStart, funcEnd := from, end
	if opts.Function != nil {
		funcStart, funcEnd = opts.FunctionAddr, opts.FunctionAddr+uint64(len(opts.Function))
	}
	for k := range insts {
		in := &insts[k]
		if in.data || !in.PCRelative() || (in.Class == dec.ADR && in.Reg == a64ZR) {
			in.size = 4
			continue
		}
		in.inRun = inRun(in.Target) && in.Class != dec.ADRP
		in.target = in.Target
		if in.paired {
			in.target = in.pairPage // a64MapPairs mapped the pair's address
		} else if !in.inRun && opts.Map != nil {
			if t, ok := opts.Map(in.Target); ok {
				in.target = t
			}
		}
		if !in.inRun && opts.ForceFar {
			in.form = a64Abs
		}
		in.callOut = in.Class == dec.BL || (in.Class == dec.B && (in.Target < funcStart || in.Target >= funcEnd))
	}
	// Lay out, escalating forms until every instruction fits.
	newOff := make([]int, len(insts))
	for iter := 0; ; iter++ {
		pos := 0
		for k := range insts {
			newOff[k] = pos
			insts[k].size = a64Size(&insts[k])
			pos += insts[k].size
		}
		changed := false
		for k := range insts {
			in := &insts[k]
			if in.data || !in.PCRelative() || in.form == a64Abs {
				continue
			}
			t := in.target
			if in.inRun {
				t = to + uint64(newOff[(in.Target-from)/4]) + (in.Target & 3)
			}
			if !a64Fits(in, to+uint64(newOff[k]), t) {
				in.form++
				changed = true
			}
		}
		if !changed {
			break
		}
		if iter > 3*len(insts)+3 {
			return nil, fmt.Errorf("trampoline: arm64 layout of %d instructions at %#x did not converge", len(insts), from)
		}
	}
	// Scratch registers for the absolute forms that need one.
	for k := range insts {
		in := &insts[k]
		needs := in.form == a64Abs || (in.form == a64Near && in.Class == dec.LDRLiteral)
		if in.data || !in.PCRelative() || !needs || in.Class == dec.ADR || in.Class == dec.ADRP {
			continue // ADR and ADRP build the address in Rd itself
		}
		switch {
		case in.Class == dec.LDRLiteral && !in.Literal.SIMD() && in.Literal != dec.LitPRFM && in.Reg != a64ZR:
			in.scratch = in.Reg // the load overwrites it anyway
		case len(scratch()) > 0:
			in.scratch = free[0]
		case in.callOut:
			in.scratch = a64IP0 // a call or tail call may clobber x16 anyway
		default:
			in.scratch = a64ZR // none: refused by a64Emit
		}
	}
	if codeAddrTaken != nil {
		for k, in := range insts {
			if newOff[k] != in.off {
				return nil, codeAddrTaken
			}
		}
	}
	rel := &Relocation{Boundaries: make([]Boundary, 0, len(insts))}
	out := make([]byte, 0, len(code)+16)
	for k := range insts {
		in := &insts[k]
		rel.Boundaries = append(rel.Boundaries, Boundary{Old: in.off, New: len(out)})
		if in.patched {
			out = append(out, a64Words(in.patch)...)
			rel.Rewritten++
			continue
		}
		if in.data || in.size == 4 && in.form == a64Copy && !in.PCRelative() {
			out = append(out, code[in.off:in.off+4]...)
			continue
		}
		if in.Class == dec.ADR && in.Reg == a64ZR {
			out = append(out, code[in.off:in.off+4]...)
			continue
		}
		t := in.target
		if in.inRun {
			t = to + uint64(newOff[(in.Target-from)/4]) + (in.Target & 3)
		}
		ws, err := a64Emit(in, to+uint64(len(out)), t)
		if err != nil {
			return nil, err
		}
		b := a64Words(ws...)
		if len(b) != in.size {
			return nil, fmt.Errorf("trampoline: internal error: arm64 %s at %#x emitted %d bytes, planned %d", in.Inst, in.PC, len(b), in.size)
		}
		if len(b) != 4 || binary.LittleEndian.Uint32(b) != in.Word {
			rel.Rewritten++
		}
		out = append(out, b...)
	}
	rel.Code = out
	if err := a64CheckJumpBack(insts, from, end, to+uint64(len(out)), opts); err != nil {
		return nil, err
	}
	return rel, nil
}

// a64MapPairs applies opts.Map to ADRP pairs: an ADRP followed by an ADD
// #lo12 or a load/store based on its register forms one address, and that
// address (not the page) is what a symbol-level Map knows. The ADRP then
// reaches the mapped page and the second instruction's imm12 is rewritten
// to the mapped low bits. Refused when the page register is used again
// after the pair (the other uses need the old page) or the new low bits are
// not a multiple of the access size. An ADRP whose next instruction is a
// branch target inside the run, or is not a pair, maps its page alone.
func a64MapPairs(insts []a64Inst, from, end uint64, opts *Options) error {
	if opts.Map == nil {
		return nil
	}
	targets := map[uint64]bool{}
	for _, in := range insts {
		if !in.data && in.Flow != dec.Seq && in.Target >= from && in.Target < end {
			targets[in.Target] = true
		}
	}
	for k := 0; k+1 < len(insts); k++ {
		in, nx := &insts[k], &insts[k+1]
		if in.data || nx.data || in.Class != dec.ADRP || targets[nx.PC] {
			continue
		}
		p, ok := dec.PairTarget(in.Inst, nx.Inst)
		if !ok {
			continue
		}
		in.paired, in.pairPage = true, in.Target
		m, ok := opts.Map(p.Target)
		if !ok || m == p.Target {
			continue
		}
		bad := func(why string) error {
			return &InstructionError{Addr: in.PC, Inst: in.Inst.String(), Why: why}
		}
		if !p.Consumes {
			return bad(fmt.Sprintf("its pair with the next instruction reaches %#x, mapped to %#x, but the page register is used again after it", p.Target, m))
		}
		if (m&0xFFF)%p.Scale != 0 {
			return bad(fmt.Sprintf("the pair's target %#x maps to %#x, not a multiple of the %d-byte access", p.Target, m, p.Scale))
		}
		in.pairPage = m &^ 0xFFF
		nx.patched = true
		nx.patch = nx.Word&^(0xFFF<<10) | uint32((m&0xFFF)/p.Scale)<<10
	}
	return nil
}

// a64CheckJumpBack: when the run is the head of opts.Function (a detour's
// prologue) and falls through at its end, the caller appends a jump back to
// `end`; out of B's reach that is LDR x16/BR x16, which destroys x16. Refuse
// when the moved code names x16 (it may leave a value there for the rest of
// the function).
func a64CheckJumpBack(insts []a64Inst, from, end, backAt uint64, opts *Options) error {
	if opts.Function == nil || opts.FunctionAddr != from || uint64(len(opts.Function)) <= end-from {
		return nil
	}
	if len(insts) > 0 && insts[len(insts)-1].Flow.Ends() {
		return nil // never falls through: the jump back is never taken
	}
	if dec.Reaches(dec.B, backAt, end) && !opts.ForceFar {
		return nil
	}
	for _, in := range insts {
		if in.data {
			continue
		}
		in.DecodeAsm()
		if in.UsesReg(a64IP0) {
			return &InstructionError{Addr: in.PC, Inst: in.Inst.String(), Why: fmt.Sprintf("it uses x16, which the far jump back to %#x (LDR x16; BR x16) would destroy", end)}
		}
	}
	return nil
}

// a64MovAbs returns MOVZ/MOVK words loading v into Xd: one per non-zero
// halfword (at least one).
func a64MovAbs(rd uint8, v uint64) []uint32 { return a64MovAbsN(rd, v, false) }

// a64MovAbsN is a64MovAbs, or with all four words when full (for targets inside
// the run, whose value depends on the layout being computed).
func a64MovAbsN(rd uint8, v uint64, full bool) []uint32 {
	var ws []uint32
	for hw := uint32(0); hw < 4; hw++ {
		h := uint32(v>>(16*hw)) & 0xFFFF
		if h == 0 && !full {
			continue
		}
		op := uint32(a64MOVK)
		if len(ws) == 0 {
			op = a64MOVZ
		}
		ws = append(ws, op|hw<<21|h<<5|uint32(rd))
	}
	if len(ws) == 0 {
		ws = append(ws, a64MOVZ|uint32(rd))
	}
	return ws
}

// a64LdrBase returns LDR (unsigned offset) with Rn=0, Rt=0, imm12=0 of the same
// kind as an LDR (literal), and its access size (the imm12 scale).
func a64LdrBase(l dec.Literal) (uint32, int) {
	switch l {
	case dec.LitW:
		return 0xB9400000, 4
	case dec.LitX:
		return 0xF9400000, 8
	case dec.LitSW:
		return 0xB9800000, 4
	case dec.LitS:
		return 0xBD400000, 4
	case dec.LitD:
		return 0xFD400000, 8
	case dec.LitQ:
		return 0x3DC00000, 16
	}
	return 0xF9800000, 8 // PRFM
}

// a64AlwaysCond reports a B.cond that is always taken (AL, NV): inverting its
// condition does not give "never", so it is moved as an unconditional B.
func a64AlwaysCond(in *a64Inst) bool { return in.Class == dec.BCond && in.Cond >= 14 }

// a64Size returns the bytes in's current form emits. Absolute forms depend
// only on the (external) target value, never on the layout.
func a64Size(in *a64Inst) int {
	if in.data || !in.PCRelative() || (in.Class == dec.ADR && in.Reg == a64ZR) {
		return 4
	}
	if in.form == a64Copy {
		return 4
	}
	mov := 4 * len(a64MovAbsN(0, in.target, in.inRun))
	switch in.Class {
	case dec.B, dec.BL:
		return mov + 4
	case dec.BCond, dec.CBZ, dec.CBNZ, dec.TBZ, dec.TBNZ:
		skip := 4
		if a64AlwaysCond(in) {
			skip = 0
		}
		if in.form == a64Near {
			return skip + 4
		}
		return skip + mov + 4
	case dec.ADR:
		if in.form == a64Near {
			return 8
		}
		return mov
	case dec.ADRP:
		return 4 * len(a64MovAbs(0, in.target&^0xFFF))
	case dec.LDRLiteral:
		if in.form == a64Near {
			// An in-run literal's final address is not known yet: always
			// the three-word form.
			_, scale := a64LdrBase(in.Literal)
			if !in.inRun && int(in.target&0xFFF)%scale == 0 {
				return 8
			}
			return 12
		}
		return mov + 4
	}
	return 4
}

// a64Fits reports whether in's current (non-absolute) form placed at pc
// reaches t.
func a64Fits(in *a64Inst, pc, t uint64) bool {
	switch in.form {
	case a64Copy:
		if a64AlwaysCond(in) {
			return dec.Reaches(dec.BCond, pc, t)
		}
		if in.Class == dec.ADR {
			return dec.Reaches(dec.ADR, pc, t)
		}
		return dec.Reaches(in.Class, pc, t)
	case a64Near:
		switch in.Class {
		case dec.BCond, dec.CBZ, dec.CBNZ, dec.TBZ, dec.TBNZ:
			skip := uint64(4)
			if a64AlwaysCond(in) {
				skip = 0
			}
			return dec.Reaches(dec.B, pc+skip, t)
		case dec.ADR, dec.LDRLiteral:
			return dec.Reaches(dec.ADRP, pc, t)
		}
		return false // B, BL, ADRP have no middle form
	}
	return true
}

// a64Emit encodes in's chosen form at pc reaching t.
func a64Emit(in *a64Inst, pc, t uint64) ([]uint32, error) {
	bad := func(why string) error {
		return &InstructionError{Addr: in.PC, Inst: in.Inst.String(), Why: why}
	}
	needScratch := func() (uint8, error) {
		if in.scratch == a64ZR {
			return 0, bad("its absolute form needs a scratch register and the moved code uses both x16 and x17")
		}
		return in.scratch, nil
	}
	retarget := func(i dec.Inst, at, target uint64) ([]uint32, error) {
		w, ok := dec.Retarget(i, at, target)
		if !ok {
			return nil, bad(fmt.Sprintf("internal error: %#x out of reach from %#x", target, at))
		}
		return []uint32{w}, nil
	}
	switch in.Class {
	case dec.B, dec.BL:
		if in.form == a64Copy {
			return retarget(in.Inst, pc, t)
		}
		r, err := needScratch()
		if err != nil {
			return nil, err
		}
		op := uint32(a64BR)
		if in.Class == dec.BL {
			op = a64BLR
		}
		return append(a64MovAbsN(r, t, in.inRun), op|uint32(r)<<5), nil

	case dec.BCond, dec.CBZ, dec.CBNZ, dec.TBZ, dec.TBNZ:
		if in.form == a64Copy {
			return retarget(in.Inst, pc, t)
		}
		var ws []uint32
		var tail []uint32
		if in.form == a64Near {
			tail = []uint32{a64B}
		} else {
			r, err := needScratch()
			if err != nil {
				return nil, err
			}
			tail = append(a64MovAbsN(r, t, in.inRun), a64BR|uint32(r)<<5)
		}
		at := pc
		if !a64AlwaysCond(in) {
			// The inverted branch skips the tail when the original would
			// have fallen through.
			inv := in.Word ^ 0x01000000 // CBZ<->CBNZ, TBZ<->TBNZ (bit 24)
			if in.Class == dec.BCond {
				inv = in.Word ^ 1 // condition's low bit inverts it
			}
			w, err := retarget(dec.Classify(inv, pc), pc, pc+4+4*uint64(len(tail)))
			if err != nil {
				return nil, err
			}
			ws = append(ws, w...)
			at += 4
		}
		if in.form == a64Near {
			w, err := retarget(dec.Classify(a64B, at), at, t)
			if err != nil {
				return nil, err
			}
			return append(ws, w...), nil
		}
		return append(ws, tail...), nil

	case dec.CBcc:
		if in.form == a64Copy {
			return retarget(in.Inst, pc, t)
		}
		return nil, bad(fmt.Sprintf("FEAT_CMPBR compare-and-branch to %#x is out of its +-1 KiB reach from %#x and is not rewritten", t, pc))

	case dec.ADR:
		switch in.form {
		case a64Copy:
			return retarget(in.Inst, pc, t)
		case a64Near:
			rd := uint32(in.Reg)
			w, err := retarget(dec.Classify(a64ADRP|rd, pc), pc, t)
			if err != nil {
				return nil, err
			}
			return append(w, a64ADDimm|uint32(t&0xFFF)<<10|rd<<5|rd), nil
		}
		return a64MovAbsN(in.Reg, t, in.inRun), nil

	case dec.ADRP:
		if in.form == a64Copy {
			return retarget(in.Inst, pc, t)
		}
		return a64MovAbs(in.Reg, t&^0xFFF), nil

	case dec.LDRLiteral:
		if in.form == a64Copy {
			return retarget(in.Inst, pc, t)
		}
		r := in.scratch
		if r == a64ZR {
			if in.Literal == dec.LitPRFM { // only a hint: drop it
				ws := make([]uint32, a64Size(in)/4)
				for k := range ws {
					ws[k] = a64NOP
				}
				return ws, nil
			}
			return nil, bad("its absolute form needs a scratch register and the moved code uses both x16 and x17")
		}
		op, scale := a64LdrBase(in.Literal)
		rt := uint32(in.Word & 0x1F) // Rt, or the PRFM operation
		if in.form == a64Near {
			w, err := retarget(dec.Classify(a64ADRP|uint32(r), pc), pc, t)
			if err != nil {
				return nil, err
			}
			lo := uint32(t & 0xFFF)
			if !in.inRun && int(lo)%scale == 0 {
				return append(w, op|(lo/uint32(scale))<<10|uint32(r)<<5|rt), nil
			}
			return append(w, a64ADDimm|lo<<10|uint32(r)<<5|uint32(r), op|uint32(r)<<5|rt), nil
		}
		return append(a64MovAbsN(r, t, in.inRun), op|uint32(r)<<5|rt), nil
	}
	return nil, bad("internal error: unexpected class " + in.Class.String())
}

// a64CheckBranchInto refuses when code of opts.Function outside [from, end)
// branches to (or takes with ADR the address of) a place past the run's
// first byte, or loads a literal from any of its bytes: after the entry
// jump is written that place is gone.
func a64CheckBranchInto(from, end uint64, opts *Options) error {
	if opts.Function == nil {
		return nil
	}
	fa := opts.FunctionAddr
	if fa&3 != 0 {
		return nil // not ARM64 code: nothing to decode reliably
	}
	insts := make([]dec.Inst, len(opts.Function)/4)
	for k := range insts {
		insts[k] = dec.Classify(binary.LittleEndian.Uint32(opts.Function[4*k:]), fa+uint64(4*k))
	}
	for k, i := range insts {
		if i.PC >= from && i.PC < end {
			continue
		}
		t := i.Target
		switch i.Class {
		case dec.B, dec.BL, dec.BCond, dec.CBZ, dec.CBNZ, dec.TBZ, dec.TBNZ, dec.ADR:
		case dec.LDRLiteral:
			// A literal in the moved bytes is overwritten by the entry jump,
			// even at their first byte.
			size := uint64(max(i.Literal.Size(), 4))
			if i.Literal != dec.LitPRFM && t < end && t+size > from {
				return &BranchIntoError{From: i.PC, To: t}
			}
			continue
		case dec.ADRP:
			var ok bool
			if t, ok = a64AdrpPair(i, insts, k); !ok {
				continue
			}
		default:
			continue
		}
		if t > from && t < end && t != opts.entryJump {
			// (A branch to the entry jump itself, after a kept BTI, is
			// like a branch to the entry.)
			return &BranchIntoError{From: i.PC, To: t}
		}
	}
	return a64CheckDispatches(insts, from, end, opts)
}

// a64Dispatch is a recognised jump-table dispatch: `br xN` after
// `add xN, xB, xM, <extend> #2`, where xB was set by `adr xB, base`.
type a64Dispatch struct {
	br       uint64 // address of the BR
	base     uint64 // the ADR's target (0: not found)
	baseAt   uint64 // address of that ADR
	table    uint64 // address of the offsets table when found (0 if not)
	lo, hi   int64  // byte range of targets relative to base
	bounded  bool   // lo/hi are known
	fromPair bool   // the base ADR lies in insts
}

// a64FindDispatch recognises the dispatch ending at the BR insts[k]
// (gcc: ldrb/ldrh wM, [xT, wI, uxtw]; adr xB, base; add xN, xB, wM, sxtb/sxth #2;
// br xN. clang: ldrb wM, [xT, xI]; adr xB, base; add xN, xB, xM, lsl #2; br xN),
// looking at most 8 instructions back.
func a64FindDispatch(insts []dec.Inst, k int) (a64Dispatch, bool) {
	br := insts[k]
	if br.Class != dec.BR || br.Word&0xFFFFFC1F != a64BR {
		return a64Dispatch{}, false
	}
	d := a64Dispatch{br: br.PC}
	lo := max(0, k-8)
	n := uint32(br.Reg)
	var rb, rm uint32
	var ext uint32 = 99
	j := k - 1
	for ; j >= lo; j-- {
		w := insts[j].Word
		if w&0x1F != n {
			continue
		}
		switch {
		case w&0xFFE00000 == 0x8B200000 && w>>10&7 == 2: // ADD (extended register), #2
			rb, rm, ext = w>>5&0x1F, w>>16&0x1F, w>>13&7
		case w&0xFF200000 == 0x8B000000 && w>>22&3 == 0 && w>>10&0x3F == 2: // ADD (shifted), LSL #2
			rb, rm, ext = w>>5&0x1F, w>>16&0x1F, 3
		default:
			return a64Dispatch{}, false // xN comes from something else
		}
		break
	}
	if ext == 99 {
		return a64Dispatch{}, false
	}
	switch ext {
	case 0: // UXTB
		d.lo, d.hi, d.bounded = 0, 255*4, true
	case 1: // UXTH
		d.lo, d.hi, d.bounded = 0, 65535*4, true
	case 4: // SXTB
		d.lo, d.hi, d.bounded = -128*4, 127*4, true
	case 5: // SXTH
		d.lo, d.hi, d.bounded = -32768*4, 32767*4, true
	}
	for i := j - 1; i >= lo; i-- {
		in := insts[i]
		w := in.Word
		switch {
		case in.Class == dec.ADR && uint32(in.Reg) == rb && d.base == 0:
			d.base, d.baseAt, d.fromPair = in.Target, in.PC, true
		case w&0x1F == rm && !d.bounded && (w&0xFFE00C00 == 0x38600800 || w&0xFFC00000 == 0x39400000): // LDRB
			d.lo, d.hi, d.bounded = 0, 255*4, true
			d.table = a64RegValue(insts, i, w>>5&0x1F, lo)
		case w&0x1F == rm && !d.bounded && (w&0xFFE00C00 == 0x78600800 || w&0xFFC00000 == 0x79400000): // LDRH
			d.lo, d.hi, d.bounded = 0, 65535*4, true
			d.table = a64RegValue(insts, i, w>>5&0x1F, lo)
		case w&0x1F == rm && d.table == 0 && (w&0xFFE00C00 == 0x38600800 || w&0xFFE00C00 == 0x78600800 ||
			w&0xFFC00000 == 0x39400000 || w&0xFFC00000 == 0x79400000 || w&0xFFE00C00 == 0x38A00800 ||
			w&0xFFE00C00 == 0x38E00800 || w&0xFFE00C00 == 0x78A00800 || w&0xFFE00C00 == 0x78E00800):
			d.table = a64RegValue(insts, i, w>>5&0x1F, lo)
		}
	}
	return d, true
}

// a64RegValue returns the address an ADR, or an ADRP followed by ADD #lo12,
// between insts[lo] and insts[k] (exclusive) left in register r, or 0.
func a64RegValue(insts []dec.Inst, k int, r uint32, lo int) uint64 {
	for i := k - 1; i >= lo; i-- {
		in := insts[i]
		if in.Word&0x1F != r {
			continue
		}
		switch {
		case in.Class == dec.ADR:
			return in.Target
		case in.Word&0xFFC00000 == a64ADDimm && in.Word>>5&0x1F == r && i > lo && insts[i-1].Class == dec.ADRP && uint32(insts[i-1].Reg) == r:
			return insts[i-1].Target + uint64(in.Word>>10&0xFFF)
		case in.Class == dec.ADRP:
			return in.Target
		}
		return 0
	}
	return 0
}

// a64CheckDispatches refuses a jump-table dispatch of the function that may
// reach into the moved bytes: its table (offsets from a base label) lives in
// data the relocator cannot read. A dispatch whose base and range of offsets
// (by the extend of its ADD or the width of its load) keep every target
// outside the moved bytes is fine; otherwise opts.JumpTableTargets decides,
// and without it the function is refused (*JumpTableError). A dispatch whose
// BR and base both move with the run is a64CheckAddressTaken's business.
func a64CheckDispatches(insts []dec.Inst, from, end uint64, opts *Options) error {
	inRun := func(a uint64) bool { return a >= from && a < end }
	for k, in := range insts {
		if in.Class != dec.BR {
			continue
		}
		d, ok := a64FindDispatch(insts, k)
		if !ok || (inRun(d.br) && d.base != 0 && inRun(d.base)) {
			continue
		}
		if opts.JumpTableTargets != nil {
			for _, t := range opts.JumpTableTargets {
				if t > from && t < end {
					return &BranchIntoError{From: d.br, To: t}
				}
			}
			continue
		}
		if d.base != 0 && d.bounded {
			// Targets are base+4k; the moved words past the first are
			// [from+4, end-4].
			lo, hi := d.base+uint64(d.lo), d.base+uint64(d.hi)
			if end-from <= 4 || hi < from+4 || lo > end-4 {
				continue // no target can land in the moved bytes
			}
		}
		return &JumpTableError{Dispatch: d.br, Table: d.table}
	}
	return nil
}

// a64AdrpPair returns the full address an ADRP at insts[k] forms with an
// `ADD Xd, Xd, #lo12` right after it.
func a64AdrpPair(i dec.Inst, insts []dec.Inst, k int) (uint64, bool) {
	if k+1 >= len(insts) {
		return 0, false
	}
	w := insts[k+1].Word
	rd := uint32(i.Reg)
	if w&0xFFC00000 != a64ADDimm || w&0x1F != rd || w>>5&0x1F != rd {
		return 0, false
	}
	return i.Target + uint64(w>>10&0xFFF), true
}

// a64CheckAddressTaken finds an ADR (or ADRP+ADD) of the run taking the
// address of code inside the run: a jump-table base or a label for an
// indirect branch. When the run is not the whole function it refuses at once
// (case targets outside the run would be reached from the copy's base); when
// it is, the returned error is raised if the layout changes.
func a64CheckAddressTaken(insts []a64Inst, from, end uint64, wholeFunction bool) (error, error) {
	plain := make([]dec.Inst, len(insts))
	for k := range insts {
		plain[k] = insts[k].Inst
	}
	for k, in := range insts {
		if in.data {
			continue
		}
		t := in.Target
		switch in.Class {
		case dec.ADR:
		case dec.ADRP:
			var ok bool
			if t, ok = a64AdrpPair(in.Inst, plain, k); !ok {
				continue
			}
		default:
			continue
		}
		if t < from || t >= end || insts[(t-from)/4].data {
			continue
		}
		what := "takes the address of moved code at %#x"
		dispatch := uint64(0)
		for _, j := range insts[k+1:] {
			if !j.data && j.Class == dec.BR {
				what = "is the base of a jump table (code at %#x)"
				dispatch = j.PC
				break
			}
		}
		why := fmt.Sprintf(what, t)
		if dispatch != 0 {
			why += fmt.Sprintf(" dispatched by the br at %#x", dispatch)
		}
		if !wholeFunction {
			return nil, &InstructionError{Addr: in.PC, Inst: in.Inst.String(), Why: why + "; only part of the function moves, so its offsets would lead out of the copy"}
		}
		return &InstructionError{Addr: in.PC, Inst: in.Inst.String(), Why: why + "; relocation changed instruction sizes, so offsets from it would be wrong"}, nil
	}
	return nil, nil
}
