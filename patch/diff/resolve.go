package diff

import (
	"encoding/binary"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/seed3bccf95f/hotpatch/image"
)

// symKind is the kind of a symbolic target.
type symKind uint8

const (
	skUnknown symKind = iota // an address in no section: compared by value
	skFunc                   // a function + offset (by match identity)
	skData                   // writable data: symbol + offset
	skConst                  // read-only data: by content
	skImport                 // an import slot: library!name
	skTLS                    // thread-local storage access
	skTable                  // a jump table: entries as offsets into the function
	skSection                // code or data with no symbol: section + offset
	skPage                   // an ADRP whose low 12 bits were not found: some page
)

// sym is the layout-independent meaning of one reference.
type sym struct {
	kind symKind
	fn   int32 // skFunc: function index in its image
	off  int64 // offset from the function / symbol / section start
	rva  uint32
	size uint32 // skData: the symbol's size (0 unknown)
	name string // skData symbol, skImport "lib!name", skSection name
	// via is set when the reference goes through a pointer the image holds
	// (a GOT slot, a PLT stub): the pointer's own target.
	via   bool
	cst   *constant
	table *JumpTable
}

// constant is read-only data compared by content. Pointers inside it (under
// a base relocation, or any address-valued word in an image without them) are
// compared by what they point to.
type constant struct {
	data []byte   // content with pointer words zeroed
	ptrs []ptrTok // pointers, by offset
	// header: a Go type descriptor compared by its layout-independent header
	// only (size, ptrdata, hash, flags, kind).
	goType bool
}

type ptrTok struct {
	off uint32
	tok string
}

const maxConst = 256

// resolveAll resolves every reference of every body.
func (v *view) resolveAll() {
	// Bounds: every data address the code refers to, plus symbol starts.
	for i := range v.bodies {
		for _, r := range v.bodies[i].refs {
			if v.funcIndex(r.target) < 0 {
				v.bounds = append(v.bounds, r.target)
			}
		}
	}
	sortUnique(&v.bounds)
	for i := range v.bodies {
		b := &v.bodies[i]
		b.syms = make([]sym, len(b.refs))
		for j := range b.refs {
			b.syms[j] = v.resolve(i, &b.refs[j])
		}
	}
}

func sortUnique(p *[]uint32) {
	s := *p
	slices.Sort(s)
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	*p = out
}

// resolve gives the symbolic target of reference r of function fi.
func (v *view) resolve(fi int, r *rawRef) sym {
	if r.kind == RefTLS {
		return sym{kind: skTLS}
	}
	if r.pageOnly {
		return sym{kind: skPage, rva: r.target}
	}
	fn := &v.funcs[fi]
	if r.target >= fn.RVA && r.target < fn.End() {
		return sym{kind: skFunc, fn: int32(fi), off: int64(r.target - fn.RVA)}
	}
	if r.table != nil {
		if t := v.readTable(fn, r.target, r.table); t != nil {
			return sym{kind: skTable, rva: r.target, table: t}
		}
	}
	return v.classify(r.target, 1)
}

// classify resolves an address; depth limits following pointers.
func (v *view) classify(t uint32, depth int) sym {
	if fi := v.funcIndex(t); fi >= 0 {
		return sym{kind: skFunc, fn: int32(fi), off: int64(t - v.funcs[fi].RVA), rva: v.funcs[fi].RVA}
	}
	if ii, ok := v.slots[t]; ok {
		return sym{kind: skImport, name: importName(v.img.Imports[ii]), rva: t}
	}
	sec := v.section(t)
	if sec == nil {
		return sym{kind: skUnknown, rva: t}
	}
	if sec.Flags&image.SectionExec != 0 {
		if depth > 0 {
			if slot, ok := v.stubSlot(t); ok {
				s := v.classify(slot, 0)
				if s.kind == skImport {
					s.via = true
					return s
				}
				if p, ok := v.pointerAt(slot, 8); ok {
					s = v.classify(p, 0)
					s.via = true
					return s
				}
			}
		}
		if s, ok := v.codeSymbol(t, sec); ok {
			return sym{kind: skSection, name: s.Name, off: int64(t - s.RVA), rva: s.RVA}
		}
		// No symbol: name it from the function before it (by match
		// identity, so it survives stripping and moves).
		fs := v.funcs
		if i := sort.Search(len(fs), func(i int) bool { return fs[i].RVA > t }) - 1; i >= 0 && sec.Contains(fs[i].RVA) {
			return sym{kind: skFunc, fn: int32(i), off: int64(t - fs[i].RVA), rva: fs[i].RVA}
		}
		return sym{kind: skSection, name: sec.Name, off: int64(t - sec.RVA), rva: sec.RVA}
	}
	if isTLSSection(sec.Name) {
		return sym{kind: skTLS, name: sec.Name, off: int64(t - sec.RVA)}
	}
	if depth > 0 && v.img.Format == image.FormatELF && strings.HasPrefix(sec.Name, ".got") {
		if p, ok := v.pointerAt(t, 8); ok {
			s := v.classify(p, 0)
			s.via = true
			return s
		}
	}
	if sec.Flags&image.SectionWrite != 0 {
		if s, ok := v.dataSymbol(t, sec); ok {
			return sym{kind: skData, name: s.Name, off: int64(t - s.RVA), rva: s.RVA, size: s.Size}
		}
		return sym{kind: skSection, name: sec.Name, off: int64(t - sec.RVA), rva: sec.RVA}
	}
	return sym{kind: skConst, rva: t, cst: v.constantAt(t, depth)}
}

