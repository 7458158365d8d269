package image

import (
	"bytes"
	"cmp"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
)

// elfPage is the page size ELF RVAs are measured from: Base is the lowest
// PT_LOAD address rounded down to 4 KiB, the smallest page both x86-64 and
// ARM64 Linux use, so RVA 0 is the ELF header of every normal executable and
// shared object whatever page size the target kernel runs with.
const elfPage = 0x1000

// ELF relocation and note constants debug/elf spells differently per arch.
const (
	elfNoteGNUBuildID = 3 // NT_GNU_BUILD_ID, owner "GNU"
	elfNoteGoBuildID  = 4 // the Go linker's build ID note, owner "Go"
	elfRelaEntSize    = 24
	// shtRELR is SHT_RELR (packed relative relocations), which debug/elf
	// does not name.
	shtRELR = elf.SectionType(19)
)

// elfRelocKinds names the dynamic relocation types parseELF understands for
// one machine.
type elfRelocKinds struct {
	relative, jumpSlot, globDat, abs64 uint32
}

var elfRelocs = map[elf.Machine]elfRelocKinds{
	elf.EM_X86_64:  {uint32(elf.R_X86_64_RELATIVE), uint32(elf.R_X86_64_JMP_SLOT), uint32(elf.R_X86_64_GLOB_DAT), uint32(elf.R_X86_64_64)},
	elf.EM_AARCH64: {uint32(elf.R_AARCH64_RELATIVE), uint32(elf.R_AARCH64_JUMP_SLOT), uint32(elf.R_AARCH64_GLOB_DAT), uint32(elf.R_AARCH64_ABS64)},
}

// elfHeader is what checkELFHeader validates before debug/elf sees the file.
type elfHeader struct {
	machine   elf.Machine
	entry     uint64
	phoff     uint64
	phentsize uint64
	shoff     uint64
	shentsize uint64
}

// parseELF loads an x86-64 or ARM64 ELF executable or shared object.
//
// What it records, and the choices it makes:
//   - Base is the lowest PT_LOAD address rounded down to 4 KiB; RVAs are
//     addresses minus Base; an image spanning 4 GiB or more is unsupported.
//   - Sections are the SHF_ALLOC sections (except .tbss, which occupies no
//     address space); a file without section headers gets one pseudo
//     section per PT_LOAD segment, named "LOAD" and the program header's
//     index. Relocations, imports and exports are read through section
//     headers: such a file has none of them in the model.
//   - Symbols come from .symtab, or .dynsym when the file is stripped;
//     section, file, TLS, absolute and undefined symbols are left out.
//   - Functions are the STT_FUNC (and STT_GNU_IFUNC: the bytes there are the
//     resolver's code) symbols with a nonzero size, plus the entry point.
//     Aliases (several symbols at one address) become one function named by
//     the first of: a STB_GLOBAL symbol, then STB_WEAK, then local; the
//     shortest name; the alphabetically first. Its size is the largest.
//   - Imports are the dynamic relocations that make the loader fill a slot
//     with another module's symbol: JUMP_SLOT, GLOB_DAT, and 64-bit absolute
//     ones against undefined symbols; Slot is the relocated address. ELF
//     does not say which library defines a symbol: Library is the
//     version-needed library when the symbol is versioned, the only DT_NEEDED
//     entry when there is one, else empty. COPY relocations are not imports
//     (the variable lives in this image).
//   - Exports are the defined global or weak dynamic symbols (what other
//     modules can bind to; an executable usually has few or none). ELF has
//     no ordinals: Ordinal is the symbol's index in .dynsym.
//   - Relocs are the R_*_RELATIVE relocations of the SHT_RELA and SHT_RELR
//     sections, Size 8, with their addend; IRELATIVE ones are not base
//     relocations (the loader writes a resolver's result) and are left out.
//   - Identity.BuildID is the NT_GNU_BUILD_ID note, or the Go linker's build
//     ID note when the file has no GNU one (its text is as unique per build).
func parseELF(data []byte) (img *Image, err error) {
	hdr, err := checkELFHeader(data)
	if err != nil {
		return nil, err
	}
	defer func() {
		// debug/elf is validated against above and below; this is the net.
		if r := recover(); r != nil {
			img, err = nil, &FormatError{Offset: -1, What: "ELF file", Err: fmt.Errorf("decoder panic: %v", r)}
		}
	}()
	f, err := elf.NewFile(bytes.NewReader(data))
	if err != nil {
		return nil, elfError("ELF headers", err)
	}
	p := &elfParser{data: data, f: f, hdr: hdr, img: &Image{Format: FormatELF}}
	if err := p.parse(); err != nil {
		return nil, err
	}
	return p.img, nil
}

