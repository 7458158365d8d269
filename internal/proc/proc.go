package proc

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
)

// Prot is a page protection.
type Prot uint8

// Protection bits.
const (
	ProtRead Prot = 1 << iota
	ProtWrite
	ProtExec
)

// String renders a protection as "rwx" with dashes for missing bits.
func (p Prot) String() string {
	b := []byte("---")
	if p&ProtRead != 0 {
		b[0] = 'r'
	}
	if p&ProtWrite != 0 {
		b[1] = 'w'
	}
	if p&ProtExec != 0 {
		b[2] = 'x'
	}
	return string(b)
}

// Region is a run of pages with one protection.
type Region struct {
	Base, Size uint64
	Prot       Prot
}

// Module is an executable image mapped into a process.
type Module struct {
	Name string // file name, e.g. "app.exe", "libfoo.so"
	Path string // full path when known
	Base uint64 // load address (where RVA 0 is)
	Size uint64 // mapped size
}

// Thread is a stopped thread's state, as the activeness check needs it.
type Thread struct {
	ID int
	PC uint64
	SP uint64
	// NoRegs: the thread was already suspended by another party and the
	// OS did not report its registers (Wine, for a thread created suspended
	// that has not run yet); PC and SP are 0 and SetPC refuses it.
	NoRegs bool
}

// Caps says what a back-end can do, so the transaction picks a strategy
// (stop the world, or only writes atomic for a running CPU) up front.
type Caps struct {
	// StopThreads: Stop really stops every other thread of the process.
	StopThreads bool
	// SetPC: a stopped thread's PC can be moved (detours move threads
	// parked inside an overwritten prologue into the trampoline).
	SetPC bool
	// Self: the process is the caller's own; writes race with running code.
	Self bool
}

// Process is a live process the caller may patch. Addresses are absolute.
// Implementations are not safe for concurrent use: one transaction at a time.
type Process interface {
	PID() int
	Arch() arch.Arch
	Caps() Caps

	// ReadAt fills p from addr; a partial read is an error naming the address.
	ReadAt(p []byte, addr uint64) error
	// WriteAt writes p at addr. Code pages may need Protect first; the
	// back-end does not change protections behind the caller's back, except
	// where the OS writes through protection (Linux /proc/PID/mem, ptrace).
	WriteAt(p []byte, addr uint64) error
	// Query returns the region containing addr.
	Query(addr uint64) (Region, error)
	// Protect sets the protection of the pages covering [addr, addr+size)
	// and returns the previous protection of the first page.
	Protect(addr, size uint64, prot Prot) (Prot, error)
	// AllocNear maps size bytes with prot, every byte within reach of near.
	AllocNear(ctx context.Context, near uint64, size uint64, reach uint64, prot Prot) (uint64, error)
	// Free unmaps memory AllocNear returned.
	Free(addr, size uint64) error
	// FlushICache makes code written at [addr, addr+size) visible to execution.
	FlushICache(addr, size uint64) error

	// Stop stops every thread but the caller's (for Self) and returns their
	// states. Threads created while stopping are caught too. A back-end
	// without Caps.StopThreads returns ErrCannotStop.
	Stop(ctx context.Context) ([]Thread, error)
	// SetPC moves a stopped thread to pc.
	SetPC(tid int, pc uint64) error
	// Resume resumes every thread Stop stopped, restoring their registers.
	Resume() error

	// Modules lists the executable images mapped in the process.
	Modules() ([]Module, error)
	// Close detaches (resuming threads if still stopped) and releases handles.
	Close() error
}

// Sentinel errors every back-end returns (wrapped with context).
var (
	// ErrCannotStop: the back-end cannot stop the process's threads.
	ErrCannotStop = errors.New("proc: back-end cannot stop threads")
	// ErrExited: the process (or the thread) exited.
	ErrExited = errors.New("proc: process exited")
	// ErrPermission: the OS refused access to the process.
	ErrPermission = errors.New("proc: permission denied")
	// ErrNoMemory: no free range within reach.
	ErrNoMemory = errors.New("proc: no free memory within reach")
	// ErrDynamicCode: the process forbids new executable memory (Windows ACG).
	ErrDynamicCode = errors.New("proc: process forbids dynamic code")
	// ErrHeld: another agent holds the process (it traces it, or holds its
	// lock), so this one may not decide or write anything now. Unlike
	// ErrPermission it is temporary: waiting, or trying later, helps.
	ErrHeld = errors.New("proc: process held by another agent")
)

