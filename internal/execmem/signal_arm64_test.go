//go:build linux

package execmem_test

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/stretchr/testify/require"
)

// TestCallSurvivesSignalsWhileX28IsClobbered runs code that, like compiled C,
// uses x28 as scratch while the garbage collector keeps signalling threads to
// stop the world. Without signals blocked around the call, Go's handler
// reads x28 as its goroutine pointer and the process dies.
func TestCallSurvivesSignalsWhileX28IsClobbered(t *testing.T) {
	var code []byte
	for _, w := range []uint32{
		0xaa1c03e9, // mov x9, x28
		0xd29bd5bc, // movz x28, #0xdead
		0xf1000400, // loop: subs x0, x0, #1
		0x54ffffe1, //       b.ne loop
		0xaa0903fc, // mov x28, x9
		0xd65f03c0, // ret
	} {
		code = binary.LittleEndian.AppendUint32(code, w)
	}
	r, err := execmem.Alloc(len(code))
	require.NoError(t, err)
	defer r.Free()
	require.NoError(t, r.Write(0, code))

	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for !stop.Load() {
			runtime.GC()
		}
	}()
	for i := 0; i < 20; i++ {
		require.Equal(t, uintptr(0), execmem.Call(r.Addr(), 2_000_000))
	}
	stop.Store(true)
	<-done
}