// checkELFHeader validates the ELF header and the extent of the program and
// section header tables, and sorts out what is unsupported rather than
// malformed.
func checkELFHeader(data []byte) (*elfHeader, error) {
	const ehsize = 64
	if len(data) < 16 {
		return nil, &FormatError{Offset: 0, What: "ELF identification (truncated)"}
	}
	switch elf.Class(data[elf.EI_CLASS]) {
	case elf.ELFCLASS64:
	case elf.ELFCLASS32:
		return nil, &UnsupportedError{What: "32-bit ELF (ELFCLASS32)"}
	default:
		return nil, &FormatError{Offset: elf.EI_CLASS, What: fmt.Sprintf("ELF class %d", data[elf.EI_CLASS])}
	}
	switch elf.Data(data[elf.EI_DATA]) {
	case elf.ELFDATA2LSB:
	case elf.ELFDATA2MSB:
		return nil, &UnsupportedError{What: "big-endian ELF"}
	default:
		return nil, &FormatError{Offset: elf.EI_DATA, What: fmt.Sprintf("ELF data encoding %d", data[elf.EI_DATA])}
	}
	if elf.Version(data[elf.EI_VERSION]) != elf.EV_CURRENT {
		return nil, &FormatError{Offset: elf.EI_VERSION, What: fmt.Sprintf("ELF version %d", data[elf.EI_VERSION])}
	}
	if len(data) < ehsize {
		return nil, &FormatError{Offset: 16, What: "ELF header (truncated)"}
	}
	le := binary.LittleEndian
	switch t := elf.Type(le.Uint16(data[16:])); t {
	case elf.ET_EXEC, elf.ET_DYN:
	case elf.ET_REL, elf.ET_CORE:
		return nil, &UnsupportedError{What: "ELF file type " + t.String() + " (only executables and shared objects)"}
	default:
		return nil, &FormatError{Offset: 16, What: fmt.Sprintf("ELF file type %#x", uint16(t))}
	}
	h := &elfHeader{
		machine:   elf.Machine(le.Uint16(data[18:])),
		entry:     le.Uint64(data[24:]),
		phoff:     le.Uint64(data[32:]),
		shoff:     le.Uint64(data[40:]),
		phentsize: uint64(le.Uint16(data[54:])),
		shentsize: uint64(le.Uint16(data[58:])),
	}
	if _, ok := elfRelocs[h.machine]; !ok {
		return nil, &UnsupportedError{What: "ELF machine " + h.machine.String()}
	}
	phnum := uint64(le.Uint16(data[56:]))
	shnum := uint64(le.Uint16(data[60:]))
	if phnum == 0 {
		return nil, &FormatError{Offset: 56, What: "ELF program header count (0: not a loadable module)"}
	}
	if h.phentsize < 56 {
		return nil, &FormatError{Offset: 54, What: fmt.Sprintf("ELF program header size %d", h.phentsize)}
	}
	if h.phoff > uint64(len(data)) || phnum*h.phentsize > uint64(len(data))-h.phoff {
		return nil, &FormatError{Offset: 32, What: fmt.Sprintf("ELF program header table (%d entries at %#x, file size %#x)", phnum, h.phoff, len(data))}
	}
	if h.shoff != 0 {
		if h.shentsize < 64 {
			return nil, &FormatError{Offset: 58, What: fmt.Sprintf("ELF section header size %d", h.shentsize)}
		}
		if shnum == 0 {
			shnum = 1 // extended numbering: debug/elf reads the count from entry 0
		}
		if h.shoff > uint64(len(data)) || shnum*h.shentsize > uint64(len(data))-h.shoff {
			return nil, &FormatError{Offset: 40, What: fmt.Sprintf("ELF section header table (%d entries at %#x, file size %#x)", shnum, h.shoff, len(data))}
		}
	}
	return h, nil
}