// HeldError reports that another agent holds the process: on Linux another
// tracer is attached (a ptrace attachment is exclusive), on Windows another
// holder has the target's lock (see Locker). The back-ends wait for the
// holder to let go until the context ends; Err is then the context's error.
// It matches ErrHeld, and Err (context.DeadlineExceeded, context.Canceled).
type HeldError struct {
	PID int // the target process
	// HolderPID is the process holding the target, 0 when the OS does not
	// say (a Windows mutex has no visible owner process).
	HolderPID int
	// Holder is the holder's command name, when known.
	Holder string
	// Lock is what is held: "ptrace" or the name of the lock.
	Lock string
	// Self: the holder is the calling process itself (another Target of
	// it). The back-end does not wait then: the caller may be the one
	// holding it, and would wait for itself.
	Self bool
	// Err is why waiting ended (the context's error); nil when the
	// back-end did not wait (Self).
	Err error
}

// Error implements error: the message names the target, the holder as far
// as it is known and why waiting ended.
func (e *HeldError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "proc: process %d is held by ", e.PID)
	switch {
	case e.Self:
		fmt.Fprintf(&b, "this process (pid %d", e.HolderPID)
		if e.Holder != "" {
			fmt.Fprintf(&b, ", %s", e.Holder)
		}
		b.WriteString("): use the Target that holds it, or close it first")
	case e.HolderPID != 0 && e.Holder != "":
		fmt.Fprintf(&b, "another agent: pid %d (%s)", e.HolderPID, e.Holder)
	case e.HolderPID != 0:
		fmt.Fprintf(&b, "another agent: pid %d", e.HolderPID)
	default:
		b.WriteString("another agent")
	}
	if e.Lock != "" {
		fmt.Fprintf(&b, " [%s]", e.Lock)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": gave up waiting: %v", e.Err)
	}
	return b.String()
}

// Is matches ErrHeld.
func (e *HeldError) Is(target error) bool { return target == ErrHeld }

// Unwrap returns why waiting ended, so errors.Is sees the context's error.
func (e *HeldError) Unwrap() error { return e.Err }

// Locker is implemented by back-ends whose access to a process does not by
// itself exclude other agents (Windows: any number of processes may hold
// OpenProcess handles). Lock takes a lock every agent using this library
// takes on the same process, across agent processes; patch.Apply, Revert
// and the applied-set reads hold it from reading the applied set to the
// last write, so two agents cannot both see sequence N-1 and both apply N.
// It waits for a holder until ctx ends, then fails with a *HeldError. The
// returned unlock releases it (call it exactly once, from any goroutine).
//
// The Linux ptrace back-end does not implement it: a ptrace attachment is
// exclusive and lasts as long as the Process, so being attached is the
// lock (Attach waits for another tracer instead).
type Locker interface {
	Lock(ctx context.Context) (unlock func(), err error)
}

// AccessError reports a failed memory operation at an address.
type AccessError struct {
	Op   string // "read", "write", "protect", "query", "alloc", "free"
	Addr uint64
	Size uint64
	Err  error
}

// Error implements error: the message names what AccessError carries.
func (e *AccessError) Error() string {
	return fmt.Sprintf("proc: %s %d bytes at %#x: %v", e.Op, e.Size, e.Addr, e.Err)
}

// Unwrap returns the cause, so errors.Is and errors.As see through AccessError.
func (e *AccessError) Unwrap() error { return e.Err }

// ThreadError reports a failure on one thread.
type ThreadError struct {
	Op  string // "stop", "resume", "getregs", "setregs"
	TID int
	Err error
}

// Error implements error: the message names what ThreadError carries.
func (e *ThreadError) Error() string {
	return fmt.Sprintf("proc: %s thread %d: %v", e.Op, e.TID, e.Err)
}

// Unwrap returns the cause, so errors.Is and errors.As see through ThreadError.
func (e *ThreadError) Unwrap() error { return e.Err }
