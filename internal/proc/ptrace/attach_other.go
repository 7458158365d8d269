//go:build !linux || !(amd64 || arm64)

package ptrace

import (
	"context"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Process is a traced process. On this platform Attach never returns one:
// the embedded interface only gives the type the method set of proc.Process.
type Process struct{ proc.Process }

// Attach returns ErrUnsupported on this platform.
func Attach(ctx context.Context, pid int, opts Options) (*Process, error) {
	return nil, ErrUnsupported
}