var elfErrOffset = regexp.MustCompile(`at byte (0x[0-9a-f]+|[0-9]+)`)

// elfError turns a debug/elf error into a *FormatError, keeping the file
// offset debug/elf reports in its message (its FormatError hides the field).
func elfError(what string, err error) error {
	off := int64(-1)
	var fe *elf.FormatError
	if errors.As(err, &fe) {
		if m := elfErrOffset.FindStringSubmatch(fe.Error()); m != nil {
			if v, perr := strconv.ParseInt(m[1], 0, 64); perr == nil {
				off = v
			}
		}
	}
	return &FormatError{Offset: off, What: what, Err: err}
}

type elfParser struct {
	data []byte
	f    *elf.File
	hdr  *elfHeader
	img  *Image
	// end is the RVA one past the last mapped byte.
	end     uint64
	dynsyms []elf.Symbol
	needed  []string
}

func (p *elfParser) parse() error {
	img := p.img
	img.Identity.Machine = uint16(p.hdr.machine)
	switch p.hdr.machine {
	case elf.EM_X86_64:
		img.Arch = AMD64
	case elf.EM_AARCH64:
		img.Arch = ARM64
	}
	if err := p.segments(); err != nil {
		return err
	}
	if err := p.sections(); err != nil {
		return err
	}
	if err := p.symbols(); err != nil {
		return err
	}
	if err := p.dynamic(); err != nil {
		return err
	}
	p.buildID()
	return nil
}

// phOff is the file offset of program header i.
func (p *elfParser) phOff(i int) int64 { return int64(p.hdr.phoff + uint64(i)*p.hdr.phentsize) }

// shOff is the file offset of section header i.
func (p *elfParser) shOff(i int) int64 { return int64(p.hdr.shoff + uint64(i)*p.hdr.shentsize) }

func (p *elfParser) segments() error {
	lo, hi, n := uint64(1<<64-1), uint64(0), 0
	for i, pr := range p.f.Progs {
		if pr.Type != elf.PT_LOAD {
			continue
		}
		n++
		if pr.Filesz > pr.Memsz {
			return &FormatError{Offset: p.phOff(i), What: fmt.Sprintf("PT_LOAD segment %d (file size %#x > memory size %#x)", i, pr.Filesz, pr.Memsz)}
		}
		if pr.Off > uint64(len(p.data)) || pr.Filesz > uint64(len(p.data))-pr.Off {
			return &FormatError{Offset: p.phOff(i), What: fmt.Sprintf("PT_LOAD segment %d (bytes %#x+%#x beyond end of file %#x)", i, pr.Off, pr.Filesz, len(p.data))}
		}
		if pr.Vaddr+pr.Memsz < pr.Vaddr {
			return &FormatError{Offset: p.phOff(i), What: fmt.Sprintf("PT_LOAD segment %d (address %#x+%#x overflows)", i, pr.Vaddr, pr.Memsz)}
		}
		lo = min(lo, pr.Vaddr)
		hi = max(hi, pr.Vaddr+pr.Memsz)
	}
	if n == 0 {
		return &FormatError{Offset: int64(p.hdr.phoff), What: "ELF program headers (no PT_LOAD segment)"}
	}
	base := lo &^ (elfPage - 1)
	if hi-base >= 1<<32 {
		return &UnsupportedError{What: fmt.Sprintf("ELF image spanning %#x bytes (more than 4 GiB)", hi-base)}
	}
	p.img.Base = base
	p.img.Size = uint32(hi - base)
	p.end = hi - base
	if e := p.hdr.entry; e >= base && e-base < p.end {
		p.img.Entry = uint32(e - base)
		p.img.Functions = append(p.img.Functions, Function{RVA: p.img.Entry, Found: FromEntry})
	}
	return nil
}

