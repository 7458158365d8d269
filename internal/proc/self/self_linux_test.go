//go:build linux && (amd64 || arm64)

package self_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/proc/self"
)

func TestReadWriteCAS(t *testing.T) {
	p, err := self.New()
	require.NoError(t, err)
	require.True(t, p.Caps().Self)
	require.False(t, p.Caps().StopThreads)
	// Unmapped memory is an error, not a fault.
	var ae *proc.AccessError
	require.ErrorAs(t, p.ReadAt(make([]byte, 8), 8), &ae)
	require.Equal(t, uint64(8), ae.Addr)

	// Read-execute memory: CAS writes through protection and restores it.
	a, err := p.AllocNear(t.Context(), uint64(os.Getpagesize())*1024, 4096, 1<<40, proc.ProtRead|proc.ProtExec)
	require.NoError(t, err)
	defer p.Free(a, 4096)
	ok, err := p.CompareAndSwap(a, 8, 0, 0x1122334455667788)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = p.CompareAndSwap(a, 8, 0, 1)
	require.NoError(t, err)
	require.False(t, ok, "old value no longer there")
	b := make([]byte, 8)
	require.NoError(t, p.ReadAt(b, a))
	require.Equal(t, uint64(0x1122334455667788), binary.LittleEndian.Uint64(b))
	r, err := p.Query(a)
	require.NoError(t, err)
	require.Equal(t, proc.ProtRead|proc.ProtExec, r.Prot, "protection restored")
	require.NoError(t, p.WriteAt([]byte{1, 2}, a+8))
	require.NoError(t, p.ReadAt(b[:2], a+8))
	require.Equal(t, []byte{1, 2}, b[:2])
	_, err = p.CompareAndSwap(a+1, 8, 0, 1)
	require.Error(t, err, "misaligned")
}

// The calling process as a back-end.
func Example() {
	p, err := self.New()
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = p.Stop(context.Background())
	fmt.Println(p.PID() == os.Getpid(), err)
	// Output: true proc: back-end cannot stop threads
}
