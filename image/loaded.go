package image

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Range is the half-open RVA range [RVA, RVA+Size).
type Range struct {
	RVA  uint32
	Size uint32
}

// VerifyOptions tunes VerifyLoaded. The zero value (or nil) compares everything.
type VerifyOptions struct {
	// Ignore lists RVA ranges left out of the code comparison: VerifyLoaded
	// takes the image's bytes there instead of the live ones. A patch layer
	// passes the entries it has already rewritten (jumps at function
	// starts), so that a module it patched still verifies as the same build.
	Ignore []Range
}

// ReadError reports that the live module's memory could not be read.
type ReadError struct {
	RVA  uint32 // start of the read that failed
	Size int
	Err  error
}

// Error names the RVA and size of the failed read.
func (e *ReadError) Error() string {
	return fmt.Sprintf("image: reading %d bytes of the live module at RVA %#x: %v", e.Size, e.RVA, e.Err)
}

// Unwrap returns the reader's error.
func (e *ReadError) Unwrap() error { return e.Err }

// Bounds on what VerifyLoaded reads from a live header, so a corrupt module
// cannot make it allocate without limit.
const (
	maxLiveHeader    = 64 << 10
	maxDebugEntries  = 64
	maxLiveNoteBytes = 64 << 10
)

// VerifyLoaded checks that a live module is exactly this image, loaded.
//
// mem reads the module's mapped memory at offsets from its load address
// (offset = RVA); base is the address it is loaded at. VerifyLoaded reads
// the headers from memory and compares the identity they carry with
// img.Identity: for PE the machine, TimeDateStamp, CheckSum, SizeOfImage
// and the CodeView GUID and age; for ELF the machine and the build ID notes
// (found through the PT_NOTE program headers and the image's note sections).
// It then reads every executable section, undoes the base relocations the
// loader applied to it (subtracting base - img.Base at each relocated word;
// for ELF the word must then equal the relocation's addend, and the file's
// bytes stand in for it), and compares the SHA-256 with
// Identity.CodeHash.
//
// A difference is an *IdentityMismatchError naming the field (for the code,
// the first differing RVA); a failed read is a *ReadError naming the RVA.
//
// Only base relocations are undone. Code that a loader rewrites otherwise
// does not verify: ELF text relocations against symbols (R_X86_64_64 to
// another module's function in a DT_TEXTREL object) and Windows dynamic
// value relocations (the load config's DVRT, applied to some system DLLs)
// show up as a CodeHash mismatch at the rewritten bytes. Pass such ranges in
// VerifyOptions.Ignore when they are known and expected.
func (img *Image) VerifyLoaded(mem io.ReaderAt, base uint64, opts *VerifyOptions) error {
	if opts == nil {
		opts = &VerifyOptions{}
	}
	var err error
	switch img.Format {
	case FormatPE:
		err = img.verifyPEHeaders(mem)
	case FormatELF:
		err = img.verifyELFHeaders(mem)
	default:
		return fmt.Errorf("image: VerifyLoaded: image format %s", img.Format)
	}
	if err != nil {
		return err
	}
	return img.verifyCode(mem, base-img.Base, opts)
}

