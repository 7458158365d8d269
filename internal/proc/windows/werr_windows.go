//go:build windows

package winproc

import (
	"errors"
	"syscall"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Errors of calls failing inside a self window (between Stop and Resume of
// the own process) are built in slots allocated beforehand: an allocation
// there may wait for a lock a suspended thread holds. Each failure takes
// its own slot, so an error a caller keeps is never overwritten; Resume
// replaces the slots it handed out. When all are taken (more failures in
// one window than any caller makes), errors are allocated as elsewhere.

// windowSlots is how many failures one window can report without
// allocating: a failed write, the failed undo after it, and room to spare.
const windowSlots = 4

// windowError is one slot.
type windowError struct {
	access proc.AccessError
	thread proc.ThreadError
	cause  cause
}

// cause is a failure's Windows error code (0: none) and the sentinel it
// is classified as (nil: none).
type cause struct {
	errno syscall.Errno
	class error
}

// Error implements error.
func (c *cause) Error() string {
	switch {
	case c.class == nil:
		return c.errno.Error()
	case c.errno == 0:
		return c.class.Error()
	}
	return c.class.Error() + ": " + c.errno.Error()
}

// Unwrap returns the sentinel and the error code.
func (c *cause) Unwrap() []error {
	var errs []error
	if c.class != nil {
		errs = append(errs, c.class)
	}
	if c.errno != 0 {
		errs = append(errs, c.errno)
	}
	return errs
}

// Sentinels of SetPC failures.
var (
	errNoRegs     = errors.New("winproc: registers of a thread suspended by another party are unknown")
	errNotStopped = errors.New("winproc: thread not stopped by Stop")
)

// slot returns a free error slot when p is its own process inside a
// window, else nil (the caller allocates).
func (p *Process) slot() *windowError {
	s := &p.st
	if !p.self || !s.active || s.slotsUsed == len(s.slots) {
		return nil
	}
	w := s.slots[s.slotsUsed]
	s.slotsUsed++
	return w
}

// refillSlots replaces the slots handed out in the window that ended. It
// runs after the threads are resumed.
func (p *Process) refillSlots() {
	s := &p.st
	for len(s.slots) < windowSlots {
		s.slots = append(s.slots, new(windowError))
	}
	for i := 0; i < s.slotsUsed; i++ {
		s.slots[i] = new(windowError)
	}
	s.slotsUsed = 0
}

// memError is the AccessError of a failed memory call.
func (p *Process) memError(op string, addr, size uint64, errno syscall.Errno, class error) error {
	if w := p.slot(); w != nil {
		w.cause = cause{errno: errno, class: class}
		w.access = proc.AccessError{Op: op, Addr: addr, Size: size, Err: &w.cause}
		return &w.access
	}
	return &proc.AccessError{Op: op, Addr: addr, Size: size, Err: &cause{errno: errno, class: class}}
}

// threadError is the ThreadError of a failed thread call.
func (p *Process) threadError(op string, tid int, errno syscall.Errno, class error) error {
	if w := p.slot(); w != nil {
		w.cause = cause{errno: errno, class: class}
		w.thread = proc.ThreadError{Op: op, TID: tid, Err: &w.cause}
		return &w.thread
	}
	return &proc.ThreadError{Op: op, TID: tid, Err: &cause{errno: errno, class: class}}
}