// rva converts an address to an RVA, reporting whether [addr, addr+n) is
// inside the image's span.
func (p *elfParser) rva(addr, n uint64) (uint32, bool) {
	if addr < p.img.Base {
		return 0, false
	}
	r := addr - p.img.Base
	if r > p.end || n > p.end-r {
		return 0, false
	}
	return uint32(r), true
}

func (p *elfParser) sections() error {
	for i, s := range p.f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 || s.Size == 0 {
			continue
		}
		if s.Flags&elf.SHF_TLS != 0 && s.Type == elf.SHT_NOBITS {
			continue // .tbss is a template for each thread, not mapped here
		}
		r, ok := p.rva(s.Addr, s.Size)
		if !ok {
			// Not mapped by any PT_LOAD: nothing to find at its address.
			continue
		}
		sec := Section{Name: s.Name, RVA: r, Size: uint32(s.Size), Flags: SectionRead}
		if s.Flags&elf.SHF_WRITE != 0 {
			sec.Flags |= SectionWrite
		}
		if s.Flags&elf.SHF_EXECINSTR != 0 {
			sec.Flags |= SectionExec
		}
		if s.Type == elf.SHT_NOBITS {
			sec.Flags |= SectionUninit
		} else {
			if s.Offset > uint64(len(p.data)) || s.Size > uint64(len(p.data))-s.Offset || s.Offset >= 1<<32 {
				return &FormatError{Offset: p.shOff(i), What: fmt.Sprintf("section %q (bytes %#x+%#x beyond end of file %#x)", s.Name, s.Offset, s.Size, len(p.data))}
			}
			sec.Offset = uint32(s.Offset)
			sec.Data = p.data[s.Offset : s.Offset+s.Size : s.Offset+s.Size]
		}
		p.img.Sections = append(p.img.Sections, sec)
	}
	if len(p.img.Sections) > 0 {
		return nil
	}
	// No section headers (or none allocated): describe the segments instead.
	for i, pr := range p.f.Progs {
		if pr.Type != elf.PT_LOAD || pr.Memsz == 0 {
			continue
		}
		r, _ := p.rva(pr.Vaddr, pr.Memsz)
		sec := Section{Name: fmt.Sprintf("LOAD%d", i), RVA: r, Size: uint32(pr.Memsz), Offset: uint32(pr.Off)}
		if pr.Flags&elf.PF_R != 0 {
			sec.Flags |= SectionRead
		}
		if pr.Flags&elf.PF_W != 0 {
			sec.Flags |= SectionWrite
		}
		if pr.Flags&elf.PF_X != 0 {
			sec.Flags |= SectionExec
		}
		if pr.Filesz == 0 {
			sec.Flags |= SectionUninit
		} else {
			sec.Data = p.data[pr.Off : pr.Off+pr.Filesz : pr.Off+pr.Filesz]
		}
		p.img.Sections = append(p.img.Sections, sec)
	}
	return nil
}

// bindRank orders symbol bindings for choosing an alias's name.
func bindRank(b elf.SymBind) int {
	switch b {
	case elf.STB_GLOBAL:
		return 0
	case elf.STB_WEAK:
		return 1
	}
	return 2
}

