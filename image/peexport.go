package image

import (
	"fmt"
	"io"
)

// peMaxName bounds export, forwarder and PDB path strings.
const peMaxName = 4096

// exports reads the export directory. saferwall/pe allocates what
// NumberOfFunctions says before checking it against the file, so a crafted
// count drives it out of memory (which recover cannot catch); here every
// table must lie inside the file data of one section before anything is
// allocated for it, so a lie fails at once with a *FormatError.
func (l *peLoader) exports() error {
	d := l.dirs[peDirExport]
	if d.VirtualAddress == 0 || d.Size == 0 {
		return nil
	}
	dir, ok := l.at(d.VirtualAddress, 40)
	if !ok {
		return &FormatError{Offset: l.dirOffset(peDirExport), What: "export directory", Err: io.ErrUnexpectedEOF}
	}
	doff := l.dirOffset(peDirExport)
	le := func(o int) uint32 {
		return uint32(dir[o]) | uint32(dir[o+1])<<8 | uint32(dir[o+2])<<16 | uint32(dir[o+3])<<24
	}
	base, nfunc, nname := le(16), le(20), le(24)
	addrFuncs, addrNames, addrOrds := le(28), le(32), le(36)

	funcs, ok := l.at(addrFuncs, uint64(nfunc)*4)
	if !ok {
		return &FormatError{Offset: doff + 20, What: "export directory NumberOfFunctions",
			Err: fmt.Errorf("%d entries at RVA %#x are not in the file", nfunc, addrFuncs)}
	}
	names, ok1 := l.at(addrNames, uint64(nname)*4)
	ords, ok2 := l.at(addrOrds, uint64(nname)*2)
	if !ok1 || !ok2 {
		return &FormatError{Offset: doff + 24, What: "export directory NumberOfNames",
			Err: fmt.Errorf("%d names at RVA %#x/%#x are not in the file", nname, addrNames, addrOrds)}
	}

	// first[i] is the index in the name table of slot i's first name, -1 when unnamed.
	first := make([]int32, nfunc)
	for i := range first {
		first[i] = -1
	}
	more := 0
	for j := uint32(0); j < nname; j++ {
		slot := uint32(ords[2*j]) | uint32(ords[2*j+1])<<8
		if slot >= nfunc {
			continue // names a slot that does not exist: the loader cannot bind it either
		}
		if first[slot] < 0 {
			first[slot] = int32(j)
		} else {
			more++
		}
	}
	name := func(j uint32) (string, error) {
		rva := uint32(names[4*j]) | uint32(names[4*j+1])<<8 | uint32(names[4*j+2])<<16 | uint32(names[4*j+3])<<24
		s, ok := l.cstring(rva, peMaxName)
		if !ok {
			return "", &FormatError{Offset: doff + 32, What: fmt.Sprintf("export name %d", j), Err: fmt.Errorf("RVA %#x is not a string in the file", rva)}
		}
		return s, nil
	}

	n := 0
	for i := uint32(0); i < nfunc; i++ {
		if le4(funcs, i) != 0 {
			n++
		}
	}
	out := make([]Export, 0, n+more)
	for i := uint32(0); i < nfunc; i++ {
		rva := le4(funcs, i)
		if rva == 0 {
			continue
		}
		e := Export{Ordinal: base + i, RVA: rva}
		if rva >= d.VirtualAddress && uint64(rva) < uint64(d.VirtualAddress)+uint64(d.Size) {
			fw, ok := l.cstring(rva, peMaxName)
			if !ok {
				return &FormatError{Offset: doff + 28, What: fmt.Sprintf("export %d forwarder", base+i), Err: fmt.Errorf("RVA %#x is not a string in the file", rva)}
			}
			e.Forwarder, e.RVA = fw, 0
		}
		if first[i] < 0 {
			out = append(out, e)
			continue
		}
		s, err := name(uint32(first[i]))
		if err != nil {
			return err
		}
		e.Name = s
		out = append(out, e)
	}
	if more > 0 {
		// Aliases: further names of a slot, in name-table order.
		for j := uint32(0); j < nname; j++ {
			slot := uint32(ords[2*j]) | uint32(ords[2*j+1])<<8
			if slot >= nfunc || first[slot] == int32(j) || le4(funcs, slot) == 0 {
				continue
			}
			s, err := name(j)
			if err != nil {
				return err
			}
			e := Export{Name: s, Ordinal: base + slot, RVA: le4(funcs, slot)}
			if e.RVA >= d.VirtualAddress && uint64(e.RVA) < uint64(d.VirtualAddress)+uint64(d.Size) {
				e.Forwarder, _ = l.cstring(e.RVA, peMaxName)
				e.RVA = 0
			}
			out = append(out, e)
		}
	}
	l.img.Exports = out
	return nil
}

// le4 reads the i-th little-endian uint32 of b.
func le4(b []byte, i uint32) uint32 {
	o := 4 * i
	return uint32(b[o]) | uint32(b[o+1])<<8 | uint32(b[o+2])<<16 | uint32(b[o+3])<<24
}

// debug reads the CodeView RSDS record of the debug directory, the key that
// ties an image to its PDB.
func (l *peLoader) debug() error {
	d := l.dirs[peDirDebug]
	if d.VirtualAddress == 0 || d.Size == 0 {
		return nil
	}
	const entSize = 28
	tab, ok := l.at(d.VirtualAddress, uint64(d.Size))
	if !ok {
		return &FormatError{Offset: l.dirOffset(peDirDebug), What: "debug directory", Err: io.ErrUnexpectedEOF}
	}
	for i := uint32(0); i+entSize <= uint32(len(tab)); i += entSize {
		e := tab[i : i+entSize]
		if le4(e, 3) != 2 { // IMAGE_DEBUG_TYPE_CODEVIEW
			continue
		}
		size, ptr := le4(e, 4), le4(e, 6)
		if !l.has(int64(ptr), uint64(size)) {
			return &FormatError{Offset: l.dirOffset(peDirDebug) + int64(i), What: "CodeView debug record",
				Err: fmt.Errorf("%d bytes at file offset %#x: %w", size, ptr, io.ErrUnexpectedEOF)}
		}
		rec := l.data[ptr : ptr+size]
		if size < 24 || string(rec[:4]) != "RSDS" {
			continue // NB10 or another old format: no GUID
		}
		cv := &CodeView{Age: le4(rec, 5)}
		copy(cv.GUID[:], rec[4:20])
		path := rec[24:]
		for k, c := range path {
			if c == 0 {
				path = path[:k]
				break
			}
		}
		cv.Path = string(path[:min(len(path), peMaxName)])
		l.img.Identity.CodeView = cv
		return nil
	}
	return nil
}
