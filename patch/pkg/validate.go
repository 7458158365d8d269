package pkg

import (
	"fmt"
	"unicode/utf8"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Validate checks the rules every package must follow, which Load enforces
// on input and Marshal and Sign on output, so that what is written loads and
// loading then marshalling gives the same bytes:
//
//   - Format is PE or ELF, Arch AMD64 or ARM64; Sequence >= 1 and
//     Requires < Sequence; strings are UTF-8; sizes and counts within
//     DefaultLimits;
//   - CodeSections are non-empty ranges sorted by RVA without overlap;
//     CodeRelocs are sorted by RVA without duplicates, 4 or 8 bytes wide,
//     each inside a code section;
//   - Functions have unique non-empty names; replaced functions come first,
//     by strictly increasing OldRVA, without overlapping one another, inside
//     the image, with 1..OldSize pre-image bytes; New functions follow, by
//     strictly increasing Name, with every Old field zero;
//   - every blob is non-empty with Entry inside it; relocations are sorted by
//     Offset, their fields inside the blob and not overlapping, of a kind the
//     architecture has (ARM64 fields 4-byte aligned), with Aux as the kind
//     defines it, and a target that exists: ToImage at an RVA in [0, Size],
//     ToBlob and ToConstant at an index that exists and an offset in
//     [0, length];
//   - every constant is non-empty.
func (p *Package) Validate() error {
	return p.validate(DefaultLimits, nil)
}

// validate checks p against lim; funcOffs (from Load) gives each function's
// file offset for the error, nil otherwise.
func (p *Package) validate(lim Limits, funcOffs []int) error {
	fail := func(fn int, format string, args ...any) error {
		off := int64(-1)
		if fn >= 0 && fn < len(funcOffs) {
			off = int64(funcOffs[fn])
		}
		what := fmt.Sprintf(format, args...)
		if fn >= 0 {
			what = fmt.Sprintf("function %d (%q): %s", fn, p.Functions[fn].Name, what)
		}
		return &FormatError{Offset: off, What: what}
	}
	limit := func(what string, max, got int) error {
		if got > max {
			return &LimitError{What: what, Limit: int64(max), Got: int64(got), Offset: -1}
		}
		return nil
	}
	b := &p.Base
	if b.Format != image.FormatPE && b.Format != image.FormatELF {
		return fail(-1, "format %d", b.Format)
	}
	if b.Arch != image.AMD64 && b.Arch != image.ARM64 {
		return fail(-1, "arch %d", b.Arch)
	}
	if p.Sequence == 0 || p.Requires >= p.Sequence {
		return fail(-1, "sequence %d requires %d (want 1 <= requires+1 <= sequence)", p.Sequence, p.Requires)
	}
	for _, s := range []struct {
		what, s string
	}{{"module", b.Module}, {"description", p.Description}} {
		if err := limit(s.what, lim.MaxString, len(s.s)); err != nil {
			return err
		}
		if !utf8.ValidString(s.s) {
			return fail(-1, "%s is not UTF-8", s.what)
		}
	}
	if err := limit("build ID", lim.MaxBuildID, len(b.Identity.BuildID)); err != nil {
		return err
	}
	if err := limit("code sections", lim.MaxSections, len(b.CodeSections)); err != nil {
		return err
	}
	if err := limit("code relocs", lim.MaxCodeRelocs, len(b.CodeRelocs)); err != nil {
		return err
	}
	if err := limit("functions", lim.MaxFunctions, len(p.Functions)); err != nil {
		return err
	}
	if err := limit("constants", lim.MaxConstants, len(p.Constants)); err != nil {
		return err
	}
	var end uint64
	for i, s := range b.CodeSections {
		if s.Size == 0 || uint64(s.RVA) < end {
			return fail(-1, "code section %d [%#x,+%#x) empty, unsorted or overlapping", i, s.RVA, s.Size)
		}
		end = uint64(s.RVA) + uint64(s.Size)
	}
	sec := 0
	for i, r := range b.CodeRelocs {
		if i > 0 && r.RVA <= b.CodeRelocs[i-1].RVA {
			return fail(-1, "code reloc %d at %#x not after the previous one", i, r.RVA)
		}
		if r.Size != 4 && r.Size != 8 {
			return fail(-1, "code reloc %d at %#x of %d bytes", i, r.RVA, r.Size)
		}
		for sec < len(b.CodeSections) && uint64(b.CodeSections[sec].RVA)+uint64(b.CodeSections[sec].Size) < uint64(r.RVA)+uint64(r.Size) {
			sec++
		}
		if sec == len(b.CodeSections) || r.RVA < b.CodeSections[sec].RVA {
			return fail(-1, "code reloc %d at %#x outside the code sections", i, r.RVA)
		}
	}
	names := make(map[string]struct{}, len(p.Functions))
	var oldEnd uint64
	seenNew := false
	for i := range p.Functions {
		f := &p.Functions[i]
		if f.Name == "" || !utf8.ValidString(f.Name) {
			return fail(i, "name empty or not UTF-8")
		}
		if err := limit("function name", lim.MaxString, len(f.Name)); err != nil {
			return err
		}
		if _, dup := names[f.Name]; dup {
			return fail(i, "name used twice")
		}
		names[f.Name] = struct{}{}
		if f.New {
			if seenNew && f.Name <= p.Functions[i-1].Name {
				return fail(i, "new functions not sorted by name")
			}
			seenNew = true
			if f.OldRVA != 0 || f.OldSize != 0 || len(f.PreImage) != 0 || f.OldHash != ([32]byte{}) {
				return fail(i, "new function with old-image fields")
			}
		} else {
			if seenNew {
				return fail(i, "replaced function after a new one")
			}
			if f.OldSize == 0 || uint64(f.OldRVA) < oldEnd || uint64(f.OldRVA)+uint64(f.OldSize) > uint64(b.Size) {
				return fail(i, "old range [%#x,+%#x) empty, unsorted, overlapping or outside the image", f.OldRVA, f.OldSize)
			}
			oldEnd = uint64(f.OldRVA) + uint64(f.OldSize)
			if len(f.PreImage) == 0 || len(f.PreImage) > int(f.OldSize) {
				return fail(i, "pre-image of %d bytes for a function of %d", len(f.PreImage), f.OldSize)
			}
			if err := limit("pre-image", lim.MaxPreImage, len(f.PreImage)); err != nil {
				return err
			}
		}
		if err := limit("blob", lim.MaxBlob, len(f.Blob)); err != nil {
			return err
		}
		if len(f.Blob) == 0 || int64(f.Entry) >= int64(len(f.Blob)) {
			return fail(i, "entry %#x outside a blob of %d bytes", f.Entry, len(f.Blob))
		}
		if err := limit("relocs", lim.MaxRelocs, len(f.Relocs)); err != nil {
			return err
		}
		var fieldEnd uint64
		for j, r := range f.Relocs {
			if err := p.checkReloc(f, r, fieldEnd); err != "" {
				return fail(i, "reloc %d at %#x (%s): %s", j, r.Offset, r.Kind, err)
			}
			fieldEnd = uint64(r.Offset) + uint64(r.Kind.fieldSize())
		}
	}
	for i := range p.Constants {
		c := &p.Constants[i]
		if err := limit("constant", lim.MaxConstant, len(c.Data)); err != nil {
			return err
		}
		if len(c.Data) == 0 {
			return fail(-1, "constant %d is empty", i)
		}
		if err := limit("constant name", lim.MaxString, len(c.Name)); err != nil {
			return err
		}
		if !utf8.ValidString(c.Name) {
			return fail(-1, "constant %d name is not UTF-8", i)
		}
	}
	return nil
}

// checkReloc returns what is wrong with r in f ("" when nothing), given the
// end of the previous relocation's field.
func (p *Package) checkReloc(f *Function, r Reloc, prevEnd uint64) string {
	if !r.Kind.forArch(p.Base.Arch) {
		return "kind not valid for " + p.Base.Arch.String()
	}
	size := uint64(r.Kind.fieldSize())
	blob := uint64(len(f.Blob))
	if uint64(r.Offset) < prevEnd {
		return "unsorted or overlapping the previous field"
	}
	if uint64(r.Offset)+size > blob {
		return "field outside the blob"
	}
	if p.Base.Arch == image.ARM64 && r.Kind != RelocAbs64 && r.Kind != RelocAbs32 && r.Offset%4 != 0 {
		return "instruction not 4-byte aligned"
	}
	switch r.Kind {
	case RelocRel32:
		if uint64(r.Aux) < uint64(r.Offset)+4 || uint64(r.Aux) > blob || r.Aux-r.Offset > 15 {
			return fmt.Sprintf("instruction end %#x not just past the field", r.Aux)
		}
	case RelocADRP:
		if r.Aux%4 != 0 || r.Aux == r.Offset || uint64(r.Aux)+4 > blob {
			return fmt.Sprintf("pair instruction %#x not an instruction of the blob", r.Aux)
		}
	case RelocLo12:
		if r.Aux%4 != 0 || r.Aux >= r.Offset {
			return fmt.Sprintf("ADRP %#x not an instruction before the field", r.Aux)
		}
	default:
		if r.Aux != 0 {
			return "aux set for a kind without one"
		}
	}
	switch r.To {
	case ToImage:
		if r.Index != 0 || r.Addend < 0 || r.Addend > int64(p.Base.Size) {
			return fmt.Sprintf("image target index %d RVA %#x outside the image", r.Index, r.Addend)
		}
	case ToBlob:
		if uint64(r.Index) >= uint64(len(p.Functions)) || r.Addend < 0 || r.Addend > int64(len(p.Functions[r.Index].Blob)) {
			return fmt.Sprintf("blob target %d+%#x does not exist", r.Index, r.Addend)
		}
	case ToConstant:
		if uint64(r.Index) >= uint64(len(p.Constants)) || r.Addend < 0 || r.Addend > int64(len(p.Constants[r.Index].Data)) {
			return fmt.Sprintf("constant target %d+%#x does not exist", r.Index, r.Addend)
		}
	default:
		return fmt.Sprintf("target kind %d", r.To)
	}
	return ""
}
