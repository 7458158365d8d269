package pkg

import (
	"crypto/ed25519"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Version is the format version Marshal writes and Load accepts.
const Version = 1

// Magic starts every package file. Like PNG's signature it holds a high byte,
// a CR LF and a ^Z, so text-mode transfers and truncation at ^Z are caught by
// the first eight bytes.
const Magic = "\x89HPK\r\n\x1a\n"

// Package is one hot patch: the build it applies to, the functions it
// replaces and the code and constants it carries.
//
// A Package is plain data: build it with Build (or by hand), sign it with
// Sign, write it with Marshal, read it back with Load. Functions, Constants,
// CodeSections and CodeRelocs must be in canonical order (see Validate), which
// Build and Load guarantee.
type Package struct {
	// Base is the exact build of the module the package applies to.
	Base Base
	// Sequence is this package's number in the module's patch series (>= 1);
	// Requires is the sequence that must be applied before it (0: none).
	Sequence uint32
	Requires uint32
	// Description is free text for operators (who built it, which fix). It is
	// not a timestamp: the same inputs must give byte-identical packages.
	Description string
	// Functions are the new bodies: first every replaced function by OldRVA,
	// then every added function (New) by Name.
	Functions []Function
	// Constants are the read-only data the bodies reference, carried because
	// the old image does not hold them.
	Constants []Constant

	// sig is the signature Sign computed or Load verified; nil when unsigned.
	sig *signature
}

// Base identifies the old image and carries what Apply needs to check a live
// module against it without the old file: its identity, where its code is,
// and the base relocations inside the code (to undo before hashing).
type Base struct {
	Format image.Format
	Arch   image.Arch
	// Module is the module's file name as the builder saw it ("app.exe"): a
	// hint to find it, never a substitute for the identity.
	Module string
	// ImageBase is the preferred load address; Size the mapped size.
	ImageBase uint64
	Size      uint32
	// Identity is all of image.Identity except CodeView.Path.
	Identity image.Identity
	// CodeSections are the executable sections (RVA, mapped size) in the
	// order Identity.CodeHash hashes them.
	CodeSections []image.Range
	// CodeRelocs are the base relocations that fall inside CodeSections,
	// sorted by RVA, with the file's bytes at each (ELF RELA leaves them zero
	// in the file while the loader writes the addend).
	CodeRelocs []CodeReloc
}

// CodeReloc is one base relocation inside the old image's code.
type CodeReloc struct {
	RVA    uint32
	Type   image.RelocType
	Size   uint8 // 4 or 8
	Addend int64
	// File is the little-endian value of the Size bytes the file holds at RVA.
	File uint64
}

// Function is one carried body.
type Function struct {
	// Name is the function's symbol name (or "sub_<rva>" when it has none);
	// names are unique within a package.
	Name string
	// New marks a function only the new build has: it replaces nothing and
	// OldRVA, OldSize, PreImage and OldHash are zero.
	New bool
	// OldRVA and OldSize locate the function the entry jump overwrites.
	OldRVA  uint32
	OldSize uint32
	// PreImage is the first bytes of the old function as the image has them
	// (at least every byte an entry jump may overwrite): Apply refuses a
	// target whose bytes differ (already hooked, another build).
	PreImage []byte
	// OldHash is the SHA-256 of the whole old body (OldSize bytes).
	OldHash [32]byte
	// NewRVA is where the body was in the new image (for people; Link does
	// not use it).
	NewRVA uint32
	// Entry is the offset in Blob where execution starts: jump tables are
	// placed before the code so their entries stay non-negative.
	Entry uint32
	// Blob is the body with every outside reference still to be linked.
	Blob []byte
	// Relocs are the fields of Blob that Link fills in, sorted by Offset.
	Relocs []Reloc
}

// Constant is a run of read-only bytes carried in the package.
type Constant struct {
	// Name says where it came from in the new image ("section+0xoff").
	Name string
	Data []byte
}

// RelocKind is how a relocation's field is encoded.
type RelocKind uint8

// Relocation kinds. S is the target address, P the address of the field
// (for ARM64, of the instruction word at Offset).
const (
	// RelocRel32: x86-64 4-byte displacement, S - (blob address + Aux), where
	// Aux is the offset of the end of the instruction.
	RelocRel32 RelocKind = iota + 1
	// RelocAbs64: 8-byte absolute address S.
	RelocAbs64
	// RelocAbs32: 4-byte absolute address S (must fit in 32 bits).
	RelocAbs32
	// RelocBranch26: ARM64 B/BL imm26, (S - P) / 4.
	RelocBranch26
	// RelocBranch19: ARM64 B.cond/CBZ/CBNZ imm19, (S - P) / 4.
	RelocBranch19
	// RelocBranch14: ARM64 TBZ/TBNZ imm14, (S - P) / 4.
	RelocBranch14
	// RelocADR: ARM64 ADR imm21, S - P.
	RelocADR
	// RelocADRP: ARM64 ADRP imm21 = page(S) - page(P), and the low 12 bits of
	// S in the ADD (immediate) or load/store (unsigned offset, scaled) at
	// offset Aux.
	RelocADRP
	// RelocLiteral: ARM64 LDR (literal) imm19, (S - P) / 4.
	RelocLiteral
	// RelocLo12: the low 12 bits of S in the ADD (immediate) or load/store
	// (unsigned offset) at Offset, whose base register an ADRP at Aux (<
	// Offset, linked by its own RelocADRP) set to S's page: a second use of
	// one ADRP. Link checks the ADRP's page is S's.
	RelocLo12
)

// Target says what a relocation's address S is computed from.
type Target uint8

// Relocation targets.
const (
	// ToImage: S = module base + Addend (an RVA in the old image).
	ToImage Target = iota + 1
	// ToBlob: S = address of Functions[Index].Blob + Addend.
	ToBlob
	// ToConstant: S = address of Constants[Index].Data + Addend.
	ToConstant
)

// Reloc is one field of a blob that Link fills in.
type Reloc struct {
	// Offset is the field's offset in the blob (for ARM64, the instruction
	// word's).
	Offset uint32
	Kind   RelocKind
	// Aux is, for RelocRel32, the offset of the end of the instruction; for
	// RelocADRP, the offset of the instruction holding the low 12 bits; for
	// RelocLo12, the offset of the ADRP; 0 otherwise.
	Aux    uint32
	To     Target
	Index  uint32 // function or constant index (ToBlob, ToConstant); 0 for ToImage
	Addend int64  // RVA (ToImage) or offset in the blob or constant
}

// String names the kind.
func (k RelocKind) String() string {
	switch k {
	case RelocRel32:
		return "rel32"
	case RelocAbs64:
		return "abs64"
	case RelocAbs32:
		return "abs32"
	case RelocBranch26:
		return "branch26"
	case RelocBranch19:
		return "branch19"
	case RelocBranch14:
		return "branch14"
	case RelocADR:
		return "adr"
	case RelocADRP:
		return "adrp"
	case RelocLiteral:
		return "literal"
	case RelocLo12:
		return "lo12"
	}
	return fmt.Sprintf("RelocKind(%d)", uint8(k))
}

// String names the target.
func (t Target) String() string {
	switch t {
	case ToImage:
		return "image"
	case ToBlob:
		return "blob"
	case ToConstant:
		return "constant"
	}
	return fmt.Sprintf("Target(%d)", uint8(t))
}

// fieldSize is the number of blob bytes the relocation rewrites.
func (k RelocKind) fieldSize() int {
	switch k {
	case RelocAbs64:
		return 8
	case 0:
		return 0
	}
	if k > RelocLo12 {
		return 0
	}
	return 4
}

// forArch reports whether the kind belongs to architecture a.
func (k RelocKind) forArch(a image.Arch) bool {
	switch k {
	case RelocAbs64, RelocAbs32:
		return true
	case RelocRel32:
		return a == image.AMD64
	case RelocBranch26, RelocBranch19, RelocBranch14, RelocADR, RelocADRP, RelocLiteral, RelocLo12:
		return a == image.ARM64
	}
	return false
}

// Signed reports whether the package carries a signature (made by Sign or
// verified by Load).
func (p *Package) Signed() bool { return p.sig != nil }

// KeyID returns the ID of the key that signed the package, and false when it
// is unsigned.
func (p *Package) KeyID() (KeyID, bool) {
	if p.sig == nil {
		return KeyID{}, false
	}
	return p.sig.keyID, true
}

// Function returns the function named name, or nil.
func (p *Package) Function(name string) *Function {
	for i := range p.Functions {
		if p.Functions[i].Name == name {
			return &p.Functions[i]
		}
	}
	return nil
}

// signature is a detached ed25519 signature over header and body.
type signature struct {
	keyID KeyID
	sig   [ed25519.SignatureSize]byte
	// digest is the SHA-256 of the header and body the signature covers:
	// Marshal refuses to write the signature over anything else.
	digest [32]byte
}
