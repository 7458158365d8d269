//go:build !linux

package patch

import "github.com/seed3bccf95f/hotpatch/internal/proc"

// privateRegions returns the start of every readable region of the target
// that starts in [lo, hi), walking the address space with the back-end's
// Query (on Windows VirtualQueryEx, which describes free ranges too).
func (t *Target) privateRegions(lo, hi uint64) ([]uint64, error) {
	var out []uint64
	for a := lo; a < hi; {
		r, err := t.p.Query(a)
		if err != nil {
			break // past the last user address
		}
		end := r.Base + r.Size
		if r.Base >= lo && r.Prot&proc.ProtRead != 0 {
			out = append(out, r.Base)
		}
		if end <= a {
			break
		}
		a = end
	}
	return out, nil
}
