package pkg

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/trampoline"
)

// ErrNothingToPatch is returned by Build when the report has no Changed
// function.
var ErrNothingToPatch = errors.New("pkg: no function changed")

// ErrBuildInput is returned by Build for nil or mismatched arguments.
var ErrBuildInput = errors.New("pkg: build inputs do not belong together")

// preImageLen is how many leading bytes of an old function a package records:
// the largest entry jump (the 16-byte ARM64 far jump; 14 on x86-64).
const preImageLen = 16

// BuildOptions tune Build.
type BuildOptions struct {
	// Sequence is the package's number (default 1); Requires the sequence
	// that must be applied first (default Sequence-1).
	Sequence uint32
	Requires *uint32
	// Module is the module's file name recorded as a hint.
	Module string
	// Description is free text for operators.
	Description string
	// AllowPartial leaves out what cannot be hot-patched (returned as the
	// refusals) instead of failing the build.
	AllowPartial bool
}

// Build makes a package from two builds of a module and their diff report
// (diff.Compare(old, new, nil)): every Changed function's new body becomes a
// blob, each outside reference a relocation (to the old image's function,
// data or import slot, to another blob, or to a carried constant), jump
// tables are copied in front of the code with their entries recomputed, and
// x86-64 short branches out of the body go through a jmp rel32 appended to
// it. A function only the new build has (diff.Added) is carried when a
// carried body calls it and it references nothing outside itself.
//
// Refused, each function with every reason: bodies of Go binaries (code
// outside the Go runtime's pclntab breaks its unwinder), old functions
// shorter than the near entry jump (5 bytes on x86-64, 4 on ARM64; one
// shorter than the far jump needs patch memory near the module, which
// NeedsNear-style allocation gives), fragments of another function,
// references diff found NotHotPatchable (new or resized writable data, new
// imports, thread-local storage), added callees that reference other code,
// and reference forms Build does not relocate. Without AllowPartial any
// refusal fails the build with a *RefusedError; with it the refused
// functions (and whatever calls a refused added function) are left out and
// returned, and the build fails only when nothing is left.
func Build(old, new *image.Image, rep *diff.Report, opts BuildOptions) (*Package, []Refusal, error) {
	if old == nil || new == nil || rep == nil {
		return nil, nil, fmt.Errorf("%w: nil image or report", ErrBuildInput)
	}
	if old.Arch != new.Arch || old.Format != new.Format {
		return nil, nil, fmt.Errorf("%w: %s/%s against %s/%s", ErrBuildInput, old.Format, old.Arch, new.Format, new.Arch)
	}
	if old.Arch != image.AMD64 && old.Arch != image.ARM64 {
		return nil, nil, fmt.Errorf("%w: architecture %s", ErrBuildInput, old.Arch)
	}
	if rep.Old.CodeHash != fmt.Sprintf("%x", old.Identity.CodeHash) || rep.New.CodeHash != fmt.Sprintf("%x", new.Identity.CodeHash) {
		return nil, nil, fmt.Errorf("%w: the report is not the diff of these two images (code hashes differ)", ErrBuildInput)
	}
	changed := rep.Changed()
	if len(changed) == 0 {
		return nil, nil, ErrNothingToPatch
	}
	b := &builder{old: old, new: new, arch: old.Arch, added: map[uint32]*addedFn{}, goImage: isGo(old) || isGo(new)}
	for _, f := range rep.WithStatus(diff.Added) {
		b.added[f.NewRVA] = &addedFn{f: f}
	}
	for _, f := range changed {
		b.check(f)
	}
	// Which functions are carried: changed ones without refusals, and the
	// added functions they call.
	var keep []*diff.Function
	var addNeeded []*addedFn
	for _, f := range changed {
		if b.refused[f.NewRVA] {
			continue
		}
		keep = append(keep, f)
		for _, r := range f.References {
			if a := b.added[r.Target.RVA]; r.Resolution == diff.ToNewFunction && r.Target.RVA != f.NewRVA && a != nil && !a.used {
				a.used = true
				addNeeded = append(addNeeded, a)
			}
		}
	}
	if len(b.refusals) > 0 && !opts.AllowPartial {
		return nil, nil, &RefusedError{Refused: b.refusals}
	}
	if len(keep) == 0 {
		return nil, b.refusals, &RefusedError{Refused: b.refusals}
	}
	slices.SortFunc(keep, func(x, y *diff.Function) int { return int64cmp(int64(x.OldRVA), int64(y.OldRVA)) })
	// Names are unique in a package: two static functions of one name (in
	// different files) each get "@<RVA in hex>" appended (the old RVA; the
	// new one for added functions).
	count := map[string]int{}
	for _, f := range keep {
		count[funcName(f.Name(), f.NewRVA)]++
	}
	for _, a := range addNeeded {
		count[a.name()]++
	}
	b.names = map[uint32]string{}
	for _, f := range keep {
		n := funcName(f.Name(), f.NewRVA)
		if count[n] > 1 {
			n = fmt.Sprintf("%s@%x", n, f.OldRVA)
		}
		b.names[f.NewRVA] = n
	}
	for _, a := range addNeeded {
		a.final = a.name()
		if count[a.final] > 1 {
			a.final = fmt.Sprintf("%s@%x", a.final, a.f.NewRVA)
		}
	}
	slices.SortFunc(addNeeded, func(x, y *addedFn) int { return strings.Compare(x.final, y.final) })

	p := &Package{
		Sequence:    max(opts.Sequence, 1),
		Description: opts.Description,
		Base:        baseOf(old, opts.Module),
	}
	p.Requires = p.Sequence - 1
	if opts.Requires != nil {
		p.Requires = *opts.Requires
	}
	// Index every carried function first: blobs reference one another.
	b.index = map[uint32]int{}  // old RVA of a changed function -> index
	b.aindex = map[uint32]int{} // new RVA of an added function -> index
	for i, f := range keep {
		b.index[f.OldRVA] = i
	}
	for i, a := range addNeeded {
		b.aindex[a.f.NewRVA] = len(keep) + i
	}
	b.entries = make([]uint32, len(keep)+len(addNeeded))
	for i, f := range keep {
		b.entries[i] = tableArea(f)
	}
	for _, f := range keep {
		fn, why := b.function(f)
		if why != nil {
			// Only internal inconsistencies get here (check ran first).
			return nil, nil, &RefusedError{Refused: []Refusal{*why}}
		}
		p.Functions = append(p.Functions, fn)
	}
	for _, a := range addNeeded {
		code, _ := new.Bytes(a.f.NewRVA, int(a.f.NewSize))
		p.Functions = append(p.Functions, Function{Name: a.final, New: true, NewRVA: a.f.NewRVA, Blob: bytes.Clone(code)})
	}
	p.Constants = b.consts
	if err := p.Validate(); err != nil {
		return nil, nil, fmt.Errorf("pkg: Build made an invalid package (a bug): %w", err)
	}
	return p, b.refusals, nil
}