// readLive reads n bytes at rva from mem.
func readLive(mem io.ReaderAt, rva uint32, n int) ([]byte, error) {
	buf := make([]byte, n)
	got, err := mem.ReadAt(buf, int64(rva))
	if got == n {
		return buf, nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return nil, &ReadError{RVA: rva, Size: n, Err: err}
}

func mismatch(field string, want, got any) error {
	return &IdentityMismatchError{Field: field, Want: fmt.Sprint(want), Got: fmt.Sprint(got)}
}

func hex32(v uint32) string { return fmt.Sprintf("%#x", v) }

func (img *Image) verifyPEHeaders(mem io.ReaderAt) error {
	le := binary.LittleEndian
	dos, err := readLive(mem, 0, 64)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(dos, []byte("MZ")) {
		return mismatch("Header", "PE header (MZ)", fmt.Sprintf("% x", dos[:4]))
	}
	lfanew := le.Uint32(dos[0x3c:])
	if lfanew > maxLiveHeader {
		return mismatch("Header", "PE header", fmt.Sprintf("e_lfanew %#x", lfanew))
	}
	nt, err := readLive(mem, lfanew, 24)
	if err != nil {
		return err
	}
	if !bytes.Equal(nt[:4], []byte("PE\x00\x00")) {
		return mismatch("Header", "PE signature", fmt.Sprintf("% x", nt[:4]))
	}
	id := &img.Identity
	if m := le.Uint16(nt[4:]); m != id.Machine {
		return mismatch("Machine", hex32(uint32(id.Machine)), hex32(uint32(m)))
	}
	if ts := le.Uint32(nt[8:]); ts != id.TimeDateStamp {
		return mismatch("TimeDateStamp", hex32(id.TimeDateStamp), hex32(ts))
	}
	optSize := int(le.Uint16(nt[20:]))
	const debugDir = 112 + 6*8 // PE32+ data directory 6 (debug)
	if optSize < 72 {
		return mismatch("Header", "PE32+ optional header", fmt.Sprintf("optional header of %d bytes", optSize))
	}
	opt, err := readLive(mem, lfanew+24, optSize)
	if err != nil {
		return err
	}
	if magic := le.Uint16(opt); magic != 0x20b {
		return mismatch("Header", "PE32+ optional header", fmt.Sprintf("magic %#x", magic))
	}
	if cs := le.Uint32(opt[64:]); cs != id.CheckSum {
		return mismatch("CheckSum", hex32(id.CheckSum), hex32(cs))
	}
	if sz := le.Uint32(opt[56:]); sz != id.SizeOfImage {
		return mismatch("SizeOfImage", hex32(id.SizeOfImage), hex32(sz))
	}
	var cv *CodeView
	if optSize >= debugDir+8 && le.Uint32(opt[108:]) > 6 {
		cv, err = liveCodeView(mem, le.Uint32(opt[debugDir:]), le.Uint32(opt[debugDir+4:]))
		if err != nil {
			return err
		}
	}
	if !sameCodeView(id.CodeView, cv) {
		return mismatch("CodeView", cvString(id.CodeView), cvString(cv))
	}
	return nil
}

// liveCodeView finds the RSDS record through the debug directory at
// [rva, rva+size) of a live PE module; nil when there is none.
func liveCodeView(mem io.ReaderAt, rva, size uint32) (*CodeView, error) {
	const entSize, typeCodeView = 28, 2
	n := min(size/entSize, maxDebugEntries)
	if rva == 0 || n == 0 {
		return nil, nil
	}
	dir, err := readLive(mem, rva, int(n*entSize))
	if err != nil {
		return nil, err
	}
	le := binary.LittleEndian
	for i := uint32(0); i < n; i++ {
		e := dir[i*entSize:]
		if le.Uint32(e[12:]) != typeCodeView {
			continue
		}
		dataSize, dataRVA := le.Uint32(e[16:]), le.Uint32(e[20:])
		if dataRVA == 0 || dataSize < 24 {
			continue // not mapped, or too short to be RSDS
		}
		rec, err := readLive(mem, dataRVA, 24)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(rec[:4], []byte("RSDS")) {
			continue
		}
		cv := &CodeView{Age: le.Uint32(rec[20:])}
		copy(cv.GUID[:], rec[4:20])
		return cv, nil
	}
	return nil, nil
}

func sameCodeView(a, b *CodeView) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.GUID == b.GUID && a.Age == b.Age
}

func cvString(cv *CodeView) string {
	if cv == nil {
		return "none"
	}
	return fmt.Sprintf("RSDS %x age %d", cv.GUID, cv.Age)
}

func (img *Image) verifyELFHeaders(mem io.ReaderAt) error {
	le := binary.LittleEndian
	eh, err := readLive(mem, 0, 64)
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(eh, []byte("\x7fELF\x02\x01")) {
		return mismatch("Header", "64-bit little-endian ELF header", fmt.Sprintf("% x", eh[:6]))
	}
	id := &img.Identity
	if m := le.Uint16(eh[18:]); m != id.Machine {
		return mismatch("Machine", id.Machine, m)
	}

	var notes []elfNote
	phoff, phentsize, phnum := le.Uint64(eh[32:]), uint64(le.Uint16(eh[54:])), uint64(le.Uint16(eh[56:]))
	if phentsize >= 56 && phoff < maxLiveHeader && phnum*phentsize <= maxLiveHeader {
		ph, err := readLive(mem, uint32(phoff), int(phnum*phentsize))
		if err != nil {
			return err
		}
		for i := uint64(0); i < phnum; i++ {
			p := ph[i*phentsize:]
			const ptNote = 4
			if le.Uint32(p) != ptNote {
				continue
			}
			vaddr, filesz, align := le.Uint64(p[16:]), le.Uint64(p[32:]), le.Uint64(p[48:])
			if vaddr < img.Base || vaddr-img.Base >= uint64(img.Size) || filesz > maxLiveNoteBytes {
				continue
			}
			b, err := readLive(mem, uint32(vaddr-img.Base), int(filesz))
			if err != nil {
				return err
			}
			notes = append(notes, parseNotes(b, align)...)
		}
	}
	// Linkers do not always cover every note with PT_NOTE (Go's covers only
	// its own): read the image's note sections from memory as well.
	for _, s := range img.Sections {
		if !strings.HasPrefix(s.Name, ".note") || s.Flags&SectionExec != 0 || s.Size > maxLiveNoteBytes {
			continue
		}
		b, err := readLive(mem, s.RVA, int(s.Size))
		if err != nil {
			return err
		}
		notes = append(notes, parseNotes(b, 4)...)
	}
	if got := pickBuildID(notes); !bytes.Equal(got, id.BuildID) {
		return mismatch("BuildID", idString(id.BuildID), idString(got))
	}
	return nil
}

