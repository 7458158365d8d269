package diff

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
)

// comparer compares matched bodies and builds report entries.
type comparer struct {
	o, n *view
	m    *matcher
	// oldData indexes the old image's data symbols by name.
	oldData map[string]int
	// oldImports indexes the old image's imports by "lib!name".
	oldImports map[string]int
}

func newComparer(o, n *view, m *matcher) *comparer {
	c := &comparer{o: o, n: n, m: m, oldData: map[string]int{}, oldImports: map[string]int{}}
	for i, s := range o.dataSyms {
		if _, dup := c.oldData[s.Name]; !dup {
			c.oldData[s.Name] = i
		}
	}
	for i, im := range o.img.Imports {
		k := importName(im)
		if _, dup := c.oldImports[k]; !dup {
			c.oldImports[k] = i
		}
	}
	return c
}

// same reports whether old sym a and new sym b mean the same target.
func (c *comparer) same(a, b *sym, oi, ni int) bool {
	if a.kind != b.kind || a.via != b.via {
		return false
	}
	switch a.kind {
	case skFunc:
		if int(a.fn) == oi || int(b.fn) == ni {
			return int(a.fn) == oi && int(b.fn) == ni && a.off == b.off
		}
		return c.m.oldNew[a.fn] == b.fn && a.off == b.off
	case skData, skSection:
		return a.name == b.name && a.off == b.off
	case skImport:
		return a.name == b.name
	case skTLS, skPage:
		return true
	case skConst:
		return sameConst(a.cst, b.cst)
	case skTable:
		return slices.Equal(a.table.Entries, b.table.Entries)
	}
	return a.rva == b.rva
}

func sameConst(a, b *constant) bool {
	if a.goType != b.goType {
		return false
	}
	n := min(len(a.data), len(b.data))
	if !bytes.Equal(a.data[:n], b.data[:n]) {
		return false
	}
	i, j := 0, 0
	for {
		for i < len(a.ptrs) && int(a.ptrs[i].off) >= n {
			i++
		}
		for j < len(b.ptrs) && int(b.ptrs[j].off) >= n {
			j++
		}
		if i == len(a.ptrs) || j == len(b.ptrs) {
			return (i == len(a.ptrs)) == (j == len(b.ptrs))
		}
		if a.ptrs[i] != b.ptrs[j] {
			return false
		}
		i++
		j++
	}
}

func reasonKindOf(k symKind) ReasonKind {
	switch k {
	case skFunc:
		return ReasonCall
	case skData:
		return ReasonGlobal
	case skConst:
		return ReasonConstant
	case skImport:
		return ReasonImport
	case skTable:
		return ReasonJumpTable
	}
	return ReasonOther
}

// describe names a symbolic target for a reason.
func (c *comparer) describe(v *view, s *sym) string {
	switch s.kind {
	case skFunc:
		name := v.funcs[s.fn].Name
		if name == "" {
			name = fmt.Sprintf("sub_%x", v.funcs[s.fn].RVA)
		}
		if s.off != 0 {
			name += "+" + strconv.FormatInt(s.off, 10)
		}
		return name
	case skData, skSection:
		if s.off != 0 {
			return s.name + "+" + strconv.FormatInt(s.off, 10)
		}
		return s.name
	case skImport:
		return s.name
	case skTLS:
		return "thread-local storage"
	case skConst:
		return quoteConst(s.cst.data)
	case skTable:
		return fmt.Sprintf("jump table of %d entries", len(s.table.Entries))
	}
	return fmt.Sprintf("%#x", s.rva)
}

// quoteConst shows a constant: as a string up to its NUL when it looks like
// text, else as hex.
func quoteConst(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	b = b[:min(len(b), 48)]
	for _, ch := range b {
		if ch < 0x20 || ch > 0x7e {
			return fmt.Sprintf("% x", b[:min(len(b), 16)])
		}
	}
	return strconv.Quote(string(b))
}