func isTLSSection(name string) bool {
	return name == ".tls" || name == ".tdata" || name == ".tbss" || strings.HasPrefix(name, ".tls$")
}

// constantAt reads the read-only constant at t: up to the next symbol or
// referenced address, the end of the section's data, or maxConst bytes.
func (v *view) constantAt(t uint32, depth int) *constant {
	goType := v.goTypes.Size > 0 && t >= v.goTypes.RVA && t-v.goTypes.RVA < v.goTypes.Size
	end := min(v.nextBound(t), t+maxConst)
	if goType {
		// A Go type descriptor: its header (size, ptrdata, hash, flags,
		// kind) names it; what follows holds layout-dependent offsets.
		end = t + 24
	}
	if end < t { // wrapped
		end = ^uint32(0)
	}
	if depth <= 0 {
		end = min(end, t+16)
	}
	if r, ok := v.reloc(t); ok && r.Size > 0 {
		// A pointer cell (mingw's .refptr.X, a GOT-like slot): just the
		// pointer, not what the linker put after it.
		end = min(end, t+uint32(r.Size))
	}
	data := v.bytesAt(t, int(end-t))
	c := &constant{data: data, goType: goType}
	if len(data) < 4 {
		return c
	}
	// Pointers inside the constant.
	copied := false
	zero := func(off, n int) {
		if !copied {
			c.data = append([]byte(nil), c.data...)
			copied = true
		}
		clear(c.data[off : off+n])
	}
	if !v.plainPointers {
		for _, r := range v.relocsIn(t, t+uint32(len(data))) {
			off := int(r.RVA - t)
			n := int(r.Size)
			if n == 0 || off+n > len(data) {
				continue
			}
			zero(off, n)
			if depth <= 0 {
				continue
			}
			tok := "?"
			if p, ok := v.pointerAt(r.RVA, n); ok {
				tok = v.token(v.classify(p, 0))
			}
			c.ptrs = append(c.ptrs, ptrTok{off: uint32(off), tok: tok})
		}
		return c
	}
	for off := int((8 - t%8) % 8); off+8 <= len(data); off += 8 {
		val := binary.LittleEndian.Uint64(data[off:])
		if val < v.img.Base || val-v.img.Base >= uint64(v.img.Size) {
			continue
		}
		p := uint32(val - v.img.Base)
		if v.section(p) == nil {
			continue
		}
		// Without relocations a word is only taken as a pointer when it
		// names a function or a data symbol exactly: a number that happens
		// to fall inside the image would otherwise get a layout-dependent
		// meaning.
		if !v.symbolStart(p) {
			continue
		}
		zero(off, 8)
		if depth > 0 {
			c.ptrs = append(c.ptrs, ptrTok{off: uint32(off), tok: v.token(v.classify(p, 0))})
		}
	}
	return c
}

// symbolStart reports whether rva is where a function or a data symbol
// starts, or, in a Go image, lies in read-only data (Go's string headers
// point into its string area).
func (v *view) symbolStart(rva uint32) bool {
	if fi := v.funcIndex(rva); fi >= 0 {
		return v.funcs[fi].RVA == rva
	}
	if sec := v.section(rva); v.goTypes.Size > 0 && sec != nil && sec.Flags&(image.SectionWrite|image.SectionExec) == 0 {
		return true // Go only: a number in C data would get a layout-dependent meaning
	}
	ds := v.dataSyms
	i := sort.Search(len(ds), func(i int) bool { return ds[i].RVA >= rva })
	return i < len(ds) && ds[i].RVA == rva
}

