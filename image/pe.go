package image

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	spe "github.com/saferwall/pe"
	spelog "github.com/saferwall/pe/log"
)

// PE machine types hotpatch loads.
const (
	peMachineAMD64 = 0x8664
	peMachineARM64 = 0xaa64
)

// PE data directory indexes.
const (
	peDirExport    = 0
	peDirImport    = 1
	peDirException = 3
	peDirBaseReloc = 5
	peDirDebug     = 6
)

// Section characteristics.
const (
	peScnCntUninit = 0x00000080
	peScnMemExec   = 0x20000000
	peScnMemRead   = 0x40000000
	peScnMemWrite  = 0x80000000
)

// peSectionHeaderSize is the size of one IMAGE_SECTION_HEADER.
const peSectionHeaderSize = 40

// peLoader holds the state of one parsePE call.
type peLoader struct {
	data    []byte
	img     *Image
	lfanew  int64
	machine uint16
	// secTable is the file offset of the section table.
	secTable int64
	// dirs are the data directories (absent ones zero).
	dirs [16]spe.DataDirectory
	// sizeOfHeaders is the mapped size of the headers (RVA 0 up to it reads the file).
	sizeOfHeaders uint32
	// strtab is the COFF string table, starting with its 4-byte size field.
	strtab []byte
	// symOff and nsym locate the COFF symbol table.
	symOff, nsym uint32
	// pdata is what the exception directory says, before functions are built.
	pdata []pdataEntry
	// log collects what saferwall would have printed.
	log *peLog
}

