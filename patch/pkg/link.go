package pkg

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Alignment of every blob and constant in the linked layout.
const linkAlign = 16

// Layout is where Link places each blob and constant: offsets from the
// start of the patch memory, blobs first in function order, then constants,
// each aligned to 16 bytes.
type Layout struct {
	Blobs     []uint64 // offset of Functions[i].Blob
	Constants []uint64 // offset of Constants[i].Data
	Size      uint64   // bytes of patch memory needed
}

// Layout returns the placement Link uses.
func (p *Package) Layout() Layout {
	var l Layout
	var off uint64
	l.Blobs = make([]uint64, len(p.Functions))
	for i := range p.Functions {
		l.Blobs[i] = off
		off = alignUp(off+uint64(len(p.Functions[i].Blob)), linkAlign)
	}
	l.Constants = make([]uint64, len(p.Constants))
	for i := range p.Constants {
		l.Constants[i] = off
		off = alignUp(off+uint64(len(p.Constants[i].Data)), linkAlign)
	}
	l.Size = off
	return l
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }

// NeedsNear reports whether some relocation reaches the old image with a
// limited displacement (x86-64 rel32, ARM64 branches, ADR, ADRP, literal
// loads): the patch memory must then be allocated within reach of the
// module (+-2 GiB on x86-64; +-128 MiB for ARM64 B/BL, +-1 MiB for ADR and
// literals, +-4 GiB for ADRP), or Link fails with a *LinkError.
func (p *Package) NeedsNear() bool {
	for i := range p.Functions {
		for _, r := range p.Functions[i].Relocs {
			if r.To == ToImage && r.Kind != RelocAbs64 && r.Kind != RelocAbs32 {
				return true
			}
		}
	}
	return false
}

// Linked is a package resolved for one process: the bytes to write at Base
// and where each function starts.
type Linked struct {
	Base uint64
	// Code is the whole patch memory content (Layout().Size bytes): blobs
	// and constants with every relocation filled in, zeros between them.
	Code []byte
	// Entries holds, for each function, the address execution starts at:
	// the target of its entry jump (and of calls from other blobs).
	Entries []uint64
}

// Link resolves every relocation of p for a process that has the old module
// loaded at moduleBase and the patch memory at base (Layout().Size bytes).
// A target out of a field's reach, a misaligned ARM64 target or a pair
// instruction of an unexpected kind is a *LinkError naming the function.
func (p *Package) Link(moduleBase, base uint64) (*Linked, error) {
	l := p.Layout()
	if base+l.Size < base {
		return nil, &LinkError{Why: fmt.Sprintf("patch memory at %#x of %d bytes wraps", base, l.Size)}
	}
	out := &Linked{Base: base, Code: make([]byte, l.Size), Entries: make([]uint64, len(p.Functions))}
	for i := range p.Constants {
		copy(out.Code[l.Constants[i]:], p.Constants[i].Data)
	}
	for i := range p.Functions {
		f := &p.Functions[i]
		blob := out.Code[l.Blobs[i] : l.Blobs[i]+uint64(len(f.Blob))]
		copy(blob, f.Blob)
		at := base + l.Blobs[i]
		out.Entries[i] = at + uint64(f.Entry)
		for _, r := range f.Relocs {
			var s uint64
			switch r.To {
			case ToImage:
				s = moduleBase + uint64(r.Addend)
			case ToBlob:
				s = base + l.Blobs[r.Index] + uint64(r.Addend)
			case ToConstant:
				s = base + l.Constants[r.Index] + uint64(r.Addend)
			}
			if why := apply(p.Base.Arch, blob, r, at, s); why != "" {
				return nil, &LinkError{Function: f.Name, Offset: r.Offset, Kind: r.Kind, Target: s, Why: why}
			}
		}
	}
	return out, nil
}