// token is a stable text for a symbolic target inside a constant, where no
// match identity is at hand: functions by name.
func (v *view) token(s sym) string {
	switch s.kind {
	case skFunc:
		return "f:" + v.funcs[s.fn].Name + "+" + itoa(s.off)
	case skData:
		return "d:" + s.name + "+" + itoa(s.off)
	case skImport:
		return "i:" + s.name
	case skTLS:
		return "tls"
	case skSection:
		return "s:" + s.name + "+" + itoa(s.off)
	case skConst:
		n := min(len(s.cst.data), 16)
		return "c:" + string(s.cst.data[:n])
	}
	return "?"
}

func itoa(x int64) string { return strconv.FormatInt(x, 10) }

// stubSlot decodes a PLT/import stub at t (x86-64 `jmp [rip+slot]`, after an
// optional endbr64/bnd prefix; ARM64 `adrp x16; ldr x17, [x16, #lo]; ...; br
// x17`) and returns the slot it jumps through.
func (v *view) stubSlot(t uint32) (uint32, bool) {
	b := v.bytesAt(t, 16)
	if len(b) < 8 {
		return 0, false
	}
	if v.img.Arch == image.ARM64 {
		w0 := binary.LittleEndian.Uint32(b)
		w1 := binary.LittleEndian.Uint32(b[4:])
		if w0&0x9F000000 != 0x90000000 || w1&0xFFC00000 != 0xF9400000 {
			return 0, false
		}
		rd := w0 & 31
		if (w1>>5)&31 != rd {
			return 0, false
		}
		imm := int64(((w0>>29)&3)|((w0>>5)&0x7FFFF)<<2) << 12
		imm = imm << 31 >> 31 // sign-extend 33 bits
		page := int64(t) &^ 0xFFF
		slot := page + imm + int64((w1>>10)&0xFFF)*8
		if slot < 0 || slot > 1<<32-1 {
			return 0, false
		}
		return uint32(slot), true
	}
	i := 0
	if b[0] == 0xF3 && b[1] == 0x0F && b[2] == 0x1E && b[3] == 0xFA { // endbr64
		i = 4
	}
	if b[i] == 0xF2 { // bnd
		i++
	}
	if i+6 <= len(b) && b[i] == 0xFF && b[i+1] == 0x25 {
		disp := int32(binary.LittleEndian.Uint32(b[i+2:]))
		slot := int64(t) + int64(i+6) + int64(disp)
		if slot < 0 || slot > 1<<32-1 {
			return 0, false
		}
		return uint32(slot), true
	}
	return 0, false
}

// readTable reads the jump table at t used by fn, or nil when no entry
// reaches into fn.
func (v *view) readTable(fn *image.Function, t uint32, spec *tableSpec) *JumpTable {
	size := int(spec.size)
	limit := 1024
	if spec.count > 0 {
		limit = spec.count
	}
	bound := v.nextBound(t)
	jt := &JumpTable{EntrySize: spec.size, Base: spec.base, LabelOffset: spec.label}
	for i := 0; i < limit; i++ {
		at := t + uint32(i*size)
		if at+uint32(size) > bound || at < t {
			break
		}
		var target int64
		if spec.base == "absolute" {
			p, ok := v.pointerAt(at, size)
			if !ok {
				break
			}
			target = int64(p)
		} else {
			b := v.bytesAt(at, size)
			if len(b) < size {
				break
			}
			var e int64
			switch size {
			case 1:
				e = int64(b[0])
				if spec.signed {
					e = int64(int8(b[0]))
				}
			case 2:
				e = int64(binary.LittleEndian.Uint16(b))
				if spec.signed {
					e = int64(int16(binary.LittleEndian.Uint16(b)))
				}
			case 4:
				e = int64(int32(binary.LittleEndian.Uint32(b)))
				if !spec.signed {
					e = int64(binary.LittleEndian.Uint32(b))
				}
			default:
				e = int64(binary.LittleEndian.Uint64(b))
			}
			if spec.scale > 1 {
				e *= int64(spec.scale)
			}
			if spec.base == "label" {
				target = int64(fn.RVA) + int64(spec.label) + e
			} else {
				target = int64(t) + e
			}
		}
		if target < int64(fn.RVA) || target >= int64(fn.End()) {
			break
		}
		jt.Entries = append(jt.Entries, uint32(target-int64(fn.RVA)))
	}
	if len(jt.Entries) == 0 {
		return nil
	}
	return jt
}
