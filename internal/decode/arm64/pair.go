package arm64

// Pair is the full address an ADRP forms with the instruction after it, and
// how that instruction uses it.
type Pair struct {
	Target uint64 // page + low 12 bits (ADD) or page + scaled offset (load/store)
	// Scale is the unit of the second instruction's imm12 (1 for ADD; the
	// access size for a load/store), so a new target must be a multiple.
	Scale uint64
	// Consumes: the second instruction overwrites the ADRP's register (ADD
	// Xd, Xd, #lo12 or a load into Xd), so nothing later can use the page.
	Consumes bool
}

// PairTarget resolves `ADRP Xd, page` followed by `ADD Xn, Xd, #lo12` or a
// load/store (unsigned offset) based on Xd: the address the two form. ok is
// false for any other pair.
func PairTarget(adrp, next Inst) (Pair, bool) {
	if adrp.Class != ADRP {
		return Pair{}, false
	}
	w, rd := next.Word, uint32(adrp.Reg)
	if w>>5&0x1F != rd {
		return Pair{}, false
	}
	imm := uint64(w >> 10 & 0xFFF)
	switch {
	case w&0xFFC00000 == 0x91000000: // ADD Xd, Xn, #imm12 (no shift)
		return Pair{Target: adrp.Target + imm, Scale: 1, Consumes: w&0x1F == rd}, true
	case w&0x3B000000 == 0x39000000: // load/store register (unsigned offset)
		size, v, opc := w>>30, w>>26&1, w>>22&3
		scale := uint64(1) << size
		if v == 1 && opc >= 2 {
			if size != 0 {
				return Pair{}, false // unallocated
			}
			scale = 16 // Q
		}
		load := opc != 0 && !(v == 0 && size == 3 && opc == 2) // opc 10 with size 11 is PRFM
		return Pair{Target: adrp.Target + imm*scale, Scale: scale, Consumes: load && v == 0 && w&0x1F == rd}, true
	}
	return Pair{}, false
}