// apply fills one relocation's field in blob (placed at address at) with
// target s; it returns why it cannot ("" on success). The package was
// validated, so fields are inside blob.
func apply(a image.Arch, blob []byte, r Reloc, at, s uint64) string {
	p := at + uint64(r.Offset)
	field := blob[r.Offset:]
	delta := int64(s - p)
	switch r.Kind {
	case RelocRel32:
		d := int64(s - (at + uint64(r.Aux)))
		if d < math.MinInt32 || d > math.MaxInt32 {
			return "out of rel32 reach (+-2 GiB): allocate the patch memory near the module"
		}
		binary.LittleEndian.PutUint32(field, uint32(int32(d)))
		return ""
	case RelocAbs64:
		binary.LittleEndian.PutUint64(field, s)
		return ""
	case RelocAbs32:
		if s > math.MaxUint32 {
			return "address does not fit in 32 bits"
		}
		binary.LittleEndian.PutUint32(field, uint32(s))
		return ""
	}
	if a != image.ARM64 {
		return "ARM64 relocation in an x86-64 package"
	}
	w := binary.LittleEndian.Uint32(field)
	branch := func(bits uint, shift uint) string {
		if delta%4 != 0 {
			return "target not 4-byte aligned"
		}
		imm := delta >> 2
		if imm < -(1<<(bits-1)) || imm >= 1<<(bits-1) {
			return fmt.Sprintf("out of reach of a %d-bit word displacement (%d)", bits, delta)
		}
		mask := uint32(1)<<bits - 1
		w = w&^(mask<<shift) | (uint32(imm)&mask)<<shift
		return ""
	}
	var why string
	switch r.Kind {
	case RelocBranch26:
		why = branch(26, 0)
	case RelocBranch19, RelocLiteral:
		why = branch(19, 5)
	case RelocBranch14:
		why = branch(14, 5)
	case RelocADR:
		if delta < -(1<<20) || delta >= 1<<20 {
			return "out of ADR reach (+-1 MiB)"
		}
		w = setADRImm(w, delta)
	case RelocADRP:
		pages := int64(s>>12) - int64(p>>12)
		if pages < -(1<<20) || pages >= 1<<20 {
			return "out of ADRP reach (+-4 GiB)"
		}
		pw := binary.LittleEndian.Uint32(blob[r.Aux:])
		pw, why = setLow12(pw, s&0xfff)
		if why != "" {
			return why
		}
		binary.LittleEndian.PutUint32(blob[r.Aux:], pw)
		w = setADRImm(w, pages)
	case RelocLo12:
		aw := binary.LittleEndian.Uint32(blob[r.Aux:])
		if aw&0x9f000000 != 0x90000000 {
			return fmt.Sprintf("instruction at %#x is not an ADRP", r.Aux)
		}
		imm := int64(aw>>29&3 | (aw>>5&0x7ffff)<<2)
		imm = imm << 43 >> 43 // sign-extend 21 bits
		if page := int64((at+uint64(r.Aux))>>12) + imm; page != int64(s>>12) {
			return fmt.Sprintf("the ADRP at %#x sets page %#x, the target is on page %#x", r.Aux, uint64(page)<<12, s&^0xfff)
		}
		w, why = setLow12(w, s&0xfff)
	default:
		return "unknown relocation kind"
	}
	if why == "" {
		binary.LittleEndian.PutUint32(field, w)
	}
	return why
}

// setADRImm writes the 21-bit immediate of an ADR/ADRP (immlo at bits 29-30,
// immhi at bits 5-23).
func setADRImm(w uint32, imm int64) uint32 {
	u := uint32(imm) & (1<<21 - 1)
	return w&^(3<<29|0x7ffff<<5) | (u&3)<<29 | (u>>2)<<5
}

// ARM64 encodings of the instruction completing an ADRP.
const (
	a64AddImmMask = 0x7f800000 // ADD (immediate), 32 or 64-bit, not setting flags
	a64AddImm     = 0x11000000
	a64LdStUMask  = 0x3b000000 // load/store register (unsigned immediate)
	a64LdStU      = 0x39000000
)

// setLow12 writes lo12 into the ADD (immediate) or load/store (unsigned
// offset, scaled by the access size) pw.
func setLow12(pw uint32, lo12 uint64) (uint32, string) {
	switch {
	case pw&a64AddImmMask == a64AddImm:
		if pw&(1<<22) != 0 {
			return 0, "pair ADD shifts its immediate by 12"
		}
		return pw&^(0xfff<<10) | uint32(lo12)<<10, ""
	case pw&a64LdStUMask == a64LdStU:
		scale := pw >> 30
		if pw&(1<<26) != 0 && (pw>>22)&3 >= 2 {
			scale = 4
		}
		if lo12&(1<<scale-1) != 0 {
			return 0, fmt.Sprintf("target not aligned to the %d-byte access", 1<<scale)
		}
		return pw&^(0xfff<<10) | uint32(lo12>>scale)<<10, ""
	}
	return 0, fmt.Sprintf("pair instruction %#08x is neither ADD (immediate) nor a load/store with an unsigned offset", pw)
}