// parsePE loads a PE32+ image for AMD64 or ARM64.
//
// What it records, and the choices it makes:
//   - Headers, imports and base relocations come from saferwall/pe; the
//     section table, COFF symbols, exports, the debug directory and the
//     exception directory (.pdata/.xdata) are read here, because saferwall
//     gets them wrong or can be driven out of memory by them (see DESIGN.md).
//   - Sections keep file order (COFF symbols refer to them by index); long
//     names ("/4") are resolved through the COFF string table.
//   - Symbols are the COFF symbols defined in a section; section-definition
//     and file records are left out. Kind is SymbolFunc for type 0x20
//     (DTYPE_FUNCTION), SymbolData in a non-executable section, SymbolOther
//     for the rest (labels in code). Global is true for EXTERNAL and
//     WEAK_EXTERNAL storage.
//   - Relocs are the base relocations except IMAGE_REL_BASED_ABSOLUTE, which
//     is block padding and names no location: DIR64 has Size 8, HIGHLOW 4,
//     HIGH/LOW 2, other types 0.
//   - Exports: one per non-empty slot of the address table, named by its
//     first name; a slot with several names gives one Export per name.
//   - Functions: see pdata.go (.pdata) and pefuncs.go (completion from
//     symbols, exports, the entry point and direct-call targets).
func parsePE(data []byte) (img *Image, err error) {
	defer func() {
		// Last resort: every read below is bounds-checked, and saferwall's
		// directory parsers recover on their own. An out-of-memory cannot be
		// recovered, which is why nothing unbounded is handed to saferwall.
		if r := recover(); r != nil {
			img, err = nil, &FormatError{Offset: -1, What: "PE image", Err: fmt.Errorf("parser panic: %v", r)}
		}
	}()
	l := &peLoader{data: data, img: &Image{Format: FormatPE}}
	steps := []func() error{
		l.headers,
		l.sections,
		l.saferwall,
		l.symbols,
		l.exports,
		l.debug,
		l.exceptions,
		l.functions,
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return l.img, nil
}

func (l *peLoader) u16(off int64) uint16 { return binary.LittleEndian.Uint16(l.data[off:]) }
func (l *peLoader) u32(off int64) uint32 { return binary.LittleEndian.Uint32(l.data[off:]) }

// has reports whether the file holds n bytes at off.
func (l *peLoader) has(off int64, n uint64) bool {
	return off >= 0 && uint64(off) <= uint64(len(l.data)) && n <= uint64(len(l.data))-uint64(off)
}

// headers checks the DOS and NT headers before saferwall sees them, so that
// a foreign machine or a PE32 image is an UnsupportedError, not a parse error.
func (l *peLoader) headers() error {
	if !l.has(0, 0x40) {
		return &FormatError{Offset: 0, What: "DOS header", Err: io.ErrUnexpectedEOF}
	}
	l.lfanew = int64(l.u32(0x3c))
	if !l.has(l.lfanew, 24+2) {
		return &FormatError{Offset: 0x3c, What: "e_lfanew (NT headers offset)", Err: io.ErrUnexpectedEOF}
	}
	if string(l.data[l.lfanew:l.lfanew+4]) != "PE\x00\x00" {
		return &FormatError{Offset: l.lfanew, What: "PE signature"}
	}
	fh := l.lfanew + 4
	l.machine = l.u16(fh)
	switch l.machine {
	case peMachineAMD64:
		l.img.Arch = AMD64
	case peMachineARM64:
		l.img.Arch = ARM64
	default:
		return &UnsupportedError{What: fmt.Sprintf("PE machine %#x (%s)", l.machine, peMachineName(l.machine))}
	}
	opt := fh + 20
	switch magic := l.u16(opt); magic {
	case 0x20b:
	case 0x10b:
		return &UnsupportedError{What: "PE32 (32-bit) image"}
	default:
		return &FormatError{Offset: opt, What: "optional header magic", Err: fmt.Errorf("%#x is neither PE32 nor PE32+", magic)}
	}
	sizeOpt := int64(l.u16(fh + 16))
	const minOpt = 112 // PE32+ optional header up to NumberOfRvaAndSizes
	if sizeOpt < minOpt || !l.has(opt, uint64(sizeOpt)) {
		return &FormatError{Offset: fh + 16, What: "SizeOfOptionalHeader", Err: fmt.Errorf("%d bytes", sizeOpt)}
	}
	l.img.Identity.Machine = l.machine
	l.img.Identity.TimeDateStamp = l.u32(fh + 4)
	l.symOff, l.nsym = l.u32(fh+8), l.u32(fh+12)
	l.img.Base = binary.LittleEndian.Uint64(l.data[opt+24:])
	l.img.Entry = l.u32(opt + 16)
	l.img.Size = l.u32(opt + 56)
	l.sizeOfHeaders = l.u32(opt + 60)
	l.img.Identity.CheckSum = l.u32(opt + 64)
	l.img.Identity.SizeOfImage = l.img.Size
	ndirs := min(int64(l.u32(opt+108)), 16, (sizeOpt-minOpt)/8)
	for i := range ndirs {
		off := opt + minOpt + 8*i
		l.dirs[i] = spe.DataDirectory{VirtualAddress: l.u32(off), Size: l.u32(off + 4)}
	}
	l.secTable = opt + sizeOpt
	return nil
}

func peMachineName(m uint16) string {
	switch m {
	case 0x14c:
		return "i386"
	case 0x1c0, 0x1c4:
		return "ARM"
	case 0x200:
		return "IA64"
	case 0xa641:
		return "ARM64EC"
	case 0xa64e:
		return "ARM64X"
	}
	return "unknown"
}

// sections reads the section table in file order.
func (l *peLoader) sections() error {
	n := int64(l.u16(l.lfanew + 6))
	if !l.has(l.secTable, uint64(n)*peSectionHeaderSize) {
		return &FormatError{Offset: l.secTable, What: fmt.Sprintf("section table (%d sections)", n), Err: io.ErrUnexpectedEOF}
	}
	// The string table is needed for long section names ("/123").
	if err := l.loadStringTable(); err != nil {
		return err
	}
	l.img.Sections = make([]Section, 0, n)
	for i := range n {
		h := l.secTable + i*peSectionHeaderSize
		raw := l.data[h : h+8]
		name := strings.TrimRight(string(raw), "\x00")
		if strings.HasPrefix(name, "/") {
			if off, err := strconv.ParseUint(name[1:], 10, 32); err == nil {
				if s, ok := l.coffString(uint32(off)); ok {
					name = s
				}
			}
		}
		vsize, rva := l.u32(h+8), l.u32(h+12)
		rawSize, rawPtr := l.u32(h+16), l.u32(h+20)
		ch := l.u32(h + 36)
		size := vsize
		if size == 0 {
			size = rawSize // some linkers leave VirtualSize zero
		}
		var flags SectionFlags
		if ch&peScnMemRead != 0 {
			flags |= SectionRead
		}
		if ch&peScnMemWrite != 0 {
			flags |= SectionWrite
		}
		if ch&peScnMemExec != 0 {
			flags |= SectionExec
		}
		fileSize := min(rawSize, size)
		if rawPtr == 0 {
			fileSize = 0
		}
		if ch&peScnCntUninit != 0 || fileSize == 0 {
			flags |= SectionUninit
			if ch&peScnCntUninit != 0 {
				fileSize = 0
			}
		}
		if uint64(rva)+uint64(size) > 1<<32 {
			return &FormatError{Offset: h + 8, What: fmt.Sprintf("section %d (%s) address range", i+1, name)}
		}
		var data []byte
		if fileSize > 0 {
			if !l.has(int64(rawPtr), uint64(fileSize)) {
				return &FormatError{Offset: h + 16, What: fmt.Sprintf("section %d (%s) raw data", i+1, name),
					Err: fmt.Errorf("%#x bytes at %#x past the end of the file (%#x bytes): %w", fileSize, rawPtr, len(l.data), io.ErrUnexpectedEOF)}
			}
			data = l.data[rawPtr : rawPtr+fileSize : rawPtr+fileSize]
		}
		l.img.Sections = append(l.img.Sections, Section{
			Name: name, RVA: rva, Size: size, Flags: flags, Offset: rawPtr, Data: data,
		})
	}
	return nil
}

// peLog records the warnings and errors saferwall reports, which it would
// otherwise print: a directory it failed to parse must become an error here.
type peLog struct {
	mu   sync.Mutex
	msgs []string
}

// Log implements saferwall's log.Logger.
func (g *peLog) Log(level spelog.Level, keyvals ...any) error {
	if level < spelog.LevelWarn {
		return nil
	}
	var b strings.Builder
	for i := 1; i < len(keyvals); i += 2 {
		fmt.Fprint(&b, keyvals[i])
	}
	g.mu.Lock()
	g.msgs = append(g.msgs, b.String())
	g.mu.Unlock()
	return nil
}

// failed returns saferwall's message about directory dir, if it failed.
func (g *peLog) failed(dir string) (string, bool) {
	for _, m := range g.msgs {
		if strings.Contains(m, "data directory "+dir+",") || strings.Contains(m, "data directory "+dir+" ") {
			return m, true
		}
	}
	return "", false
}

// saferwall lets saferwall/pe validate the headers and parse the import and
// base relocation directories. Everything else it could parse is switched
// off: either read here, or not needed.
func (l *peLoader) saferwall() error {
	l.log = &peLog{}
	opts := &spe.Options{
		Fast: true,
		// The COFF symbol table is read by symbols(): saferwall truncates
		// names to 80 bytes. Keep it from allocating for it.
		MaxCOFFSymbolsCount:       1,
		Logger:                    l.log,
		OmitExportDirectory:       true,
		OmitExceptionDirectory:    true,
		OmitResourceDirectory:     true,
		OmitSecurityDirectory:     true,
		OmitDebugDirectory:        true,
		OmitArchitectureDirectory: true,
		OmitGlobalPtrDirectory:    true,
		OmitTLSDirectory:          true,
		OmitLoadConfigDirectory:   true,
		OmitBoundImportDirectory:  true,
		OmitIATDirectory:          true,
		OmitDelayImportDirectory:  true,
		OmitCLRHeaderDirectory:    true,
		OmitCLRMetadata:           true,
	}
	f, err := spe.NewBytes(l.data, opts)
	if err != nil {
		return &FormatError{Offset: 0, What: "PE image", Err: err}
	}
	if err := f.ParseDOSHeader(); err != nil {
		return &FormatError{Offset: 0, What: "DOS header", Err: err}
	}
	if err := f.ParseNTHeader(); err != nil {
		return &FormatError{Offset: l.lfanew, What: "NT headers", Err: err}
	}
	if err := f.ParseSectionHeader(); err != nil {
		return &FormatError{Offset: l.secTable, What: "section table", Err: err}
	}
	if err := f.ParseDataDirectories(); err != nil {
		return &FormatError{Offset: l.lfanew, What: "data directories", Err: err}
	}
	if m, bad := l.log.failed("Import"); bad && l.dirs[peDirImport].Size != 0 {
		return &FormatError{Offset: l.dirOffset(peDirImport), What: "import directory", Err: errors.New(m)}
	}
	if m, bad := l.log.failed("Relocation"); bad {
		return &FormatError{Offset: l.dirOffset(peDirBaseReloc), What: "base relocation directory", Err: errors.New(m)}
	}
	for _, lib := range f.Imports {
		for _, fn := range lib.Functions {
			imp := Import{Library: lib.Name, Slot: fn.ThunkRVA}
			if fn.ByOrdinal {
				imp.Ordinal = uint16(fn.Ordinal)
			} else {
				imp.Name = fn.Name
			}
			l.img.Imports = append(l.img.Imports, imp)
		}
	}
	for _, blk := range f.Relocations {
		for _, e := range blk.Entries {
			var size uint8
			switch e.Type {
			case spe.ImageRelBasedAbsolute:
				continue
			case spe.ImageRelBasedDir64:
				size = 8
			case spe.ImageRelBasedHighLow:
				size = 4
			case spe.ImageRelBasedHigh, spe.ImageRelBasedLow:
				size = 2
			}
			l.img.Relocs = append(l.img.Relocs, Reloc{
				RVA: blk.Data.VirtualAddress + uint32(e.Offset), Type: RelocType(e.Type), Size: size,
			})
		}
	}
	return nil
}

// dirOffset is the file offset of data directory i, or of its entry in the
// optional header when the directory itself is not in the file.
func (l *peLoader) dirOffset(i int) int64 {
	if off, ok := l.offset(l.dirs[i].VirtualAddress, 1); ok {
		return off
	}
	return l.lfanew + 4 + 20 + 112 + 8*int64(i)
}

// span returns the file bytes mapped from rva to the end of its section's
// file data (or of the headers), with the file offset of its first byte.
func (l *peLoader) span(rva uint32) ([]byte, int64) {
	if rva < l.sizeOfHeaders && int64(rva) < int64(len(l.data)) {
		end := min(int64(l.sizeOfHeaders), int64(len(l.data)))
		return l.data[rva:end:end], int64(rva)
	}
	for i := range l.img.Sections {
		s := &l.img.Sections[i]
		if rva >= s.RVA && uint64(rva-s.RVA) < uint64(len(s.Data)) {
			return s.Data[rva-s.RVA:], int64(s.Offset) + int64(rva-s.RVA)
		}
	}
	return nil, -1
}

// offset maps n bytes at rva to a file offset; false when they are not all
// backed by file data of one section (or the headers).
func (l *peLoader) offset(rva uint32, n uint64) (int64, bool) {
	b, off := l.span(rva)
	if off < 0 || uint64(len(b)) < n {
		return 0, false
	}
	return off, true
}

// at returns the n file bytes mapped at rva.
func (l *peLoader) at(rva uint32, n uint64) ([]byte, bool) {
	b, off := l.span(rva)
	if off < 0 || uint64(len(b)) < n {
		return nil, false
	}
	return b[:n:n], true
}

// cstring reads a NUL-terminated string at rva of at most max bytes, which
// must end inside the same section.
func (l *peLoader) cstring(rva uint32, max int) (string, bool) {
	b, _ := l.span(rva)
	if len(b) > max {
		b = b[:max]
	}
	for i, c := range b {
		if c == 0 {
			return string(b[:i]), true
		}
	}
	return "", false
}
