package diff

import (
	"encoding/binary"
	"slices"
	"sort"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
)

// view is one image prepared for comparison: its functions decoded into
// normalised bodies, its symbols and import slots indexed, and every address
// its code refers to resolved to a symbolic target.
type view struct {
	img    *image.Image
	funcs  []image.Function
	bodies []body
	tmpls  []*template // tmpls[i] is the decoding bodies[i] was made from

	sections []image.Section
	// dataSyms are the symbols naming data (outside executable sections),
	// sorted by RVA; section-name symbols (".data") are left out.
	dataSyms []image.Symbol
	// codeSyms are the named symbols in executable sections, sorted by RVA.
	codeSyms []image.Symbol
	// bounds are addresses a read-only constant cannot extend past: every
	// symbol start and every data address the code refers to, sorted.
	bounds []uint32
	slots  map[uint32]int // import slot RVA -> index in img.Imports
	relocs []image.Reloc
	// goTypes is Go's type descriptor area ("type:*" up to the next symbol):
	// constants there are keyed by the layout-independent descriptor header.
	goTypes image.Range
	// plainPointers: the image has no base relocations (non-PIE ELF), so
	// pointer-sized words inside constants that hold an address of the image
	// are taken as pointers.
	plainPointers bool
}

// body is one function, normalised.
type body struct {
	// masked is the code with every address field zeroed (shared between
	// functions with identical code).
	masked []byte
	refs   []rawRef
	syms   []sym // syms[i] resolves refs[i]
}

// rawRef is an outside reference found while decoding.
type rawRef struct {
	inst, field, pair uint32 // offsets in the function
	form              Form
	kind              RefKind
	target            uint32 // RVA
	table             *tableSpec
	// pageOnly: an ADRP whose low 12 bits were not found.
	pageOnly bool
}

// tableSpec says how to read a jump table addressed by a reference.
type tableSpec struct {
	size   uint8  // entry size
	signed bool   // entries are sign-extended
	base   string // "table", "label", "absolute"
	label  uint32 // body offset of the label (base "label")
	scale  uint8  // entries are multiplied by this (ARM64 label tables: 4)
	count  int    // entries by the bounds check before it (0: unknown)
}

func newView(img *image.Image) *view {
	v := &view{img: img, funcs: img.Functions, sections: img.Sections, relocs: img.Relocs}
	// Go's go:buildid lies in .text but is the build ID string, not code.
	if i := slices.IndexFunc(v.funcs, func(f image.Function) bool { return f.Name == "go:buildid" }); i >= 0 {
		v.funcs = slices.Delete(slices.Clone(v.funcs), i, i+1)
	}
	v.plainPointers = len(img.Relocs) == 0
	secNames := map[string]bool{}
	for _, s := range img.Sections {
		secNames[s.Name] = true
	}
	v.slots = make(map[uint32]int, len(img.Imports))
	for i, im := range img.Imports {
		if im.Slot != 0 {
			if _, dup := v.slots[im.Slot]; !dup {
				v.slots[im.Slot] = i
			}
		}
	}
	for i, s := range img.Symbols {
		if s.Name == "" || secNames[s.Name] {
			continue
		}
		sec := v.section(s.RVA)
		if sec == nil {
			continue
		}
		if sec.Flags&image.SectionExec != 0 {
			v.codeSyms = append(v.codeSyms, s)
			continue
		}
		v.dataSyms = append(v.dataSyms, s)
		v.bounds = append(v.bounds, s.RVA)
		if s.Name == "type:*" || s.Name == "type.*" {
			end := sec.RVA + sec.Size
			for _, t := range img.Symbols[i+1:] {
				if t.RVA > s.RVA && t.Name != "" {
					end = min(end, t.RVA)
					break
				}
			}
			v.goTypes = image.Range{RVA: s.RVA, Size: end - s.RVA}
		}
	}
	sort.SliceStable(v.dataSyms, func(i, j int) bool { return v.dataSyms[i].RVA < v.dataSyms[j].RVA })
	sort.SliceStable(v.codeSyms, func(i, j int) bool { return v.codeSyms[i].RVA < v.codeSyms[j].RVA })
	return v
}

// section returns the section containing rva, or nil.
func (v *view) section(rva uint32) *image.Section {
	for i := range v.sections {
		s := &v.sections[i]
		if rva >= s.RVA && rva-s.RVA < s.Size {
			return s
		}
	}
	return nil
}

