package image

import (
	"cmp"
	"crypto/sha256"
	"fmt"
	"hash"
	"slices"
)

// maxCodeBytes bounds the total mapped size of executable sections that
// finish hashes. No real module comes near it (the largest browser DLLs have
// a few hundred MiB of code); a crafted header claiming 4 GiB of zero-filled
// code would otherwise cost seconds of hashing per parse.
const maxCodeBytes = 1 << 30

// finish turns what a format loader (parsePE, parseELF) collected into the
// invariants the Image type documents. Loaders may append in any order and
// may report the same function start several times (once per source); finish:
//
//   - sorts Symbols by (RVA, Name), Relocs by RVA, Exports by Ordinal
//     (ties broken by the remaining fields, so the order is deterministic);
//   - drops every function candidate whose start is not inside an
//     executable section and records it in Image.Dropped. Such candidates
//     are legitimate compiler output (an STT_FUNC symbol or an export that
//     names data, a thunk in a data section), not a malformed file, so
//     they are not an error;
//   - merges candidates with the same start: Found is the union of their
//     bits; Size, Extent and Unwind come from the best extent (pdata >
//     symbol > gap > none); the name is the one of the named candidate with
//     the best extent, then found as a symbol, then as an export, ties
//     broken by the shortest and then the alphabetically first name;
//   - gives a function with no size (an entry point or call target the
//     loader could not size) the gap up to the next start or the end of its
//     section, with Extent FromGap. Trailing padding is not trimmed here:
//     only a loader knows what padding looks like for its compiler;
//   - truncates a function that runs past the next start, or past the end of
//     its section, to end there, and sets its Extent to FromGap because its
//     size now comes from the layout, not from the loader's source (Found
//     still tells where the start came from). Nested entry points are
//     real: hand-written assembly (glibc's memmove family, for example)
//     declares several symbols whose ranges overlap. Truncating is the
//     conservative choice for patching: nothing written at a function's
//     entry can then reach into another entry;
//   - builds the name index and computes Identity.CodeHash.
func finish(img *Image) error {
	// Full-key comparisons: elements that compare equal are identical, so
	// the faster unstable sort is still deterministic.
	slices.SortFunc(img.Symbols, func(a, b Symbol) int {
		if a.RVA != b.RVA { // cmp.Or evaluates every argument: decide cheaply first
			return cmp.Compare(a.RVA, b.RVA)
		}
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Size, b.Size),
			cmp.Compare(a.Kind, b.Kind), cmpBool(a.Global, b.Global))
	})
	slices.SortFunc(img.Relocs, func(a, b Reloc) int {
		if a.RVA != b.RVA {
			return cmp.Compare(a.RVA, b.RVA)
		}
		return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.Size, b.Size), cmp.Compare(a.Addend, b.Addend))
	})
	slices.SortFunc(img.Exports, func(a, b Export) int {
		return cmp.Or(cmp.Compare(a.Ordinal, b.Ordinal), cmp.Compare(a.Name, b.Name), cmp.Compare(a.RVA, b.RVA), cmp.Compare(a.Forwarder, b.Forwarder))
	})

	code := execSections(img)
	img.Functions = finishFunctions(img, code)
	img.index()

	h, err := codeHash(img, code)
	if err != nil {
		return err
	}
	img.Identity.CodeHash = h
	return nil
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// execSections returns the executable sections sorted by RVA, for the
// function checks (the hash uses img.Sections order).
func execSections(img *Image) []*Section {
	var out []*Section
	for i := range img.Sections {
		if img.Sections[i].Flags&SectionExec != 0 && img.Sections[i].Size > 0 {
			out = append(out, &img.Sections[i])
		}
	}
	slices.SortStableFunc(out, func(a, b *Section) int { return cmp.Compare(a.RVA, b.RVA) })
	return out
}

// sectionAt finds the section of secs (sorted by RVA) containing rva.
// Sections may overlap in a malformed file, so earlier sections are tried too.
func sectionAt(secs []*Section, rva uint32) *Section {
	i, _ := slices.BinarySearchFunc(secs, rva, func(s *Section, r uint32) int {
		if s.RVA <= r {
			return -1
		}
		return 1
	})
	for j := i - 1; j >= 0; j-- {
		if secs[j].Contains(rva) {
			return secs[j]
		}
	}
	return nil
}

