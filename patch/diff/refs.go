package diff

import (
	"fmt"

	"github.com/seed3bccf95f/hotpatch/image"
)

// references lists the outside references of new function ni, resolved
// against the old image.
func (c *comparer) references(ni int) []Reference {
	nb := &c.n.bodies[ni]
	fn := &c.n.funcs[ni]
	out := make([]Reference, 0, len(nb.refs))
	for j := range nb.refs {
		r, s := &nb.refs[j], &nb.syms[j]
		ref := Reference{Offset: r.inst, Field: r.field, PairOffset: r.pair, Form: r.form, Kind: r.kind, NewTarget: r.target, Indirect: s.via}
		switch s.kind {
		case skFunc:
			if int(s.fn) == ni {
				// An absolute pointer into the body itself: it moves with it.
				ref.Resolution = ToNewFunction
				ref.Target = Target{Name: fn.Name, RVA: fn.RVA, Offset: s.off}
				break
			}
			tf := &c.n.funcs[s.fn]
			if oi := c.m.newOld[s.fn]; oi >= 0 {
				of := &c.o.funcs[oi]
				ref.Resolution = ToFunction
				ref.Target = Target{Name: of.Name, RVA: of.RVA, Offset: s.off}
			} else {
				ref.Resolution = ToNewFunction
				ref.Target = Target{Name: tf.Name, RVA: tf.RVA, Offset: s.off}
			}
			if s.via {
				ref.Kind = RefImport
			}
		case skData:
			c.resolveData(&ref, s)
		case skImport:
			ref.Kind = RefImport
			ref.Target = Target{Name: s.name, RVA: s.rva}
			if i, ok := c.oldImports[s.name]; ok {
				ref.Resolution = ToImport
				ref.Target.RVA = c.o.img.Imports[i].Slot
			} else {
				ref.Resolution = NotHotPatchable
				ref.Why = "new import " + s.name + " (the old image does not import it)"
			}
		case skTLS:
			ref.Kind = RefTLS
			ref.Resolution = NotHotPatchable
			ref.Target = Target{Name: s.name, Offset: s.off}
			ref.Why = "thread-local storage"
		case skConst:
			ref.Kind = RefConstant
			if s.cst.goType {
				if rva, ok := c.o.findGoType(s.cst.data); ok {
					ref.Resolution = ToData
					ref.Target = Target{Name: "type:*", RVA: c.o.goTypes.RVA, Offset: int64(rva - c.o.goTypes.RVA)}
					break
				}
				ref.Resolution = NotHotPatchable
				ref.Target = Target{Name: "type:*", RVA: c.n.goTypes.RVA, Offset: int64(r.target - c.n.goTypes.RVA)}
				ref.Why = "Go type descriptor not in the old image"
				break
			}
			ref.Resolution = CarryConstant
			ref.Target = Target{RVA: r.target}
			if sec := c.n.section(r.target); sec != nil {
				ref.Target.Name = fmt.Sprintf("%s+%#x", sec.Name, r.target-sec.RVA)
			}
			ref.Content = append([]byte(nil), c.n.bytesAt(r.target, len(s.cst.data))...)
		case skTable:
			ref.Kind = RefJumpTable
			ref.Resolution = CarryConstant
			ref.Target = Target{RVA: r.target}
			t := *s.table
			t.Entries = append([]uint32(nil), t.Entries...)
			ref.Table = &t
			ref.Content = append([]byte(nil), c.n.bytesAt(r.target, len(t.Entries)*int(t.EntrySize))...)
		case skPage:
			ref.Resolution = NotHotPatchable
			ref.Target = Target{RVA: r.target}
			ref.Why = "ADRP whose low 12 bits were not found (the page of an unknown symbol)"
		case skSection:
			ref.Resolution = NotHotPatchable
			ref.Target = Target{Name: s.name, RVA: s.rva, Offset: s.off}
			ref.Why = fmt.Sprintf("no symbol names the target %s+%#x", s.name, s.off)
		default:
			ref.Resolution = NotHotPatchable
			ref.Target = Target{RVA: r.target}
			ref.Why = "the target is outside every section"
		}
		out = append(out, ref)
	}
	return out
}

// resolveData resolves a writable data reference to the old image's symbol of
// the same name and size.
func (c *comparer) resolveData(ref *Reference, s *sym) {
	ref.Target = Target{Name: s.name, RVA: s.rva, Offset: s.off}
	i, ok := c.oldData[s.name]
	if !ok {
		ref.Resolution = NotHotPatchable
		ref.Why = "new writable data " + s.name + " (not in the old image)"
		return
	}
	old := c.o.dataSyms[i]
	if old.Size != 0 && s.size != 0 && old.Size != s.size {
		ref.Resolution = NotHotPatchable
		ref.Why = fmt.Sprintf("writable data %s resized (%d bytes in the old image, %d in the new)", s.name, old.Size, s.size)
		return
	}
	if sec := c.o.section(old.RVA); sec == nil || sec.Flags&image.SectionWrite == 0 {
		ref.Resolution = NotHotPatchable
		ref.Why = "data " + s.name + " is not writable in the old image"
		return
	}
	ref.Resolution = ToData
	ref.Target.RVA = old.RVA
}

// findGoType finds the Go type descriptor with the given header.
func (v *view) findGoType(header []byte) (uint32, bool) {
	if v.goTypes.Size == 0 || len(header) == 0 {
		return 0, false
	}
	area := v.bytesAt(v.goTypes.RVA, int(v.goTypes.Size))
	for off := 0; off+len(header) <= len(area); off += 8 {
		if string(area[off:off+len(header)]) == string(header) {
			return v.goTypes.RVA + uint32(off), true
		}
	}
	return 0, false
}