func idString(b []byte) string {
	if b == nil {
		return "none"
	}
	return fmt.Sprintf("%x", b)
}

// verifyCode compares the executable sections in mem, relocations undone,
// with the image's CodeHash. delta is the actual minus the preferred base.
func (img *Image) verifyCode(mem io.ReaderAt, delta uint64, opts *VerifyOptions) error {
	h := sha256.New()
	type sec struct {
		s    *Section
		live []byte
	}
	var secs []sec
	for i := range img.Sections {
		s := &img.Sections[i]
		if s.Flags&SectionExec == 0 {
			continue
		}
		live, err := readLive(mem, s.RVA, int(s.Size))
		if err != nil {
			return err
		}
		img.unrelocate(s, live, delta)
		for _, r := range opts.Ignore {
			lo := max(uint64(r.RVA), uint64(s.RVA))
			hi := min(uint64(r.RVA)+uint64(r.Size), uint64(s.RVA)+uint64(s.Size))
			for a := lo; a < hi; a++ {
				live[a-uint64(s.RVA)] = sectionByte(s, uint32(a))
			}
		}
		h.Write(live)
		secs = append(secs, sec{s, live})
	}
	var sum [32]byte
	h.Sum(sum[:0])
	if sum == img.Identity.CodeHash {
		return nil
	}
	e := &IdentityMismatchError{Field: "CodeHash", Want: fmt.Sprintf("%x", img.Identity.CodeHash), Got: fmt.Sprintf("%x", sum)}
	for _, x := range secs {
		for i, b := range x.live {
			if b != sectionByte(x.s, x.s.RVA+uint32(i)) {
				e.RVA = x.s.RVA + uint32(i)
				return e
			}
		}
	}
	return e // the image's own bytes do not hash to its CodeHash
}

// sectionByte is the mapped byte of s at rva (zero past the file data).
func sectionByte(s *Section, rva uint32) byte {
	if off := rva - s.RVA; off < uint32(len(s.Data)) {
		return s.Data[off]
	}
	return 0
}

// unrelocate undoes, in live (the mapped bytes of s), what the loader's base
// relocations did when it loaded the module delta bytes away from img.Base.
func (img *Image) unrelocate(s *Section, live []byte, delta uint64) {
	if delta == 0 && img.Format == FormatPE {
		return
	}
	le := binary.LittleEndian
	i, _ := slices.BinarySearchFunc(img.Relocs, s.RVA, func(r Reloc, rva uint32) int {
		if r.RVA < rva {
			return -1
		}
		if r.RVA > rva {
			return 1
		}
		return 0
	})
	end := uint64(s.RVA) + uint64(s.Size)
	for ; i < len(img.Relocs) && uint64(img.Relocs[i].RVA) < end; i++ {
		r := img.Relocs[i]
		if uint64(r.RVA)+uint64(r.Size) > end {
			continue
		}
		off := r.RVA - s.RVA
		switch r.Size {
		case 8:
			v := le.Uint64(live[off:]) - delta
			if img.Format == FormatELF {
				if v != uint64(r.Addend) {
					le.PutUint64(live[off:], v)
					continue
				}
				for k := uint32(0); k < 8; k++ {
					live[off+k] = sectionByte(s, r.RVA+k)
				}
				continue
			}
			le.PutUint64(live[off:], v)
		case 4:
			le.PutUint32(live[off:], le.Uint32(live[off:])-uint32(delta))
		}
	}
}