// bytesAt returns up to n bytes of file data at rva within its section (fewer
// at the end of the section's file data; zero-filled data has none).
func (v *view) bytesAt(rva uint32, n int) []byte {
	s := v.section(rva)
	if s == nil {
		return nil
	}
	off := int(rva - s.RVA)
	if off >= len(s.Data) {
		return nil
	}
	end := min(off+n, len(s.Data))
	return s.Data[off:end]
}

// funcIndex returns the index of the function containing rva, or -1.
func (v *view) funcIndex(rva uint32) int {
	fs := v.funcs
	i := sort.Search(len(fs), func(i int) bool { return fs[i].RVA > rva }) - 1
	if i < 0 || rva-fs[i].RVA >= fs[i].Size {
		return -1
	}
	return i
}

// reloc returns the base relocation at exactly rva.
func (v *view) reloc(rva uint32) (image.Reloc, bool) {
	rs := v.relocs
	i := sort.Search(len(rs), func(i int) bool { return rs[i].RVA >= rva })
	if i < len(rs) && rs[i].RVA == rva {
		return rs[i], true
	}
	return image.Reloc{}, false
}

// relocsIn returns the base relocations in [lo, hi).
func (v *view) relocsIn(lo, hi uint32) []image.Reloc {
	rs := v.relocs
	i := sort.Search(len(rs), func(i int) bool { return rs[i].RVA >= lo })
	j := i
	for j < len(rs) && rs[j].RVA < hi {
		j++
	}
	return rs[i:j]
}

// pointerAt reads the pointer-sized word at rva as an address of the image:
// the relocation's addend (ELF) or the bytes in place, minus the base. ok is
// false when the word is not an address inside the image (or, in an image with
// relocations, when no relocation covers it).
func (v *view) pointerAt(rva uint32, size int) (uint32, bool) {
	r, hasReloc := v.reloc(rva)
	if !hasReloc && !v.plainPointers {
		return 0, false
	}
	var val uint64
	if hasReloc && v.img.Format == image.FormatELF {
		val = uint64(r.Addend)
	} else {
		b := v.bytesAt(rva, size)
		if len(b) < size {
			return 0, false
		}
		if size == 8 {
			val = binary.LittleEndian.Uint64(b)
		} else {
			val = uint64(binary.LittleEndian.Uint32(b))
		}
	}
	if val < v.img.Base || val-v.img.Base >= uint64(v.img.Size) {
		return 0, false
	}
	t := uint32(val - v.img.Base)
	if v.section(t) == nil {
		return 0, false
	}
	return t, true
}

// nextBound returns the first bound strictly after rva (or ^0).
func (v *view) nextBound(rva uint32) uint32 {
	b := v.bounds
	i := sort.Search(len(b), func(i int) bool { return b[i] > rva })
	if i < len(b) {
		return b[i]
	}
	return ^uint32(0)
}

// dataSymbol returns the data symbol covering rva: a sized symbol that
// contains it (ELF), else the nearest symbol at or before it in the same
// section (COFF symbols carry no size).
func (v *view) dataSymbol(rva uint32, sec *image.Section) (image.Symbol, bool) {
	ds := v.dataSyms
	i := sort.Search(len(ds), func(i int) bool { return ds[i].RVA > rva }) - 1
	for j := i; j >= 0 && j > i-4; j-- {
		s := ds[j]
		if !sec.Contains(s.RVA) {
			break
		}
		if s.Size > 0 && rva-s.RVA < s.Size {
			return s, true
		}
	}
	if i >= 0 && sec.Contains(ds[i].RVA) {
		return ds[i], true
	}
	return image.Symbol{}, false
}

// codeSymbol returns the nearest symbol at or before rva in the executable
// section sec: names code outside every function (mingw's __CTOR_LIST__).
func (v *view) codeSymbol(rva uint32, sec *image.Section) (image.Symbol, bool) {
	cs := v.codeSyms
	i := sort.Search(len(cs), func(i int) bool { return cs[i].RVA > rva }) - 1
	if i >= 0 && sec.Contains(cs[i].RVA) {
		return cs[i], true
	}
	return image.Symbol{}, false
}

// importName is "library!name" (library lower-cased: PE names are case
// insensitive), or "library!#ordinal".
func importName(im image.Import) string {
	lib := strings.ToLower(im.Library)
	if im.Name != "" {
		return lib + "!" + im.Name
	}
	return lib + "!#" + itoa(int64(im.Ordinal))
}
