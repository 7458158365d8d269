//go:build windows && amd64

package winproc

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// TestLock: two holders of one process's lock exclude each other (here
// two Processes of one child in this test process: each lock lives on a
// thread of its own); the second gives up with a *proc.HeldError naming
// the pid and the lock when its context ends, and gets the lock once the
// first releases it.
func TestLock(t *testing.T) {
	c := startChild(t, 1, false)
	pid := c.cmd.Process.Pid
	a, err := Open(pid, Options{})
	require.NoError(t, err)
	defer a.Close()
	b, err := Open(pid, Options{})
	require.NoError(t, err)
	defer b.Close()

	unlockA, err := a.Lock(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = b.Lock(ctx)
	cancel()
	require.ErrorIs(t, err, proc.ErrHeld)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var held *proc.HeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, pid, held.PID)
	require.Zero(t, held.HolderPID, "a mutex does not say who holds it")
	require.Regexp(t, fmt.Sprintf(`^(Global|Local)\\hotpatch-%d-[0-9]+$`, pid), held.Lock)
	t.Logf("held: %v", err)

	// b waits, and gets it once a lets go.
	got := make(chan error, 1)
	go func() {
		unlock, err := b.Lock(context.Background())
		if err == nil {
			unlock()
		}
		got <- err
	}()
	unlockA()
	require.NoError(t, <-got)
	unlockA() // a second call does nothing

	// The lock of another process has another name: no interference.
	other := startChild(t, 1, false)
	o, err := Open(other.cmd.Process.Pid, Options{})
	require.NoError(t, err)
	defer o.Close()
	unlockA, err = a.Lock(context.Background())
	require.NoError(t, err)
	defer unlockA()
	unlockO, err := o.Lock(context.Background())
	require.NoError(t, err)
	unlockO()
}
