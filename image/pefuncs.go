package image

import (
	"cmp"
	"slices"
)

// peCand is what the loader knows about one function start.
type peCand struct {
	rva    uint32
	end    uint32 // 0 when no source gave an extent
	found  Source
	extent Source
	unwind uint32
	parent uint32
	name   string
	// nameRank: 4 COFF function symbol, 3 global symbol, 2 other symbol, 1 export.
	nameRank int
	// limit is the end of the gap a FromGap size was computed from.
	limit uint64
}

// peFuncs collects function starts by RVA.
type peFuncs struct {
	byRVA map[uint32]*peCand
	// code are the executable sections sorted by RVA.
	code []*Section
	img  *Image
}

func (fs *peFuncs) add(rva uint32, src Source) *peCand {
	c := fs.byRVA[rva]
	if c == nil {
		c = &peCand{rva: rva}
		fs.byRVA[rva] = c
	}
	c.found |= src
	return c
}

func (c *peCand) setName(name string, rank int) {
	if name == "" {
		return
	}
	if rank > c.nameRank || (rank == c.nameRank && (len(name) < len(c.name) || (len(name) == len(c.name) && name < c.name))) {
		c.name, c.nameRank = name, rank
	}
}

// sorted returns the candidates by RVA.
func (fs *peFuncs) sorted() []*peCand {
	out := make([]*peCand, 0, len(fs.byRVA))
	for _, c := range fs.byRVA {
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b *peCand) int { return cmp.Compare(a.rva, b.rva) })
	return out
}

// inCode reports whether rva is inside an executable section.
func (fs *peFuncs) inCode(rva uint32) bool { return sectionAt(fs.code, rva) != nil }

// functions builds the function list from .pdata, COFF function symbols,
// exports pointing into code, the entry point and direct-call targets.
//
//   - A .pdata entry gives a start and an exact extent (Extent FromPdata,
//     Unwind the .xdata RVA).
//   - COFF symbols of type 0x20 (function) in an executable section give
//     starts. Untyped symbols in code (assembler labels, or data such as
//     __CTOR_LIST__ that mingw places in .text) only name a start found
//     otherwise: they are not evidence of an entry point.
//   - Exports into an executable section and the entry point give starts.
//   - Direct calls (x64 E8 rel32, ARM64 BL) decoded instruction by
//     instruction in every known function give starts, until no new start
//     appears (see pecalls.go). A call into the middle of a .pdata range is
//     not a new function.
//   - A start without an extent is sized up to the next start (or the end
//     of its section), less trailing padding (pepad.go): Extent FromGap.
//   - Names: a COFF function symbol, then a global, then another symbol in
//     code, then an export name; ties go to the shortest, then the
//     alphabetically first name.
func (l *peLoader) functions() error {
	fs := &peFuncs{byRVA: make(map[uint32]*peCand), img: l.img}
	fs.code = execSections(l.img)

	// A primary range that contains one of its own chained fragments ends
	// where the fragment begins: LLVM (up to at least 14) ends the primary
	// RUNTIME_FUNCTION at .seh_endproc, so it overlaps the fragment; the
	// primary's own code is what precedes the fragment.
	cut := make(map[uint32]uint32)
	for _, p := range l.pdata {
		if p.chained && p.parent != p.begin {
			if old, ok := cut[p.parent]; !ok || p.begin < old {
				cut[p.parent] = p.begin
			}
		}
	}
	for _, p := range l.pdata {
		if c, ok := cut[p.begin]; ok && c > p.begin && c < p.end {
			p.end = c
		}
		if _, dup := fs.byRVA[p.begin]; dup {
			continue // the first entry for a start wins, as the unwinder's binary search would find one of them
		}
		c := fs.add(p.begin, FromPdata)
		if p.end != 0 {
			c.end, c.extent = p.end, FromPdata
		}
		c.unwind = p.unwind
		if p.chained && p.parent != p.begin {
			c.parent = p.parent
		}
	}
	for _, s := range l.img.Symbols {
		if !fs.inCode(s.RVA) {
			continue
		}
		switch {
		case s.Kind == SymbolFunc:
			fs.add(s.RVA, FromSymbol).setName(s.Name, 4)
		case s.Global:
			if c := fs.byRVA[s.RVA]; c != nil {
				c.setName(s.Name, 3)
			}
		default:
			if c := fs.byRVA[s.RVA]; c != nil {
				c.setName(s.Name, 2)
			}
		}
	}
	for _, e := range l.img.Exports {
		if e.Forwarder != "" || !fs.inCode(e.RVA) {
			continue
		}
		fs.add(e.RVA, FromExport).setName(e.Name, 1)
	}
	if l.img.Entry != 0 && fs.inCode(l.img.Entry) {
		fs.add(l.img.Entry, FromEntry)
	}
	// Untyped symbols may name starts the exports or the entry point added.
	for _, s := range l.img.Symbols {
		if s.Kind != SymbolFunc {
			if c := fs.byRVA[s.RVA]; c != nil {
				rank := 2
				if s.Global {
					rank = 3
				}
				c.setName(s.Name, rank)
			}
		}
	}

	cands := fs.size()
	cands = fs.callTargets(cands)

	out := make([]Function, 0, len(cands))
	for _, c := range cands {
		if !fs.inCode(c.rva) {
			continue
		}
		out = append(out, Function{
			Name: c.name, RVA: c.rva, Size: c.end - c.rva, Found: c.found, Extent: c.extent,
			Unwind: c.unwind, Parent: c.parent,
		})
	}
	l.img.Functions = out
	return nil
}

// fileCode returns the bytes of [rva, end) that the file holds (a prefix:
// a section's mapping past its file data reads as zeros, and is not copied
// here, so a crafted 4 GiB section costs nothing), and whether the range
// runs on into that zero fill.
func (fs *peFuncs) fileCode(rva, end uint32) (code []byte, zeroTail bool) {
	sec := sectionAt(fs.code, rva)
	if sec == nil || end <= rva {
		return nil, false
	}
	off := uint64(rva - sec.RVA)
	if off >= uint64(len(sec.Data)) {
		return nil, true
	}
	n := min(uint64(end-rva), uint64(len(sec.Data))-off)
	return sec.Data[off : off+n], uint64(end-rva) > n
}

// size gives every candidate without an extent the gap up to the next start
// (or the end of its section), less trailing padding, and returns the
// candidates sorted by RVA. A candidate whose gap has not changed since the
// last call keeps its size (the call scan calls this once per round).
func (fs *peFuncs) size() []*peCand {
	cands := fs.sorted()
	for i, c := range cands {
		if c.extent == FromPdata {
			continue
		}
		sec := sectionAt(fs.code, c.rva)
		if sec == nil {
			continue
		}
		limit := uint64(sec.RVA) + uint64(sec.Size)
		if i+1 < len(cands) && uint64(cands[i+1].rva) < limit {
			limit = uint64(cands[i+1].rva)
		}
		if c.extent == FromGap && c.limit == limit {
			continue
		}
		c.limit = limit
		end := uint32(limit)
		code, zeroTail := fs.fileCode(c.rva, end)
		if n := trimPadding(fs.img.Arch, code, c.rva, zeroTail); n > 0 {
			end = c.rva + uint32(n)
		}
		c.end, c.extent = end, FromGap
	}
	return cands
}
