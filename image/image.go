package image

import (
	"sort"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
)

// Format is the container format of an image.
type Format uint8

// Container formats.
const (
	FormatUnknown Format = iota
	FormatPE
	FormatELF
)

// String returns "PE", "ELF" or "unknown".
func (f Format) String() string {
	switch f {
	case FormatPE:
		return "PE"
	case FormatELF:
		return "ELF"
	}
	return "unknown"
}

// Arch is the instruction-set architecture of an image's code.
type Arch = arch.Arch

// Architectures an image can have.
const (
	ArchUnknown = arch.Unknown
	AMD64       = arch.AMD64
	ARM64       = arch.ARM64
)

// Image is a loaded module. All addresses are RVAs: offsets from the image's
// preferred base (for ELF, from the lowest PT_LOAD address rounded down to a page).
type Image struct {
	Format Format
	Arch   Arch
	// Base is the preferred load address (PE ImageBase, ELF lowest segment address).
	Base uint64
	// Entry is the RVA of the entry point, 0 when the image has none.
	Entry uint32
	// Size is the size of the image once mapped (PE SizeOfImage, ELF span of PT_LOAD).
	Size uint32

	Sections  []Section
	Symbols   []Symbol   // sorted by RVA, then name
	Imports   []Import   // in directory order
	Exports   []Export   // sorted by ordinal
	Relocs    []Reloc    // base relocations, sorted by RVA
	Functions []Function // sorted by RVA, non-overlapping
	Identity  Identity

	// Dropped lists the function candidates the loader found whose start is
	// not inside an executable section (an export or symbol naming data, for
	// example). They are not in Functions; they are kept to be counted.
	Dropped []Function

	byName map[string]int // function name -> index in Functions
}

// SectionFlags describe how a section is mapped.
type SectionFlags uint8

// Section flags.
const (
	SectionRead SectionFlags = 1 << iota
	SectionWrite
	SectionExec
	// SectionUninit marks zero-filled data that has no bytes in the file (.bss).
	SectionUninit
)

// Section is a named, contiguous part of the mapped image.
type Section struct {
	Name  string
	RVA   uint32
	Size  uint32 // size once mapped (VirtualSize)
	Flags SectionFlags
	// Offset is the file offset of the section's bytes.
	Offset uint32
	// Data holds the bytes from the file, at most Size of them; the rest of the
	// mapped section reads as zeros.
	Data []byte
}

// Contains reports whether rva lies inside the mapped section.
func (s *Section) Contains(rva uint32) bool {
	return rva >= s.RVA && uint64(rva) < uint64(s.RVA)+uint64(s.Size)
}

// SymbolKind says what a symbol names.
type SymbolKind uint8

// Symbol kinds.
const (
	SymbolOther SymbolKind = iota
	SymbolFunc
	SymbolData
)

// Symbol is an entry of the image's symbol table (COFF or ELF) that names a
// location inside the image.
type Symbol struct {
	Name string
	RVA  uint32
	Size uint32 // 0 when the format does not record it (COFF)
	Kind SymbolKind
	// Global is false for file-local (static) symbols.
	Global bool
}

// Import is one imported function or variable.
type Import struct {
	Library string
	// Name is empty for imports by ordinal.
	Name    string
	Ordinal uint16
	// Slot is the RVA of the IAT (PE) or GOT (ELF) slot the loader fills.
	Slot uint32
}

// Export is one exported symbol.
type Export struct {
	Name    string // empty for ordinal-only exports
	Ordinal uint32
	RVA     uint32 // 0 for forwarders
	// Forwarder is "DLL.Name" when the export forwards to another module.
	Forwarder string
}

// RelocType is the kind of a base relocation; for PE it is the
// IMAGE_REL_BASED_* value, for ELF the R_*_RELATIVE family.
type RelocType uint16

// Reloc is a base relocation: a location the loader adjusts by the difference
// between the actual and the preferred base.
type Reloc struct {
	RVA  uint32
	Type RelocType
	// Size is the number of bytes the loader rewrites (8 for DIR64, 4 for
	// HIGHLOW, 2 for HIGH/LOW; 0 for types this package does not size).
	// PE IMAGE_REL_BASED_ABSOLUTE entries are block padding that names no
	// location: they are left out.
	Size uint8
	// Addend is, for ELF, the link-time value the loader adds the difference
	// between actual and preferred base to (the RELA addend, or the bytes in
	// place for RELR); the file's bytes at RVA may be zero. 0 for PE, whose
	// addend is always the bytes in place.
	Addend int64
}

