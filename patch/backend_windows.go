//go:build windows

package patch

import (
	"context"
	"fmt"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	winproc "github.com/seed3bccf95f/hotpatch/internal/proc/windows"
)

func attachLinux(ctx context.Context, pid int) (proc.Process, error) { return nil, ErrUnsupported }

// Self returns the calling process as a Target. On Windows every other
// thread (Go runtime threads included) is suspended during a commit, so the
// full transaction applies; Go code may only be redirected to Go code.
func Self() (*Target, error) {
	p, err := winproc.Self()
	if err != nil {
		return nil, err
	}
	return newTarget(p), nil
}

// OpenWindows opens process pid for patching. A process the caller may not
// open gives an error matching ErrPermission.
//
// Opening excludes nobody (any number of agents may open a process), so
// Apply, Revert, AppliedSet and AppliedRecords hold a lock named after the
// target process (its pid and creation time) across agent processes while
// they read the applied set and write; another agent holding it is waited
// for until the context ends (*HeldError).
func OpenWindows(pid int) (*Target, error) {
	p, err := winproc.Open(pid, winproc.Options{})
	if err != nil {
		return nil, fmt.Errorf("patch: open %d: %w", pid, err)
	}
	return newTarget(p), nil
}
