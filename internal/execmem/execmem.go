package execmem

import (
	"errors"
	"fmt"
)

// ErrUnsupported is returned on platforms without an implementation.
var ErrUnsupported = errors.New("execmem: not supported on this platform")

// ErrNoSpace is returned when no free range satisfies an allocation's constraint.
var ErrNoSpace = errors.New("execmem: no free address range satisfies the request")

// Region is a page-aligned mapping owned by the caller. Its pages are either
// read+write (while being written) or read+execute, never both.
type Region struct {
	addr uintptr
	size int
	mem  []byte // the mapping, for reads and copies
}

// Addr returns the region's first address.
func (r *Region) Addr() uintptr { return r.addr }

// Size returns the region's size in bytes (a multiple of the page size).
func (r *Region) Size() int { return r.size }

// Read returns a copy of n bytes at offset off.
func (r *Region) Read(off, n int) ([]byte, error) {
	if err := r.check(off, n); err != nil {
		return nil, err
	}
	return append([]byte(nil), r.mem[off:off+n]...), nil
}

func (r *Region) check(off, n int) error {
	if r == nil || r.mem == nil {
		return errors.New("execmem: region is freed")
	}
	if off < 0 || n < 0 || off+n > r.size {
		return fmt.Errorf("execmem: range [%#x,+%d) outside region of %d bytes at %#x", off, n, r.size, r.addr)
	}
	return nil
}

func distance(a, b uintptr) uint64 {
	if a > b {
		return uint64(a - b)
	}
	return uint64(b - a)
}

// Within reports whether every byte of [addr, addr+size) lies within reach
// bytes of from, in both directions, as a rel32 or B displacement would need.
func Within(from, addr uintptr, size int, reach uint64) bool {
	return distance(from, addr) <= reach && distance(from, addr+uintptr(size)) <= reach
}