func int64cmp(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// builder carries Build's state.
type builder struct {
	old, new *image.Image
	arch     image.Arch
	goImage  bool
	added    map[uint32]*addedFn // by new RVA

	refusals []Refusal
	refused  map[uint32]bool // by new RVA

	index, aindex map[uint32]int
	names         map[uint32]string // final name of a carried changed function, by new RVA
	entries       []uint32
	consts        []Constant
}

// addedFn is an Added function a changed body may call.
type addedFn struct {
	f       *diff.Function
	checked bool
	why     string // why it cannot be carried, "" when it can
	used    bool
	final   string // name in the package
}

func (a *addedFn) name() string { return funcName(a.f.Name(), a.f.NewRVA) }

func funcName(name string, rva uint32) string {
	if name == "" {
		return fmt.Sprintf("sub_%x", rva)
	}
	return name
}

func (b *builder) refuse(f *diff.Function, off int, why string) {
	if b.refused == nil {
		b.refused = map[uint32]bool{}
	}
	b.refused[f.NewRVA] = true
	b.refusals = append(b.refusals, Refusal{Function: funcName(f.Name(), f.NewRVA), RVA: f.NewRVA, Offset: off, Why: why})
}

// check records every reason f cannot be carried.
func (b *builder) check(f *diff.Function) {
	if b.goImage {
		b.refuse(f, -1, "Go-compiled body: code moved out of the Go runtime's pclntab breaks its unwinder (redirect to a Go function in-process instead)")
		return
	}
	of, ok := b.old.FunctionAt(f.OldRVA)
	if !ok || of.RVA != f.OldRVA {
		b.refuse(f, -1, fmt.Sprintf("old function at %#x not in the old image's function list", f.OldRVA))
		return
	}
	if of.Parent != 0 {
		b.refuse(f, -1, fmt.Sprintf("a fragment of the function at %#x, entered only by jumps from it", of.Parent))
	}
	if need := trampoline.NearJumpSize(b.arch); int(f.OldSize) < need {
		b.refuse(f, -1, fmt.Sprintf("old body of %d bytes is shorter than the %d-byte entry jump", f.OldSize, need))
	}
	if _, ok := b.old.Bytes(f.OldRVA, int(f.OldSize)); !ok {
		b.refuse(f, -1, "old body not readable from the old image")
	}
	code, ok := b.new.Bytes(f.NewRVA, int(f.NewSize))
	if !ok || len(code) == 0 {
		b.refuse(f, -1, "new body not readable from the new image")
		return
	}
	for _, r := range f.References {
		if why := b.checkRef(f, code, r); why != "" {
			b.refuse(f, int(r.Offset), why)
		}
	}
}

// checkRef says why reference r of f cannot be relocated ("" when it can).
func (b *builder) checkRef(f *diff.Function, code []byte, r diff.Reference) string {
	switch r.Resolution {
	case diff.NotHotPatchable:
		return r.Why
	case diff.ToNewFunction:
		if r.Target.RVA == f.NewRVA {
			break
		}
		a := b.added[r.Target.RVA]
		if a == nil {
			return fmt.Sprintf("references %s, which is neither in the old image nor an added function", r.Target.Name)
		}
		if why := b.checkAdded(a); why != "" {
			return fmt.Sprintf("calls added function %s, which cannot be carried: %s", a.name(), why)
		}
	case diff.CarryConstant:
		if r.Table == nil && len(r.Content) == 0 {
			return "read-only constant without content"
		}
		if r.Table != nil {
			if why := checkTable(r.Table, f.NewSize); why != "" {
				return why
			}
		}
	}
	switch r.Form {
	case diff.FormRel32, diff.FormRIP32, diff.FormRel8:
		if b.arch != image.AMD64 {
			return "x86-64 form in an ARM64 body"
		}
		if _, err := b.instEnd(code, r); err != nil {
			return err.Error()
		}
	case diff.FormAbs64, diff.FormAbs32:
	case diff.FormBranch26, diff.FormBranch19, diff.FormBranch14, diff.FormADR, diff.FormADRP, diff.FormLiteral:
		if b.arch != image.ARM64 {
			return "ARM64 form in an x86-64 body"
		}
		if r.Field%4 != 0 || int(r.Field)+4 > len(code) || (r.Form == diff.FormADRP && (r.PairOffset%4 != 0 || int(r.PairOffset)+4 > len(code))) {
			return "instruction outside the body"
		}
		if r.Form == diff.FormADRP && r.Kind != diff.RefAddress && r.Kind != diff.RefJumpTable {
			// A load or store pair: the low-12 field must be scalable.
			if pw := binary.LittleEndian.Uint32(code[r.PairOffset:]); pw&a64LdStUMask != a64LdStU && pw&a64AddImmMask != a64AddImm {
				return fmt.Sprintf("ADRP pair instruction %#08x is not ADD (immediate) or load/store (unsigned offset)", pw)
			}
		}
	default:
		return fmt.Sprintf("reference form %s is not relocated by Build", r.Form)
	}
	return ""
}

// instEnd decodes the x86-64 instruction of r and returns its end offset.
func (b *builder) instEnd(code []byte, r diff.Reference) (uint32, error) {
	if int(r.Offset) >= len(code) {
		return 0, fmt.Errorf("instruction outside the body")
	}
	in, err := amd64.Decode(code[r.Offset:], 0)
	if err != nil {
		return 0, fmt.Errorf("cannot decode the referencing instruction: %v", err)
	}
	end := r.Offset + uint32(in.Len)
	size := uint32(4)
	if r.Form == diff.FormRel8 {
		size = 1
	}
	if r.Field < r.Offset || r.Field+size > end {
		return 0, fmt.Errorf("displacement at %#x not inside the %d-byte instruction at %#x", r.Field, in.Len, r.Offset)
	}
	return end, nil
}

// checkTable says why a jump table cannot be copied ("" when it can).
func checkTable(t *diff.JumpTable, size uint32) string {
	switch t.EntrySize {
	case 1, 2, 4, 8:
	default:
		return fmt.Sprintf("jump table entries of %d bytes", t.EntrySize)
	}
	if len(t.Entries) == 0 || len(t.Entries) > 1<<16 {
		return fmt.Sprintf("jump table of %d entries", len(t.Entries))
	}
	for _, e := range t.Entries {
		if e >= size {
			return fmt.Sprintf("jump table entry %#x outside the body", e)
		}
	}
	switch t.Base {
	case "table", "label", "absolute":
	default:
		return fmt.Sprintf("jump table base %q", t.Base)
	}
	if t.Base == "absolute" && t.EntrySize != 8 && t.EntrySize != 4 {
		return "absolute jump table entries narrower than 4 bytes"
	}
	return ""
}

// checkAdded says why an added function cannot be carried: only
// self-contained bodies (no PC-relative reference out of the body, no
// base relocation inside it) are, since the diff lists no references for
// added functions.
func (b *builder) checkAdded(a *addedFn) string {
	if a.checked {
		return a.why
	}
	a.checked = true
	f := a.f
	code, ok := b.new.Bytes(f.NewRVA, int(f.NewSize))
	if !ok || len(code) == 0 {
		a.why = "body not readable from the new image"
		return a.why
	}
	lo, hi := uint64(f.NewRVA), uint64(f.NewRVA)+uint64(f.NewSize)
	for _, r := range b.new.Relocs {
		if uint64(r.RVA)+uint64(r.Size) > lo && uint64(r.RVA) < hi {
			a.why = fmt.Sprintf("holds an absolute address (base relocation at %#x)", r.RVA)
			return a.why
		}
	}
	switch b.arch {
	case image.AMD64:
		for off := 0; off < len(code); {
			in, err := amd64.Decode(code[off:], lo+uint64(off))
			if err != nil {
				a.why = fmt.Sprintf("cannot decode +%#x: %v", off, err)
				return a.why
			}
			if in.RelKind != amd64.RelNone && (in.Target < lo || in.Target >= hi) {
				a.why = fmt.Sprintf("+%#x references %#x outside its body (added functions are carried only when self-contained)", off, in.Target)
				return a.why
			}
			off += in.Len
		}
	case image.ARM64:
		for off := 0; off+4 <= len(code); off += 4 {
			in := arm64.Classify(binary.LittleEndian.Uint32(code[off:]), lo+uint64(off))
			if in.PCRelative() && (in.Class == arm64.ADRP || in.Target < lo || in.Target >= hi) {
				a.why = fmt.Sprintf("+%#x references %#x outside its body (added functions are carried only when self-contained)", off, in.Target)
				return a.why
			}
		}
	}
	return ""
}

// tableArea is the bytes of f's blob in front of the code: its jump tables,
// each 8-byte aligned, the whole rounded to 16 so the code stays aligned.
func tableArea(f *diff.Function) uint32 {
	var n uint32
	for _, r := range f.References {
		if r.Table != nil && r.Resolution == diff.CarryConstant {
			n = uint32(alignUp(uint64(n), 8)) + uint32(len(r.Table.Entries))*uint32(r.Table.EntrySize)
		}
	}
	return uint32(alignUp(uint64(n), 16))
}

// constant returns the index of a carried constant with data, adding it.
func (b *builder) constant(name string, data []byte) uint32 {
	for i := range b.consts {
		if bytes.Equal(b.consts[i].Data, data) {
			return uint32(i)
		}
	}
	b.consts = append(b.consts, Constant{Name: name, Data: bytes.Clone(data)})
	return uint32(len(b.consts) - 1)
}

// function makes the package entry of the changed function f (already
// checked).
func (b *builder) function(f *diff.Function) (Function, *Refusal) {
	self := b.index[f.OldRVA]
	entry := b.entries[self]
	code, _ := b.new.Bytes(f.NewRVA, int(f.NewSize))
	oldCode, _ := b.old.Bytes(f.OldRVA, int(f.OldSize))
	fn := Function{
		Name:     b.names[f.NewRVA],
		OldRVA:   f.OldRVA,
		OldSize:  f.OldSize,
		PreImage: bytes.Clone(oldCode[:min(len(oldCode), preImageLen)]),
		OldHash:  sha256.Sum256(oldCode),
		NewRVA:   f.NewRVA,
		Entry:    entry,
	}
	blob := make([]byte, entry, int(entry)+len(code)+64)
	blob = append(blob, code...)
	refuse := func(r diff.Reference, why string) *Refusal {
		return &Refusal{Function: fn.Name, RVA: f.NewRVA, Offset: int(r.Offset), Why: why}
	}
	var tableOff uint32
	adrp := map[uint32]bool{} // ADRP fields already relocated
	for _, r := range f.References {
		var to Target
		var index uint32
		var addend int64
		switch r.Resolution {
		case diff.ToFunction:
			if i, ok := b.index[r.Target.RVA]; ok && r.Target.Offset == 0 {
				to, index, addend = ToBlob, uint32(i), int64(b.entries[i])
			} else {
				to, addend = ToImage, int64(r.Target.RVA)+r.Target.Offset
			}
		case diff.ToData, diff.ToImport:
			to, addend = ToImage, int64(r.Target.RVA)+r.Target.Offset
		case diff.ToNewFunction:
			if r.Target.RVA == f.NewRVA {
				to, index, addend = ToBlob, uint32(self), int64(entry)+r.Target.Offset
			} else {
				i, ok := b.aindex[r.Target.RVA]
				if !ok {
					return fn, refuse(r, "added callee not carried")
				}
				to, index, addend = ToBlob, uint32(i), r.Target.Offset
			}
		case diff.CarryConstant:
			if r.Table != nil {
				tableOff = uint32(alignUp(uint64(tableOff), 8))
				relocs, why := fillTable(blob, tableOff, entry, uint32(self), r.Table)
				if why != "" {
					return fn, refuse(r, why)
				}
				fn.Relocs = append(fn.Relocs, relocs...)
				to, index, addend = ToBlob, uint32(self), int64(tableOff)
				tableOff += uint32(len(r.Table.Entries)) * uint32(r.Table.EntrySize)
			} else {
				to, index = ToConstant, b.constant(r.Target.Name, r.Content)
			}
		default:
			return fn, refuse(r, "reference not resolved to anything Build can relocate: "+r.Why)
		}
		x := Reloc{Offset: entry + r.Field, To: to, Index: index, Addend: addend}
		switch r.Form {
		case diff.FormRel32, diff.FormRIP32:
			end, err := b.instEnd(code, r)
			if err != nil {
				return fn, refuse(r, err.Error())
			}
			x.Kind, x.Aux = RelocRel32, entry+end
		case diff.FormRel8:
			// A short branch out of the body: through a jmp rel32 appended
			// to the blob (a veneer), which the rel8 must reach.
			end, err := b.instEnd(code, r)
			if err != nil {
				return fn, refuse(r, err.Error())
			}
			veneer := uint32(len(blob))
			d := int64(veneer) - int64(entry+end)
			if d > 127 {
				return fn, refuse(r, fmt.Sprintf("short branch out of the body %d bytes from its end: too far for a rel8 to reach a veneer", d))
			}
			blob[entry+r.Field] = byte(int8(d))
			blob = append(blob, 0xe9, 0, 0, 0, 0)
			x.Offset, x.Kind, x.Aux = veneer+1, RelocRel32, veneer+5
		case diff.FormAbs64:
			x.Kind = RelocAbs64
		case diff.FormAbs32:
			x.Kind = RelocAbs32
		case diff.FormBranch26:
			x.Kind = RelocBranch26
		case diff.FormBranch19, diff.FormBranch14:
			// A conditional branch out of the body reaches only +-1 MiB
			// (+-32 KiB for TBZ): through a B appended to the blob.
			veneer, why := armVeneer(&blob, entry+r.Field, r.Form == diff.FormBranch14)
			if why != "" {
				return fn, refuse(r, why)
			}
			x.Offset, x.Kind = veneer, RelocBranch26
		case diff.FormLiteral:
			x.Kind = RelocLiteral
		case diff.FormADR:
			x.Kind = RelocADR
			if r.PairOffset != 0 {
				// ADR + ADD/LDR (an ADRP a linker relaxed): back to ADRP.
				w := binary.LittleEndian.Uint32(blob[entry+r.Field:])
				binary.LittleEndian.PutUint32(blob[entry+r.Field:], w|1<<31)
				x.Kind, x.Aux = RelocADRP, entry+r.PairOffset
			}
		case diff.FormADRP:
			x.Kind, x.Aux = RelocADRP, entry+r.PairOffset
		default:
			return fn, refuse(r, fmt.Sprintf("reference form %s", r.Form))
		}
		if x.Kind == RelocADRP {
			if adrp[x.Offset] {
				// A second low-12 use of one ADRP.
				x.Offset, x.Kind, x.Aux = entry+r.PairOffset, RelocLo12, x.Offset
			}
			adrp[x.Offset] = true
		}
		fn.Relocs = append(fn.Relocs, x)
	}
	slices.SortFunc(fn.Relocs, func(x, y Reloc) int { return int64cmp(int64(x.Offset), int64(y.Offset)) })
	for i := 1; i < len(fn.Relocs); i++ {
		if fn.Relocs[i].Offset == fn.Relocs[i-1].Offset {
			return fn, &Refusal{Function: fn.Name, RVA: f.NewRVA, Offset: int(fn.Relocs[i].Offset - entry), Why: "two references rewrite one field"}
		}
	}
	fn.Blob = blob
	return fn, nil
}

// armVeneer appends `B 0` to blob (the veneer, linked by a RelocBranch26)
// and points the conditional branch at field (imm19, or imm14 for TBZ/TBNZ)
// to it. It returns the veneer's offset, or why the branch cannot reach it.
func armVeneer(blob *[]byte, field uint32, tbz bool) (uint32, string) {
	veneer := uint32(len(*blob))
	d := (int64(veneer) - int64(field)) / 4
	bits, shift := uint(19), uint(5)
	if tbz {
		bits = 14
	}
	if d >= 1<<(bits-1) {
		return 0, fmt.Sprintf("conditional branch out of the body %d words from its end: too far to reach a veneer", d)
	}
	w := binary.LittleEndian.Uint32((*blob)[field:])
	mask := uint32(1)<<bits - 1
	w = w&^(mask<<shift) | (uint32(d)&mask)<<shift
	binary.LittleEndian.PutUint32((*blob)[field:], w)
	*blob = binary.LittleEndian.AppendUint32(*blob, 0x14000000)
	return veneer, ""
}

// fillTable writes jump table t at tableOff of blob (whose code starts at
// entry) and returns the relocations its entries need (absolute tables).
func fillTable(blob []byte, tableOff, entry, self uint32, t *diff.JumpTable) ([]Reloc, string) {
	size := int(t.EntrySize)
	var relocs []Reloc
	for k, target := range t.Entries {
		at := int(tableOff) + k*size
		var v int64
		switch t.Base {
		case "table":
			v = int64(entry+target) - int64(tableOff)
		case "label":
			d := int64(target) - int64(t.LabelOffset)
			if d%4 != 0 {
				return nil, fmt.Sprintf("jump table entry %#x not a whole number of words from the label", target)
			}
			v = d / 4
		case "absolute":
			kind := RelocAbs64
			if size == 4 {
				kind = RelocAbs32
			}
			relocs = append(relocs, Reloc{Offset: uint32(at), Kind: kind, To: ToBlob, Index: self, Addend: int64(entry + target)})
			continue
		}
		if bits := 8 * size; size < 8 && (v < -(1<<(bits-1)) || v >= 1<<bits) {
			return nil, fmt.Sprintf("jump table entry %d does not fit in %d bytes", v, size)
		}
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], uint64(v))
		copy(blob[at:at+size], buf[:size])
	}
	return relocs, ""
}

