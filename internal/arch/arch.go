// Package arch names the instruction-set architectures hotpatch handles.
// It exists so that image and trampoline share one enum without either
// importing the other.
package arch

// Arch is an instruction-set architecture.
type Arch uint8

// The architectures hotpatch understands. Unknown is the zero value so that an
// unset field is never mistaken for a real architecture.
const (
	Unknown Arch = iota
	AMD64
	ARM64
)

// String returns the Go name of the architecture ("amd64", "arm64").
func (a Arch) String() string {
	switch a {
	case AMD64:
		return "amd64"
	case ARM64:
		return "arm64"
	}
	return "unknown"
}

// PtrSize returns the size of a pointer in bytes (8 for both supported arches).
func (a Arch) PtrSize() int {
	if a == Unknown {
		return 0
	}
	return 8
}
