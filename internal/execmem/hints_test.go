//go:build linux && (amd64 || arm64)

package execmem

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestNearHints: every probe is 64 KiB aligned (an unaligned hint is never
// honoured exactly, which once made AllocNear fail under qemu-user wherever
// the first 16 MiB around `from` were taken), within reach, above 1 MiB,
// and the walk reaches the far end of a large reach in few probes.
func TestNearHints(t *testing.T) {
	for _, tc := range []struct {
		from  uintptr
		reach uint64
	}{
		{0x400000, 1 << 40},
		{0x7f12_3456_7000, 1<<31 - 1},
		{0x55_0000_1234, 128 << 20},
		{0, 1 << 40},
	} {
		var count int
		var farthest uint64
		for h := range nearHints(tc.from, 4096, tc.reach) {
			count++
			require.Zero(t, h%(1<<16), "hint %#x from %#x is not 64 KiB aligned", h, tc.from)
			require.GreaterOrEqual(t, h, uintptr(1<<20))
			require.True(t, Within(tc.from, h, 4096, tc.reach), "hint %#x out of reach of %#x", h, tc.from)
			farthest = max(farthest, distance(tc.from, h))
		}
		require.Greater(t, count, 0)
		require.Less(t, count, 2000, "from %#x: the walk must widen", tc.from)
		require.Greater(t, farthest, tc.reach/2, "from %#x: the walk must get near the end of its reach", tc.from)
	}
}
