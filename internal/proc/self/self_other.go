//go:build !(linux && (amd64 || arm64))

package self

import (
	"errors"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// ErrUnsupported: no in-process Linux back-end on this platform (Windows has
// its own, in internal/proc/windows).
var ErrUnsupported = errors.New("self: not supported on this platform")

// Process is not available here; the embedded interface only gives the type
// the method set of proc.Process.
type Process struct{ proc.Process }

// New returns ErrUnsupported.
func New() (*Process, error) { return nil, ErrUnsupported }