// compare compares old function oi with new function ni.
func (c *comparer) compare(oi, ni int) []Reason {
	ob, nb := &c.o.bodies[oi], &c.n.bodies[ni]
	var rs []Reason
	add := func(r Reason) {
		for _, x := range rs {
			if x == r {
				return
			}
		}
		rs = append(rs, r)
	}
	if bytes.Equal(ob.masked, nb.masked) && sameLayout(ob, nb) {
		for j := range ob.syms {
			if !c.same(&ob.syms[j], &nb.syms[j], oi, ni) {
				k := reasonKindOf(nb.syms[j].kind)
				if ob.syms[j].kind != nb.syms[j].kind {
					k = reasonKindOf(ob.syms[j].kind)
				}
				add(Reason{Kind: k, Offset: int(nb.refs[j].inst),
					Old: c.describe(c.o, &ob.syms[j]), New: c.describe(c.n, &nb.syms[j])})
			}
		}
		sortReasons(rs)
		return rs
	}
	// The instructions differ: say where, then which targets differ as sets.
	first := 0
	for first < len(ob.masked) && first < len(nb.masked) && ob.masked[first] == nb.masked[first] {
		first++
	}
	r := Reason{Kind: ReasonInstructions, Offset: first}
	if len(ob.masked) != len(nb.masked) {
		r.Old, r.New = fmt.Sprintf("%d bytes", len(ob.masked)), fmt.Sprintf("%d bytes", len(nb.masked))
	}
	add(r)
	for _, k := range []symKind{skFunc, skData, skImport, skTLS, skSection} {
		olds, news := c.targets(c.o, ob, oi, k, true), c.targets(c.n, nb, ni, k, false)
		for _, s := range olds {
			if !slices.Contains(news, s) {
				add(Reason{Kind: reasonKindOf(k), Offset: -1, Old: c.nameOf(s, true)})
			}
		}
		for _, s := range news {
			if !slices.Contains(olds, s) {
				add(Reason{Kind: reasonKindOf(k), Offset: -1, New: c.nameOf(s, false)})
			}
		}
	}
	// Constants: every constant of one side must be found in the other.
	for j := range nb.syms {
		s := &nb.syms[j]
		if s.kind != skConst {
			continue
		}
		found := false
		for k := range ob.syms {
			if ob.syms[k].kind == skConst && sameConst(ob.syms[k].cst, s.cst) {
				found = true
				break
			}
		}
		if !found {
			add(Reason{Kind: ReasonConstant, Offset: int(nb.refs[j].inst), New: quoteConst(s.cst.data)})
		}
	}
	for j := range ob.syms {
		s := &ob.syms[j]
		if s.kind != skConst {
			continue
		}
		found := false
		for k := range nb.syms {
			if nb.syms[k].kind == skConst && sameConst(s.cst, nb.syms[k].cst) {
				found = true
				break
			}
		}
		if !found {
			add(Reason{Kind: ReasonConstant, Offset: -1, Old: quoteConst(s.cst.data)})
		}
	}
	// Jump tables, in order.
	var ot, nt []*JumpTable
	for j := range ob.syms {
		if ob.syms[j].kind == skTable {
			ot = append(ot, ob.syms[j].table)
		}
	}
	for j := range nb.syms {
		if nb.syms[j].kind == skTable {
			nt = append(nt, nb.syms[j].table)
		}
	}
	for j := 0; j < max(len(ot), len(nt)); j++ {
		if j >= len(ot) || j >= len(nt) || !slices.Equal(ot[j].Entries, nt[j].Entries) {
			r := Reason{Kind: ReasonJumpTable, Offset: -1}
			if j < len(ot) {
				r.Old = fmt.Sprintf("%d entries", len(ot[j].Entries))
			}
			if j < len(nt) {
				r.New = fmt.Sprintf("%d entries", len(nt[j].Entries))
			}
			add(r)
		}
	}
	sortReasons(rs)
	return rs
}

// sameLayout: the references sit at the same places.
func sameLayout(a, b *body) bool {
	if len(a.refs) != len(b.refs) {
		return false
	}
	for j := range a.refs {
		if a.refs[j].inst != b.refs[j].inst || a.refs[j].field != b.refs[j].field || a.refs[j].pair != b.refs[j].pair {
			return false
		}
	}
	return true
}

// setKey identifies a target of kind k across images: a function by its old
// index (or new index + len(old) for new-only), data and imports by name.
type setKey struct {
	fn   int64
	name string
}

func (c *comparer) targets(v *view, b *body, self int, k symKind, old bool) []setKey {
	var out []setKey
	for j := range b.syms {
		s := &b.syms[j]
		if s.kind != k {
			continue
		}
		var key setKey
		switch k {
		case skFunc:
			if int(s.fn) == self {
				continue
			}
			id := int64(s.fn)
			if !old {
				if o := c.m.newOld[s.fn]; o >= 0 {
					id = int64(o)
				} else {
					id = int64(len(c.o.funcs)) + int64(s.fn)
				}
			}
			key.fn = id
		case skTLS:
			key.name = "tls"
		default:
			key.name = s.name
		}
		if !slices.Contains(out, key) {
			out = append(out, key)
		}
	}
	return out
}

func (c *comparer) nameOf(k setKey, old bool) string {
	if k.name != "" {
		return k.name
	}
	v, i := c.o, k.fn
	if !old && i >= int64(len(c.o.funcs)) {
		v, i = c.n, i-int64(len(c.o.funcs))
	}
	if n := v.funcs[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("sub_%x", v.funcs[i].RVA)
}

func sortReasons(rs []Reason) {
	slices.SortStableFunc(rs, func(a, b Reason) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return a.Offset - b.Offset
	})
}
