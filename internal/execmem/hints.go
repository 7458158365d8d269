//go:build linux && (amd64 || arm64)

package execmem

import "iter"

// nearHints yields the page-aligned addresses AllocNear probes for n bytes
// within reach of from: outward in 64 KiB steps, below before above, never
// under 1 MiB; past 16 MiB the steps widen by a quarter each time (the
// address space is sparse there), still in whole 64 KiB units, so every hint
// can be honoured exactly by MAP_FIXED_NOREPLACE.
func nearHints(from, n uintptr, reach uint64) iter.Seq[uintptr] {
	const step = 1 << 16
	return func(yield func(uintptr) bool) {
		base := from &^ (step - 1)
		for d := uintptr(step); uint64(d) <= reach; d += step {
			for _, hint := range []uintptr{base - d, base + d} {
				if hint > base+d || hint < 1<<20 || !Within(from, hint, int(n), reach) {
					continue // wrapped, too low, or out of reach
				}
				if !yield(hint) {
					return
				}
			}
			if d > 1<<24 {
				d += (d / 4) &^ (step - 1)
			}
		}
	}
}
