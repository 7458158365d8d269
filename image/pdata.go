package image

import (
	"encoding/binary"
	"fmt"
	"io"
)

// pdataEntry is one function range of the exception directory.
type pdataEntry struct {
	begin, end uint32 // end is 0 when the entry does not say (ARM64 flag 3)
	// unwind is the RVA of the unwind data (.xdata), 0 for ARM64 packed entries.
	unwind uint32
	// parent is, for an x64 entry whose unwind info is chained
	// (UNW_FLAG_CHAININFO), the begin address of the primary entry the chain
	// ends at: the entry is a fragment of that function, not an entry point.
	parent  uint32
	chained bool
}

// x64 UNWIND_INFO flags.
const (
	unwFlagEHandler  = 1
	unwFlagUHandler  = 2
	unwFlagChainInfo = 4
)

// x64Unwind is the fixed header of an x64 UNWIND_INFO structure.
type x64Unwind struct {
	Version, Flags, PrologSize, CountOfCodes uint8
	// FrameRegister is the register number (0 = none, 5 = RBP).
	FrameRegister uint8
	// FrameOffset is the scaled offset as stored (the offset is 16 times it).
	FrameOffset uint8
}

// decodeX64Unwind decodes the 4-byte header of an UNWIND_INFO.
func decodeX64Unwind(b []byte) x64Unwind {
	return x64Unwind{
		Version:       b[0] & 7,
		Flags:         b[0] >> 3,
		PrologSize:    b[1],
		CountOfCodes:  b[2],
		FrameRegister: b[3] & 0xf,
		FrameOffset:   b[3] >> 4,
	}
}

// maxUnwindChain bounds how many chained unwind records are followed; real
// chains have one or two links, a crafted cycle would loop forever.
const maxUnwindChain = 32

// exceptions reads the exception directory (.pdata) ourselves: saferwall/pe
// decodes AMD64 unwind headers wrongly (frame register, frame offset, large
// allocations) and reads ARM64's 8-byte entries as 12-byte AMD64 ones.
//
// Chained unwind info (x64 UNW_FLAG_CHAININFO, or an odd UnwindData RVA
// pointing at another RUNTIME_FUNCTION) describes a fragment of a function
// whose code is not contiguous with it (a cold block, or a shrink-wrapped
// region). Each RUNTIME_FUNCTION stays its own range, exactly as the
// oracle (llvm-readobj --unwind) lists it, and becomes its own Function whose
// Parent is the primary function's RVA: a fragment has no entry point of its
// own, so nothing may redirect it, but its bytes belong to the primary.
func (l *peLoader) exceptions() error {
	d := l.dirs[peDirException]
	if d.VirtualAddress == 0 || d.Size == 0 {
		return nil
	}
	tab, ok := l.at(d.VirtualAddress, uint64(d.Size))
	doff := l.dirOffset(peDirException)
	if !ok {
		return &FormatError{Offset: doff, What: "exception directory (.pdata)", Err: io.ErrUnexpectedEOF}
	}
	if l.machine == peMachineARM64 {
		return l.pdataARM64(tab, doff)
	}
	return l.pdataX64(tab, doff)
}

func (l *peLoader) pdataX64(tab []byte, doff int64) error {
	n := len(tab) / 12
	l.pdata = make([]pdataEntry, 0, n)
	for i := range n {
		e := tab[12*i : 12*i+12]
		begin, end, unw := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:]), binary.LittleEndian.Uint32(e[8:])
		off := doff + int64(12*i)
		if begin == 0 && end == 0 && unw == 0 {
			continue // zero padding at the end of the table
		}
		if end == begin {
			continue // an empty range (seen in Wine's jscript.dll): says nothing
		}
		if end < begin {
			return &FormatError{Offset: off, What: fmt.Sprintf("pdata entry %d", i), Err: fmt.Errorf("end %#x is before begin %#x", end, begin)}
		}
		p := pdataEntry{begin: begin, end: end, unwind: unw}
		parent, chained, err := l.x64Chain(unw, off, i)
		if err != nil {
			return err
		}
		if chained {
			p.unwind = unw &^ 1
			p.parent, p.chained = parent, true
		}
		l.pdata = append(l.pdata, p)
	}
	return nil
}

// x64Chain follows the chain of unwind records starting at unw and returns
// the begin address of the primary function it ends at.
func (l *peLoader) x64Chain(unw uint32, off int64, i int) (parent uint32, chained bool, err error) {
	for hop := 0; ; hop++ {
		if hop > maxUnwindChain {
			return 0, false, &FormatError{Offset: off, What: fmt.Sprintf("pdata entry %d unwind chain", i), Err: fmt.Errorf("longer than %d links", maxUnwindChain)}
		}
		var rf []byte
		if unw&1 != 0 {
			// An odd UnwindData is the RVA of another RUNTIME_FUNCTION.
			b, ok := l.at(unw&^1, 12)
			if !ok {
				return 0, false, &FormatError{Offset: off + 8, What: fmt.Sprintf("pdata entry %d indirect entry at RVA %#x", i, unw&^1), Err: io.ErrUnexpectedEOF}
			}
			rf = b
		} else {
			h, ok := l.at(unw, 4)
			if !ok {
				return 0, false, &FormatError{Offset: off + 8, What: fmt.Sprintf("pdata entry %d unwind info at RVA %#x", i, unw), Err: io.ErrUnexpectedEOF}
			}
			u := decodeX64Unwind(h)
			if u.Flags&unwFlagChainInfo == 0 {
				return parent, chained, nil
			}
			at := unw + 4 + 2*((uint32(u.CountOfCodes)+1)&^1)
			b, ok := l.at(at, 12)
			if !ok {
				return 0, false, &FormatError{Offset: off + 8, What: fmt.Sprintf("pdata entry %d chained entry at RVA %#x", i, at), Err: io.ErrUnexpectedEOF}
			}
			rf = b
		}
		parent, chained = binary.LittleEndian.Uint32(rf), true
		unw = binary.LittleEndian.Uint32(rf[8:])
	}
}

func (l *peLoader) pdataARM64(tab []byte, doff int64) error {
	n := len(tab) / 8
	l.pdata = make([]pdataEntry, 0, n)
	for i := range n {
		e := tab[8*i : 8*i+8]
		begin, w := binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
		off := doff + int64(8*i)
		if begin == 0 && w == 0 {
			continue
		}
		p := pdataEntry{begin: begin}
		switch w & 3 {
		case 0:
			// Unpacked: w is the RVA of an .xdata record whose first word
			// holds FunctionLength (bits 0-17, in 4-byte units).
			h, ok := l.at(w, 4)
			if !ok {
				return &FormatError{Offset: off + 4, What: fmt.Sprintf("pdata entry %d .xdata at RVA %#x", i, w), Err: io.ErrUnexpectedEOF}
			}
			p.unwind = w
			p.end = begin + 4*(binary.LittleEndian.Uint32(h)&0x3ffff)
		case 1, 2:
			// Packed (2: a fragment without prologue/epilogue): the length
			// is bits 2-12, in 4-byte units.
			p.end = begin + 4*((w>>2)&0x7ff)
		case 3:
			// Reserved (LLVM) / refers to another entry: no length here.
		}
		if p.end != 0 && p.end < begin {
			return &FormatError{Offset: off, What: fmt.Sprintf("pdata entry %d", i), Err: fmt.Errorf("function at %#x wraps around the address space", begin)}
		}
		if p.end == begin {
			continue // FunctionLength 0: an empty range says nothing
		}
		l.pdata = append(l.pdata, p)
	}
	return nil
}