func (p *elfParser) symbols() error {
	syms, err := p.f.Symbols()
	if errors.Is(err, elf.ErrNoSymbols) {
		syms, err = p.f.DynamicSymbols()
	}
	if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
		return elfError("ELF symbol table", err)
	}
	// cand is kept small: sorting thousands of elf.Symbol values (strings
	// and versions) costs more than the rest of the parse.
	type cand struct {
		name      string
		rva, size uint32
		bind      int
	}
	var funcs []cand
	p.img.Symbols = make([]Symbol, 0, len(syms))
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		switch typ {
		case elf.STT_SECTION, elf.STT_FILE, elf.STT_TLS:
			continue
		}
		if s.Name == "" || s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE {
			continue
		}
		r, ok := p.rva(s.Value, 0)
		if !ok || r == uint32(p.end) && p.end > 0 {
			continue
		}
		size := uint32(min(s.Size, p.end-uint64(r)))
		sym := Symbol{Name: s.Name, RVA: r, Size: size, Global: elf.ST_BIND(s.Info) != elf.STB_LOCAL}
		switch typ {
		case elf.STT_FUNC, elf.STT_GNU_IFUNC:
			sym.Kind = SymbolFunc
			if size > 0 {
				funcs = append(funcs, cand{s.Name, r, size, bindRank(elf.ST_BIND(s.Info))})
			}
		case elf.STT_OBJECT:
			sym.Kind = SymbolData
		}
		p.img.Symbols = append(p.img.Symbols, sym)
	}

	// One function per address: see parseELF for the alias rule.
	slices.SortFunc(funcs, func(a, b cand) int {
		if a.rva != b.rva { // the common case, decided without the strings
			return cmp.Compare(a.rva, b.rva)
		}
		return cmp.Or(cmp.Compare(a.bind, b.bind),
			cmp.Compare(len(a.name), len(b.name)), cmp.Compare(a.name, b.name), cmp.Compare(a.size, b.size))
	})
	for i := 0; i < len(funcs); {
		best := funcs[i]
		size := best.size
		j := i + 1
		for ; j < len(funcs) && funcs[j].rva == best.rva; j++ {
			size = max(size, funcs[j].size)
		}
		p.img.Functions = append(p.img.Functions, Function{
			Name: best.name, RVA: best.rva, Size: size, Found: FromSymbol, Extent: FromSymbol,
		})
		i = j
	}
	return nil
}

// dynamic reads the dynamic symbols, imports, exports and base relocations.
func (p *elfParser) dynamic() error {
	if p.f.SectionByType(elf.SHT_DYNSYM) != nil {
		ds, err := p.f.DynamicSymbols()
		if err != nil && !errors.Is(err, elf.ErrNoSymbols) {
			return elfError("ELF dynamic symbol table", err)
		}
		p.dynsyms = ds
	}
	if p.f.SectionByType(elf.SHT_DYNAMIC) != nil {
		// A broken DT_NEEDED list only costs import attribution.
		p.needed, _ = p.f.ImportedLibraries()
	}
	for i, s := range p.dynsyms {
		typ := elf.ST_TYPE(s.Info)
		bind := elf.ST_BIND(s.Info)
		if s.Section == elf.SHN_UNDEF || s.Section >= elf.SHN_LORESERVE || s.Name == "" ||
			typ == elf.STT_SECTION || typ == elf.STT_FILE || typ == elf.STT_TLS ||
			(bind != elf.STB_GLOBAL && bind != elf.STB_WEAK) {
			continue
		}
		r, ok := p.rva(s.Value, 0)
		if !ok {
			continue
		}
		p.img.Exports = append(p.img.Exports, Export{Name: s.Name, Ordinal: uint32(i + 1), RVA: r})
		if typ == elf.STT_FUNC && s.Size > 0 {
			// An exported function is a function start in its own right
			// (finish merges it with the .symtab one, adding FromExport).
			size := uint32(min(s.Size, p.end-uint64(r)))
			// Found says export only, so that the symbol table's alias
			// choice names the function (finish prefers symbol names).
			p.img.Functions = append(p.img.Functions, Function{Name: s.Name, RVA: r, Size: size, Found: FromExport, Extent: FromSymbol})
		}
	}

	kinds := elfRelocs[p.hdr.machine]
	for i, s := range p.f.Sections {
		if s.Flags&elf.SHF_ALLOC == 0 {
			continue
		}
		switch s.Type {
		case elf.SHT_RELA:
			if err := p.rela(i, s, kinds); err != nil {
				return err
			}
		case shtRELR:
			if err := p.relr(i, s, kinds); err != nil {
				return err
			}
		}
	}
	return nil
}

