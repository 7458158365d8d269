//go:build !(linux && (amd64 || arm64))

package execmem

// Alloc is not supported on this platform.
func Alloc(size int) (*Region, error) { return nil, ErrUnsupported }

// AllocNear is not supported on this platform.
func AllocNear(from uintptr, size int, reach uint64) (*Region, error) { return nil, ErrUnsupported }

// AllocFar is not supported on this platform.
func AllocFar(from uintptr, size int, min uint64) (*Region, error) { return nil, ErrUnsupported }

// Write is not supported on this platform.
func (r *Region) Write(off int, code []byte) error { return ErrUnsupported }

// Free is not supported on this platform.
func (r *Region) Free() error { return ErrUnsupported }

// FlushICache does nothing on this platform.
func FlushICache(addr uintptr, n int) {}

// Call is not supported on this platform and panics.
func Call(fn uintptr, args ...uintptr) uintptr { panic(ErrUnsupported) }
