package patch

import (
	"errors"
	"fmt"
)

// Sentinels matched with errors.Is.
var (
	// ErrTxDone: the transaction was already committed or aborted.
	ErrTxDone = errors.New("patch: transaction already committed or aborted")
	// ErrRolledBack: the applied transaction was already rolled back.
	ErrRolledBack = errors.New("patch: already rolled back")
	// ErrUnsupported: no such back-end on this platform.
	ErrUnsupported = errors.New("patch: back-end not supported on this platform")
	// ErrNeedStop: the change needs every thread stopped, which the
	// back-end cannot do (in-process on Linux).
	ErrNeedStop = errors.New("patch: change needs stopped threads")
	// ErrBusy: threads kept executing the code to replace until the
	// context ended.
	ErrBusy = errors.New("patch: code to replace stayed in use")
)

// BusyError reports a commit or rollback given up because a thread kept
// executing (or, strict mode, kept a return address into) code it would
// replace, until ctx ended. It matches ErrBusy, the last
// *verify.ActiveThreadError (naming thread and function) and the context's
// error.
type BusyError struct {
	Attempts int
	Last     error // the last *verify.ActiveThreadError
	Cause    error // ctx.Err()
}

// Error implements error: the message names what BusyError carries.
func (e *BusyError) Error() string {
	return fmt.Sprintf("patch: gave up after %d attempts (%v): %v", e.Attempts, e.Cause, e.Last)
}

// Unwrap returns the activeness error and the context's error.
func (e *BusyError) Unwrap() []error { return []error{ErrBusy, e.Last, e.Cause} }

// OrderError reports a rollback out of order: stacked transactions roll
// back newest first.
type OrderError struct {
	ID     int // the transaction asked to roll back
	Newest int // the one that must roll back first
}

// Error implements error: the message names what OrderError carries.
func (e *OrderError) Error() string {
	return fmt.Sprintf("patch: transaction %d cannot roll back before the newer transaction %d", e.ID, e.Newest)
}

// NeedStopError reports a change the back-end cannot make safely because it
// cannot stop threads.
type NeedStopError struct {
	Function string
	Addr     uint64
	Why      string
}

// Error implements error: the message names what NeedStopError carries.
func (e *NeedStopError) Error() string {
	return fmt.Sprintf("patch: %s at %#x: %s", e.Function, e.Addr, e.Why)
}

// Is matches ErrNeedStop.
func (e *NeedStopError) Is(target error) bool { return target == ErrNeedStop }

// SiteError wraps a failure at one patch site (a write, a read, a
// protection query), naming the function; the target was restored.
type SiteError struct {
	Op       string // "read", "write", "query", "flush", "setpc", "stack"
	Function string
	Addr     uint64
	Err      error
}

// Error implements error: the message names what SiteError carries.
func (e *SiteError) Error() string {
	return fmt.Sprintf("patch: %s %s at %#x: %v", e.Op, e.Function, e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *SiteError) Unwrap() error { return e.Err }

// RestoreError reports a failure to restore the target after another
// failure (Err): the target may be left modified (typically because it
// exited). Both errors are matchable.
type RestoreError struct {
	Err     error
	Restore error
}

// Error implements error: the message names what RestoreError carries.
func (e *RestoreError) Error() string {
	return fmt.Sprintf("patch: %v; restoring the target failed too: %v", e.Err, e.Restore)
}

// Unwrap returns both errors.
func (e *RestoreError) Unwrap() []error { return []error{e.Err, e.Restore} }
