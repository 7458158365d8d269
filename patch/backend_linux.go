//go:build linux

package patch

import (
	"context"
	"sync"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/proc/ptrace"
	"github.com/seed3bccf95f/hotpatch/internal/proc/self"
)

func attachLinux(ctx context.Context, pid int) (proc.Process, error) {
	return ptrace.Attach(ctx, pid, ptrace.Options{})
}

// Self returns the calling process as a Target. On Linux its other threads
// cannot be stopped: only redirections written with one store atomic for a
// running CPU are accepted (x86-64: the jump inside one aligned 8-byte word
// and covering only the first instruction, or a 2-byte short jump to a
// jump placed in the padding before the function; ARM64: one aligned B),
// anything else is refused with a *verify.ConcurrentWriteError or a
// *NeedStopError. Go code may only be redirected to Go code.
//
// Every call returns the same Target: the process is one, and its
// transactions must stack in one order (and padding jumps left by rolled
// back transactions be known to later ones).
func Self() (*Target, error) {
	selfOnce.Do(func() {
		var p *self.Process
		p, selfErr = self.New()
		if selfErr == nil {
			selfTarget = newTarget(p)
		}
	})
	return selfTarget, selfErr
}

var (
	selfOnce   sync.Once
	selfTarget *Target
	selfErr    error
)

// OpenWindows is only available on Windows.
func OpenWindows(pid int) (*Target, error) { return nil, ErrUnsupported }
