package diff

import (
	"cmp"
	"runtime"
	"slices"
	"sync"

	"github.com/seed3bccf95f/hotpatch/image"
)

// Options tunes Compare. The zero value (or nil) is the default.
type Options struct {
	// MaxRounds bounds the rounds of body-hash and call-graph matching of
	// unnamed functions (default 8).
	MaxRounds int
	// NoReferences leaves Function.References empty (cheaper when only the
	// classification is wanted).
	NoReferences bool
}

// Compare diffs old and new, two builds of one module: it matches their
// functions, classifies each, and resolves the references of every Changed
// function's new body against old.
//
// The images must have the same format and architecture (*FormatMismatchError,
// *ArchMismatchError otherwise). Malformed images are refused by package
// image before they get here; Compare itself never panics on what image
// accepts and is deterministic: the same inputs give the same Report.
func Compare(old, new *image.Image, opts *Options) (*Report, error) {
	if old == nil || new == nil {
		return nil, ErrNilImage
	}
	if old.Format != new.Format {
		return nil, &FormatMismatchError{Old: old.Format, New: new.Format}
	}
	if old.Arch != new.Arch {
		return nil, &ArchMismatchError{Old: old.Arch, New: new.Arch}
	}
	if old.Arch != image.AMD64 && old.Arch != image.ARM64 {
		return nil, &ArchMismatchError{Old: old.Arch, New: new.Arch}
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxRounds <= 0 {
		o.MaxRounds = 8
	}
	dec := newDecoder(old.Arch)
	vo, vn := newView(old), newView(new)
	vo.decodeAll(dec, nil)
	vn.decodeAll(dec, vo)
	vo.resolveAll()
	vn.resolveAll()

	m := newMatcher(vo, vn)
	m.run(o.MaxRounds)
	c := newComparer(vo, vn, m)

	rep := &Report{Old: summarise(old), New: summarise(new)}
	rep.Functions = make([]Function, 0, max(len(vo.funcs), len(vn.funcs)))
	for oi := range vo.funcs {
		of := &vo.funcs[oi]
		f := Function{OldName: of.Name, OldRVA: of.RVA, OldSize: of.Size}
		ni := m.oldNew[oi]
		if ni < 0 {
			f.Status = Removed
			rep.Counts.Removed++
			rep.Functions = append(rep.Functions, f)
			continue
		}
		nf := &vn.funcs[ni]
		f.NewName, f.NewRVA, f.NewSize, f.Match = nf.Name, nf.RVA, nf.Size, m.how[oi]
		switch f.Match {
		case MatchName:
			rep.Counts.ByName++
		case MatchBodyHash:
			rep.Counts.ByBodyHash++
		case MatchCallGraph:
			rep.Counts.ByCallGraph++
		}
		if rs := c.compare(oi, int(ni)); len(rs) > 0 {
			f.Status, f.Reasons = Changed, rs
			rep.Counts.Changed++
			if !o.NoReferences {
				f.References = c.references(int(ni))
			}
		} else {
			rep.Counts.Unchanged++
		}
		rep.Functions = append(rep.Functions, f)
	}
	for ni := range vn.funcs {
		if m.newOld[ni] >= 0 {
			continue
		}
		nf := &vn.funcs[ni]
		rep.Functions = append(rep.Functions, Function{NewName: nf.Name, NewRVA: nf.RVA, NewSize: nf.Size, Status: Added})
		rep.Counts.Added++
	}
	slices.SortFunc(rep.Functions, func(a, b Function) int {
		return cmp.Or(cmp.Compare(a.Name(), b.Name()), cmp.Compare(a.OldRVA, b.OldRVA), cmp.Compare(a.NewRVA, b.NewRVA),
			cmp.Compare(a.Status, b.Status))
	})
	return rep, nil
}

// decodeAll decodes every function of v. With prev (the old image's view),
// a function whose same-named old version has the same instructions but for
// address fields reuses that decoding (most functions, between two builds).
func (v *view) decodeAll(dec *decoder, prev *view) {
	v.bodies = make([]body, len(v.funcs))
	v.tmpls = make([]*template, len(v.funcs))
	var byName map[string]int
	if prev != nil {
		byName = make(map[string]int, len(prev.funcs))
		for i := range prev.funcs {
			if n := prev.funcs[i].Name; n != "" {
				if _, dup := byName[n]; !dup {
					byName[n] = i
				}
			}
		}
	}
	// A large image with nothing to derive from is decoded by several
	// workers, each with its own cache (the result does not depend on how
	// the work is split).
	if workers := min(runtime.GOMAXPROCS(0), 4); prev == nil && workers > 1 && len(v.funcs) >= 2000 {
		var wg sync.WaitGroup
		chunk := (len(v.funcs) + workers - 1) / workers
		for w := 0; w < workers; w++ {
			lo, hi := w*chunk, min((w+1)*chunk, len(v.funcs))
			d := newDecoder(dec.arch)
			wg.Add(1)
			go func() {
				defer wg.Done()
				v.decodeRange(d, nil, nil, lo, hi)
			}()
		}
		wg.Wait()
		return
	}
	v.decodeRange(dec, prev, byName, 0, len(v.funcs))
}

// decodeRange decodes functions [lo, hi) of v.
func (v *view) decodeRange(dec *decoder, prev *view, byName map[string]int, lo, hi int) {
	for i := lo; i < hi; i++ {
		f := &v.funcs[i]
		code := v.bytesAt(f.RVA, int(f.Size))
		if len(code) < int(f.Size) {
			c, _ := v.img.Code(f)
			code = c
		}
		var t *template
		if oi, ok := byName[f.Name]; ok && f.Name != "" {
			if pt := prev.tmpls[oi]; pt != nil && string(pt.code) == string(code) {
				t = pt
			} else {
				t = dec.derive(pt, code)
			}
		}
		if t == nil {
			t = dec.decode(code)
		}
		v.tmpls[i] = t
		v.bodies[i] = instantiate(v, t, f)
	}
}
