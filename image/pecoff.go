package image

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// COFF symbol table constants.
const (
	coffSymSize        = 18
	coffTypeFunction   = 0x20 // DTYPE_FUNCTION << 4: "a function returning the base type"
	coffClassExternal  = 2
	coffClassStatic    = 3
	coffClassLabel     = 6
	coffClassWeakExt   = 105
	coffMaxSymbolBytes = 1 << 30 // more than any real table; bounds a crafted count
)

// loadStringTable locates the COFF symbol and string tables. saferwall/pe
// reads strings of at most 80 bytes and steps over the table by what it
// read, so a longer name (common for Go and C++) is cut and every later
// name is lost or misplaced; this reads the table as the spec defines it.
func (l *peLoader) loadStringTable() error {
	if l.symOff == 0 || l.nsym == 0 {
		l.nsym = 0
		return nil
	}
	fh := l.lfanew + 4
	n := uint64(l.nsym) * coffSymSize
	if n > coffMaxSymbolBytes || !l.has(int64(l.symOff), n) {
		return &FormatError{Offset: fh + 8, What: fmt.Sprintf("COFF symbol table (%d symbols at %#x)", l.nsym, l.symOff), Err: io.ErrUnexpectedEOF}
	}
	st := int64(l.symOff) + int64(n)
	if !l.has(st, 4) {
		return nil // no string table: only short names
	}
	size := l.u32(st)
	if size < 4 {
		return nil
	}
	if !l.has(st, uint64(size)) {
		return &FormatError{Offset: st, What: "COFF string table", Err: fmt.Errorf("size %#x past the end of the file: %w", size, io.ErrUnexpectedEOF)}
	}
	l.strtab = l.data[st : st+int64(size) : st+int64(size)]
	return nil
}

// coffString returns the NUL-terminated string at offset off of the string table.
func (l *peLoader) coffString(off uint32) (string, bool) {
	if off < 4 || uint64(off) >= uint64(len(l.strtab)) {
		return "", false
	}
	b := l.strtab[off:]
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b), true
}

// symbols reads the COFF symbol table: every symbol defined in a section.
func (l *peLoader) symbols() error {
	tab := l.data[l.symOff : uint64(l.symOff)+uint64(l.nsym)*coffSymSize]
	for i := uint32(0); i < l.nsym; i++ {
		r := tab[i*coffSymSize : (i+1)*coffSymSize]
		naux := uint32(r[17])
		class := r[16]
		typ := binary.LittleEndian.Uint16(r[14:])
		secnum := int16(binary.LittleEndian.Uint16(r[12:]))
		value := binary.LittleEndian.Uint32(r[8:])
		i += naux
		if secnum < 1 || int(secnum) > len(l.img.Sections) {
			continue // undefined, absolute or debug
		}
		switch class {
		case coffClassExternal, coffClassLabel, coffClassWeakExt:
		case coffClassStatic:
			if naux > 0 && typ&0x30 != coffTypeFunction {
				continue // a section definition (aux format 5)
			}
		default:
			continue // file names, .bf/.ef records, ...
		}
		var name string
		if binary.LittleEndian.Uint32(r) == 0 {
			s, ok := l.coffString(binary.LittleEndian.Uint32(r[4:]))
			if !ok {
				return &FormatError{Offset: int64(l.symOff) + int64(i-naux)*coffSymSize, What: fmt.Sprintf("COFF symbol %d name", i-naux),
					Err: fmt.Errorf("string table offset %#x outside the table (%d bytes)", binary.LittleEndian.Uint32(r[4:]), len(l.strtab))}
			}
			name = s
		} else {
			name = string(r[:8])
			if j := bytes.IndexByte(r[:8], 0); j >= 0 {
				name = string(r[:j])
			}
		}
		sec := &l.img.Sections[secnum-1]
		if value > sec.Size {
			continue // outside its section: nothing to name
		}
		kind := SymbolData
		switch {
		case typ&0x30 == coffTypeFunction:
			kind = SymbolFunc
		case sec.Flags&SectionExec != 0:
			kind = SymbolOther
		}
		l.img.Symbols = append(l.img.Symbols, Symbol{
			Name:   name,
			RVA:    sec.RVA + value,
			Kind:   kind,
			Global: class == coffClassExternal || class == coffClassWeakExt,
		})
	}
	return nil
}