// extentRank orders the sources a size may come from.
func extentRank(e Source) int {
	switch e {
	case FromPdata:
		return 3
	case FromSymbol:
		return 2
	case FromGap:
		return 1
	}
	return 0
}

// nameRank orders where a candidate's name came from, for the fallback.
func nameRank(f *Function) int {
	switch {
	case f.Found&FromSymbol != 0:
		return 2
	case f.Found&FromExport != 0:
		return 1
	}
	return 0
}

// betterName reports whether candidate a's name is preferred to b's: the
// better extent first, then a symbol's name over an export's over any other,
// then the shorter, then the alphabetically first.
func betterName(a, b *Function) bool {
	if ra, rb := extentRank(a.Extent), extentRank(b.Extent); ra != rb {
		return ra > rb
	}
	if ra, rb := nameRank(a), nameRank(b); ra != rb {
		return ra > rb
	}
	if len(a.Name) != len(b.Name) {
		return len(a.Name) < len(b.Name)
	}
	return a.Name < b.Name
}

func finishFunctions(img *Image, code []*Section) []Function {
	in := img.Functions
	kept := make([]Function, 0, len(in))
	for _, f := range in {
		if sectionAt(code, f.RVA) == nil {
			img.Dropped = append(img.Dropped, f)
			continue
		}
		kept = append(kept, f)
	}
	slices.SortStableFunc(kept, func(a, b Function) int {
		if a.RVA != b.RVA {
			return cmp.Compare(a.RVA, b.RVA)
		}
		return -cmp.Compare(extentRank(a.Extent), extentRank(b.Extent))
	})

	// Merge equal starts. After the sort the best extent comes first.
	out := kept[:0]
	for i := 0; i < len(kept); {
		j := i + 1
		for j < len(kept) && kept[j].RVA == kept[i].RVA {
			j++
		}
		m := kept[i]
		if m.Extent != 0 && extentRank(m.Extent) == 0 {
			m.Extent = 0 // not a source a size can come from
		}
		if m.Extent == 0 {
			m.Size = 0
		}
		name, best := "", -1
		for k := i; k < j; k++ {
			c := &kept[k]
			if k > i {
				m.Found |= c.Found
				if m.Unwind == 0 {
					m.Unwind = c.Unwind
				}
			}
			if c.Name == "" {
				continue
			}
			if best < 0 || betterName(c, &kept[best]) {
				name, best = c.Name, k
			}
		}
		m.Name = name
		out = append(out, m)
		i = j
	}

	for i := range out {
		f := &out[i]
		sec := sectionAt(code, f.RVA)
		limit := uint64(sec.RVA) + uint64(sec.Size)
		if i+1 < len(out) && uint64(out[i+1].RVA) < limit {
			limit = uint64(out[i+1].RVA)
		}
		switch {
		case f.Size == 0:
			f.Size = uint32(limit - uint64(f.RVA))
			f.Extent = FromGap
		case uint64(f.RVA)+uint64(f.Size) > limit:
			f.Size = uint32(limit - uint64(f.RVA))
			f.Extent = FromGap
		}
	}
	return out
}

// codeHash is the SHA-256 documented on Identity.CodeHash.
func codeHash(img *Image, code []*Section) ([32]byte, error) {
	var total uint64
	for _, s := range code {
		total += uint64(s.Size)
	}
	if total > maxCodeBytes {
		return [32]byte{}, &UnsupportedError{What: fmt.Sprintf("image with %d bytes of executable sections (limit %d)", total, maxCodeBytes)}
	}
	h := sha256.New()
	for i := range img.Sections {
		s := &img.Sections[i]
		if s.Flags&SectionExec == 0 {
			continue
		}
		hashMapped(h, s.Data, s.Size)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum, nil
}

var zeros [64 << 10]byte

// hashMapped writes the first size bytes of the mapping of data: data itself
// (cut to size) then zeros.
func hashMapped(h hash.Hash, data []byte, size uint32) {
	if uint64(len(data)) > uint64(size) {
		data = data[:size]
	}
	h.Write(data)
	for pad := uint64(size) - uint64(len(data)); pad > 0; {
		n := min(pad, uint64(len(zeros)))
		h.Write(zeros[:n])
		pad -= n
	}
}