// sectionBytes returns the file bytes of section i, already bounds-checked
// by debug/elf and checked again here.
func (p *elfParser) sectionBytes(i int, s *elf.Section) ([]byte, error) {
	if s.Type == elf.SHT_NOBITS {
		return nil, nil
	}
	if s.Offset > uint64(len(p.data)) || s.Size > uint64(len(p.data))-s.Offset {
		return nil, &FormatError{Offset: p.shOff(i), What: fmt.Sprintf("section %q (bytes beyond end of file)", s.Name)}
	}
	return p.data[s.Offset : s.Offset+s.Size], nil
}

func (p *elfParser) rela(i int, s *elf.Section, kinds elfRelocKinds) error {
	b, err := p.sectionBytes(i, s)
	if err != nil {
		return err
	}
	if len(b)%elfRelaEntSize != 0 {
		return &FormatError{Offset: p.shOff(i), What: fmt.Sprintf("relocation section %q (size %#x not a multiple of %d)", s.Name, len(b), elfRelaEntSize)}
	}
	le := binary.LittleEndian
	for k := 0; k < len(b); k += elfRelaEntSize {
		off := le.Uint64(b[k:])
		info := le.Uint64(b[k+8:])
		addend := int64(le.Uint64(b[k+16:]))
		typ, symIdx := uint32(info), info>>32
		entOff := int64(s.Offset) + int64(k)
		switch typ {
		case kinds.relative:
			r, ok := p.rva(off, 8)
			if !ok {
				return &FormatError{Offset: entOff, What: fmt.Sprintf("relative relocation of %#x outside the image", off)}
			}
			p.img.Relocs = append(p.img.Relocs, Reloc{RVA: r, Type: RelocType(typ), Size: 8, Addend: addend})
		case kinds.jumpSlot, kinds.globDat, kinds.abs64:
			if symIdx == 0 || symIdx > uint64(len(p.dynsyms)) {
				if typ == kinds.abs64 {
					continue // absolute value, not an import
				}
				return &FormatError{Offset: entOff, What: fmt.Sprintf("relocation symbol index %d (dynamic symbols: %d)", symIdx, len(p.dynsyms))}
			}
			sym := p.dynsyms[symIdx-1]
			if typ == kinds.abs64 && sym.Section != elf.SHN_UNDEF {
				continue // against this image's own symbol: not an import
			}
			r, ok := p.rva(off, 8)
			if !ok {
				return &FormatError{Offset: entOff, What: fmt.Sprintf("import slot %#x outside the image", off)}
			}
			lib := sym.Library
			if lib == "" && len(p.needed) == 1 {
				lib = p.needed[0]
			}
			p.img.Imports = append(p.img.Imports, Import{Library: lib, Name: sym.Name, Slot: r})
		}
	}
	return nil
}

