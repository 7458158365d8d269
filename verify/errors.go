package verify

import (
	"errors"
	"fmt"
)

// Sentinels matched with errors.Is by the typed errors of this package.
var (
	// ErrPreImage: the bytes in the process are not the expected ones.
	ErrPreImage = errors.New("verify: unexpected bytes in the process")
	// ErrActive: a thread executes, or will return into, code to be replaced.
	ErrActive = errors.New("verify: thread active in code to be replaced")
	// ErrReadback: bytes read back after a write differ from those written.
	ErrReadback = errors.New("verify: readback differs from what was written")
	// ErrProtection: a page's protection is not what it must be.
	ErrProtection = errors.New("verify: wrong page protection")
	// ErrConcurrentWrite: a write cannot be made safe for code that other
	// threads execute while it happens.
	ErrConcurrentWrite = errors.New("verify: write not atomic for running threads")
)

// PreImageError reports bytes at a patch site that differ from the expected
// ones: another patcher, a different build, or a wrong address.
type PreImageError struct {
	Addr   uint64
	Symbol string
	Want   []byte
	Got    []byte
}

// Error implements error: the message names what PreImageError carries.
func (e *PreImageError) Error() string {
	return fmt.Sprintf("verify: %s at %#x: expected bytes % x, found % x", name(e.Symbol), e.Addr, e.Want, e.Got)
}

// Is matches ErrPreImage.
func (e *PreImageError) Is(target error) bool { return target == ErrPreImage }

// ActiveThreadError reports a thread whose PC lies inside bytes to be
// overwritten (Stack false), or whose stack holds a return address into a
// function to be replaced (Stack true; PC is then that return address and
// Slot the stack address holding it).
type ActiveThreadError struct {
	TID      int
	PC       uint64
	Function string
	Stack    bool
	Slot     uint64
}

// Error implements error: the message names what ActiveThreadError carries.
func (e *ActiveThreadError) Error() string {
	if e.Stack {
		return fmt.Sprintf("verify: thread %d has a return address %#x into %s on its stack at %#x", e.TID, e.PC, name(e.Function), e.Slot)
	}
	return fmt.Sprintf("verify: thread %d is stopped at %#x inside the bytes of %s to be overwritten", e.TID, e.PC, name(e.Function))
}

// Is matches ErrActive.
func (e *ActiveThreadError) Is(target error) bool { return target == ErrActive }

// ReadbackError reports a write that did not stick: the bytes read back
// after writing differ from the bytes written.
type ReadbackError struct {
	Addr   uint64
	Symbol string
	Wrote  []byte
	Read   []byte
}

// Error implements error: the message names what ReadbackError carries.
func (e *ReadbackError) Error() string {
	return fmt.Sprintf("verify: %s at %#x: wrote % x, read back % x", name(e.Symbol), e.Addr, e.Wrote, e.Read)
}

// Is matches ErrReadback.
func (e *ReadbackError) Is(target error) bool { return target == ErrReadback }

// ProtectionError reports a page whose protection differs from what it had
// before the patch, or that is left writable and executable.
type ProtectionError struct {
	Addr uint64
	Want Prot // protection the page must have (zero when only W+X is wrong)
	Got  Prot
	Why  string
}

// Error implements error: the message names what ProtectionError carries.
func (e *ProtectionError) Error() string {
	return fmt.Sprintf("verify: page at %#x is %s: %s", e.Addr, e.Got, e.Why)
}

// Is matches ErrProtection.
func (e *ProtectionError) Is(target error) bool { return target == ErrProtection }

// ConcurrentWriteError reports a patch site where no write is atomic for
// threads executing it concurrently (in-process patching, where other
// threads cannot be stopped).
type ConcurrentWriteError struct {
	Addr   uint64
	Symbol string
	Why    string
}

// Error implements error: the message names what ConcurrentWriteError carries.
func (e *ConcurrentWriteError) Error() string {
	return fmt.Sprintf("verify: %s at %#x cannot be patched while other threads run: %s", name(e.Symbol), e.Addr, e.Why)
}

// Is matches ErrConcurrentWrite.
func (e *ConcurrentWriteError) Is(target error) bool { return target == ErrConcurrentWrite }

func name(s string) string {
	if s == "" {
		return "function"
	}
	return s
}