// isGo reports whether img was built by the Go toolchain.
func isGo(img *image.Image) bool {
	for i := range img.Sections {
		switch img.Sections[i].Name {
		case ".go.buildinfo", ".gopclntab", ".gosymtab":
			return true
		}
	}
	for i := range img.Symbols {
		switch img.Symbols[i].Name {
		case "runtime.main", "runtime.goexit", "runtime.pclntab", "go:buildid":
			return true
		}
	}
	return false
}

// baseOf describes the old image.
func baseOf(img *image.Image, module string) Base {
	b := Base{Format: img.Format, Arch: img.Arch, Module: module, ImageBase: img.Base, Size: img.Size, Identity: img.Identity}
	if cv := img.Identity.CodeView; cv != nil {
		b.Identity.CodeView = &image.CodeView{GUID: cv.GUID, Age: cv.Age}
	}
	if len(img.Identity.BuildID) > 0 {
		b.Identity.BuildID = bytes.Clone(img.Identity.BuildID)
	} else {
		b.Identity.BuildID = nil
	}
	for i := range img.Sections {
		s := &img.Sections[i]
		if s.Flags&image.SectionExec != 0 && s.Size > 0 {
			b.CodeSections = append(b.CodeSections, image.Range{RVA: s.RVA, Size: s.Size})
		}
	}
	for _, r := range img.Relocs {
		if r.Size != 4 && r.Size != 8 {
			continue
		}
		for _, s := range b.CodeSections {
			if r.RVA >= s.RVA && uint64(r.RVA)+uint64(r.Size) <= uint64(s.RVA)+uint64(s.Size) {
				word, _ := img.Bytes(r.RVA, int(r.Size))
				var buf [8]byte
				copy(buf[:], word)
				b.CodeRelocs = append(b.CodeRelocs, CodeReloc{RVA: r.RVA, Type: r.Type, Size: r.Size, Addend: r.Addend, File: binary.LittleEndian.Uint64(buf[:])})
				break
			}
		}
	}
	return b
}
