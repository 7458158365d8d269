//go:build !linux && !windows

package patch

import (
	"context"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

func attachLinux(ctx context.Context, pid int) (proc.Process, error) { return nil, ErrUnsupported }

// Self is not supported on this platform.
func Self() (*Target, error) { return nil, ErrUnsupported }

// OpenWindows is only available on Windows.
func OpenWindows(pid int) (*Target, error) { return nil, ErrUnsupported }
