package image

import (
	"bytes"
	"encoding/binary"

	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
)

// maxCallRounds bounds the fixpoint iteration of callTargets. Each round
// only decodes the functions the previous one found; real images settle in
// a handful of rounds (a chain of leaf calls).
const maxCallRounds = 64

// callTargets decodes every known function, instruction by instruction, and
// adds the targets of its direct calls (x64 E8 rel32, ARM64 BL) as starts,
// then decodes those, until no new start appears. FromCallTarget marks the
// starts this discovers; a start already known from another source does not
// get it (a function that can only call known ones is not decoded: see
// mayCallFresh). A target must lie in an
// executable section and not strictly inside a .pdata range (a call into
// the middle of a function with exact extent is not an entry point of a new
// one). x64 is decoded instruction by instruction from the function's start,
// never by scanning for E8 bytes, which would find calls inside other
// instructions. A body that stops decoding (data in code) is scanned up to
// there. The scan stops early (leaving starts undiscovered, never wrong)
// once it has decoded twice the image's code. It returns the candidates
// sorted by RVA, all sized.
func (fs *peFuncs) callTargets(cands []*peCand) []*peCand {
	// pdata ranges, sorted by start, to reject calls into their middle.
	var exact []*peCand
	for _, c := range cands {
		if c.extent == FromPdata {
			exact = append(exact, c)
		}
	}
	insideExact := func(t uint32) bool {
		lo, hi := 0, len(exact)
		for lo < hi {
			m := (lo + hi) / 2
			if exact[m].rva <= t {
				lo = m + 1
			} else {
				hi = m
			}
		}
		return lo > 0 && t > exact[lo-1].rva && t < exact[lo-1].end
	}
	// fresh reports whether a call to t would add a start.
	fresh := func(t uint64) bool {
		if t >= 1<<32 || !fs.inCode(uint32(t)) || insideExact(uint32(t)) {
			return false
		}
		_, known := fs.byRVA[uint32(t)]
		return !known
	}
	// budget bounds the bytes decoded over all rounds: each round decodes
	// only new functions, so real images decode their code about once; a
	// crafted one whose every E8 byte reaches a fresh start would otherwise
	// decode its code once per round.
	budget := 1 << 20
	for _, s := range fs.code {
		budget += 2 * len(s.Data)
	}
	todo := cands
	for round := 0; round < maxCallRounds && len(todo) > 0 && budget > 0; round++ {
		added := false
		for _, c := range todo {
			code, _ := fs.fileCode(c.rva, c.end) // zero fill holds no calls
			if fs.img.Arch == AMD64 && !mayCallFresh(code, c.rva, fresh) {
				continue
			}
			if budget -= len(code); budget < 0 {
				break
			}
			for _, t := range fs.calls(code, c.rva) {
				if fresh(t) {
					fs.add(uint32(t), FromCallTarget)
					added = true
				}
			}
		}
		if !added {
			break
		}
		// Re-size the gap functions now that there are more starts, and
		// decode the new ones (the bytes of the shrunk ones were scanned).
		old := make(map[uint32]bool, len(cands))
		for _, c := range cands {
			old[c.rva] = true
		}
		cands = fs.size()
		todo = todo[:0:0]
		for _, c := range cands {
			if !old[c.rva] {
				todo = append(todo, c)
			}
		}
	}
	return cands
}

// mayCallFresh is a sound filter in front of the x64 decoder, which costs
// about a microsecond per instruction: every E8 rel32 call starts with an
// E8 byte, so if no E8 byte of code, read as a call, would reach a fresh
// target, decoding cannot find one either. Most functions only call known
// functions (all of them, in an image with a full symbol table) and are
// skipped; the E8 bytes that pass the filter are then confirmed or rejected
// by decoding the function instruction by instruction.
func mayCallFresh(code []byte, rva uint32, fresh func(uint64) bool) bool {
	for pos := 0; pos+5 <= len(code); pos++ {
		i := bytes.IndexByte(code[pos:len(code)-4], 0xe8)
		if i < 0 {
			return false
		}
		pos += i
		rel := int64(int32(binary.LittleEndian.Uint32(code[pos+1:])))
		if fresh(uint64(int64(rva) + int64(pos) + 5 + rel)) {
			return true
		}
	}
	return false
}

// calls returns the targets (as RVAs, possibly out of range) of the direct
// calls in code located at rva.
func (fs *peFuncs) calls(code []byte, rva uint32) []uint64 {
	var out []uint64
	switch fs.img.Arch {
	case AMD64:
		for pos := 0; pos < len(code); {
			in, err := amd64.Decode(code[pos:], uint64(rva)+uint64(pos))
			if err != nil {
				break
			}
			if in.Flow == amd64.Call && in.RelKind == amd64.Rel32 {
				out = append(out, in.Target)
			}
			pos += in.Len
		}
	case ARM64:
		for off := 0; off+4 <= len(code); off += 4 {
			w := binary.LittleEndian.Uint32(code[off:])
			if w&0xfc000000 != 0x94000000 { // BL: cheap test before the decoder
				continue
			}
			if in := arm64.Decode(w, uint64(rva)+uint64(off)); in.Class == arm64.BL {
				out = append(out, in.Target)
			}
		}
	}
	return out
}