// Source records evidence that a function starts at an address, and where
// its extent came from.
type Source uint16

// Sources of function information. A function found several ways has several bits.
const (
	// FromPdata: an x64 RUNTIME_FUNCTION or ARM64 .pdata entry (exact extent).
	FromPdata Source = 1 << iota
	// FromSymbol: a COFF or ELF symbol (ELF symbols carry a size).
	FromSymbol
	// FromExport: the export directory.
	FromExport
	// FromCallTarget: the target of a direct call from a known function.
	// Set on the starts the call scan discovers; a start already known
	// from another source need not carry it.
	FromCallTarget
	// FromEntry: the image's entry point.
	FromEntry
	// FromGap: the extent was inferred as the gap up to the next known start,
	// less trailing padding.
	FromGap
)

// String lists the set bits, e.g. "pdata+symbol".
func (s Source) String() string {
	names := []string{"pdata", "symbol", "export", "call", "entry", "gap"}
	out := ""
	for i, n := range names {
		if s&(1<<i) != 0 {
			if out != "" {
				out += "+"
			}
			out += n
		}
	}
	if out == "" {
		return "none"
	}
	return out
}

// Function is a contiguous run of code with one entry point.
type Function struct {
	// Name is the best known name (symbol, then export), empty when unknown.
	Name string
	RVA  uint32
	Size uint32
	// Found is every source that said a function starts here.
	Found Source
	// Extent is the single source its Size came from (FromPdata, FromSymbol or FromGap).
	Extent Source
	// Unwind is the RVA of the function's unwind data (.xdata), 0 when none or packed.
	Unwind uint32
	// Parent is, for a fragment of another function (a PE .pdata range whose
	// unwind info is chained to the primary function's, e.g. a cold block
	// split off the body), the RVA of that function; 0 for a function with
	// its own entry point. A fragment is entered by jumps from its parent,
	// never called: nothing may redirect it on its own.
	Parent uint32
}

// End returns the RVA one past the function's last byte.
func (f *Function) End() uint32 { return f.RVA + f.Size }

// Contains reports whether rva lies inside the function.
func (f *Function) Contains(rva uint32) bool { return rva >= f.RVA && rva-f.RVA < f.Size }

// FunctionByName returns the function with the given name.
func (img *Image) FunctionByName(name string) (*Function, bool) {
	if img.byName == nil {
		img.index()
	}
	i, ok := img.byName[name]
	if !ok {
		return nil, false
	}
	return &img.Functions[i], true
}

// FunctionAt returns the function containing rva.
func (img *Image) FunctionAt(rva uint32) (*Function, bool) {
	fs := img.Functions
	i := sort.Search(len(fs), func(i int) bool { return fs[i].RVA > rva }) - 1
	if i < 0 || !fs[i].Contains(rva) {
		return nil, false
	}
	return &fs[i], true
}

// SectionAt returns the section containing rva.
func (img *Image) SectionAt(rva uint32) (*Section, bool) {
	for i := range img.Sections {
		if img.Sections[i].Contains(rva) {
			return &img.Sections[i], true
		}
	}
	return nil, false
}

// Bytes returns n bytes of the mapped image at rva, or false when the range
// is not inside one section. Bytes past a section's file data read as zeros,
// so the returned slice may be a fresh copy.
func (img *Image) Bytes(rva uint32, n int) ([]byte, bool) {
	s, ok := img.SectionAt(rva)
	if !ok || n < 0 || uint64(rva)+uint64(n) > uint64(s.RVA)+uint64(s.Size) {
		return nil, false
	}
	off := int(rva - s.RVA)
	if off+n <= len(s.Data) {
		return s.Data[off : off+n : off+n], true
	}
	out := make([]byte, n)
	if off < len(s.Data) {
		copy(out, s.Data[off:])
	}
	return out, true
}

// Code returns the bytes of f.
func (img *Image) Code(f *Function) ([]byte, bool) { return img.Bytes(f.RVA, int(f.Size)) }

// index builds the name lookup; called once the function list is final.
func (img *Image) index() {
	img.byName = make(map[string]int, len(img.Functions))
	for i, f := range img.Functions {
		if f.Name == "" {
			continue
		}
		if _, dup := img.byName[f.Name]; !dup {
			img.byName[f.Name] = i
		}
	}
}