// relr decodes a packed relative relocation section (SHT_RELR): an even
// word is an address to relocate, an odd word a bitmap of the 63 words after
// the last address.
func (p *elfParser) relr(i int, s *elf.Section, kinds elfRelocKinds) error {
	b, err := p.sectionBytes(i, s)
	if err != nil {
		return err
	}
	if len(b)%8 != 0 {
		return &FormatError{Offset: p.shOff(i), What: fmt.Sprintf("RELR section %q (size %#x not a multiple of 8)", s.Name, len(b))}
	}
	le := binary.LittleEndian
	var where uint64
	add := func(addr uint64, entOff int64) error {
		r, ok := p.rva(addr, 8)
		if !ok {
			return &FormatError{Offset: entOff, What: fmt.Sprintf("RELR relocation of %#x outside the image", addr)}
		}
		var addend int64
		if v, ok := p.img.Bytes(r, 8); ok {
			addend = int64(le.Uint64(v))
		}
		p.img.Relocs = append(p.img.Relocs, Reloc{RVA: r, Type: RelocType(kinds.relative), Size: 8, Addend: addend})
		return nil
	}
	for k := 0; k < len(b); k += 8 {
		e := le.Uint64(b[k:])
		entOff := int64(s.Offset) + int64(k)
		if e&1 == 0 {
			if err := add(e, entOff); err != nil {
				return err
			}
			where = e + 8
			continue
		}
		for bit, m := uint64(0), e>>1; m != 0; bit, m = bit+1, m>>1 {
			if m&1 != 0 {
				if err := add(where+bit*8, entOff); err != nil {
					return err
				}
			}
		}
		where += 63 * 8
	}
	return nil
}

// elfNote is one entry of a note section or segment.
type elfNote struct {
	name string
	typ  uint32
	desc []byte
}

// parseNotes splits b into notes; align is 4 or 8. A truncated tail ends the
// list (the build ID is optional identity, not a reason to refuse a file).
func parseNotes(b []byte, align uint64) []elfNote {
	if align != 8 {
		align = 4
	}
	pad := func(n uint64) uint64 { return (n + align - 1) &^ (align - 1) }
	le := binary.LittleEndian
	var out []elfNote
	for uint64(len(b)) >= 12 {
		namesz, descsz, typ := uint64(le.Uint32(b)), uint64(le.Uint32(b[4:])), le.Uint32(b[8:])
		rest := uint64(len(b)) - 12
		if pad(namesz) > rest || descsz > rest-pad(namesz) {
			break
		}
		name := b[12 : 12+namesz]
		name = bytes.TrimRight(name, "\x00")
		desc := b[12+pad(namesz) : 12+pad(namesz)+descsz]
		out = append(out, elfNote{name: string(name), typ: typ, desc: desc})
		next := 12 + pad(namesz) + pad(descsz)
		if next > uint64(len(b)) {
			break
		}
		b = b[next:]
	}
	return out
}

// pickBuildID returns the GNU build ID among notes, else the Go one, else nil.
func pickBuildID(notes []elfNote) []byte {
	var goID []byte
	for _, n := range notes {
		switch {
		case n.name == "GNU" && n.typ == elfNoteGNUBuildID:
			return bytes.Clone(n.desc)
		case n.name == "Go" && n.typ == elfNoteGoBuildID && goID == nil:
			goID = bytes.Clone(n.desc)
		}
	}
	return goID
}

func (p *elfParser) buildID() {
	var notes []elfNote
	for i, s := range p.f.Sections {
		if s.Type != elf.SHT_NOTE {
			continue
		}
		if b, err := p.sectionBytes(i, s); err == nil {
			notes = append(notes, parseNotes(b, s.Addralign)...)
		}
	}
	if len(notes) == 0 {
		for _, pr := range p.f.Progs {
			if pr.Type == elf.PT_NOTE && pr.Off <= uint64(len(p.data)) && pr.Filesz <= uint64(len(p.data))-pr.Off {
				notes = append(notes, parseNotes(p.data[pr.Off:pr.Off+pr.Filesz], pr.Align)...)
			}
		}
	}
	p.img.Identity.BuildID = pickBuildID(notes)
}
