//go:build windows

package winproc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/windows"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

var _ proc.Locker = (*Process)(nil)

// lockSlice is how long one wait for the lock blocks before the context is
// looked at again.
const lockSlice = 50 // ms

// waitTimeout is WaitForSingleObject's WAIT_TIMEOUT (x/sys has it only as
// an Errno).
const waitTimeout = 0x102

// Lock takes the lock every agent using this library takes on this process
// (proc.Locker): OpenProcess excludes nobody, so Apply and Revert in two
// agent processes would otherwise both read the same applied set and both
// write. The lock is a named mutex, Global\hotpatch-PID-CREATION (CREATION
// is the process's creation time from GetProcessTimes, in 100 ns units, so
// a reused pid gets another name), or Local\ with the same suffix when the
// Global one cannot be created or opened (access denied, e.g. a hardened
// session). Agents that end up in different namespaces do not exclude each
// other: run agents of one deployment with the same rights.
//
// Lock waits for another holder in slices of 50 ms, looking at ctx in
// between; when ctx ends it fails with a *proc.HeldError naming the target
// and the lock (a mutex does not tell who holds it). A mutex abandoned by
// an agent that died holding it counts as acquired: what that agent wrote
// is described by the records in the target, which the next Apply or
// Revert checks against the live bytes anyway. unlock releases it; call it
// once, from any goroutine.
func (p *Process) Lock(ctx context.Context) (unlock func(), err error) {
	var created, exited, kernel, user windows.Filetime
	if err := windows.GetProcessTimes(p.h, &created, &exited, &kernel, &user); err != nil {
		return nil, fmt.Errorf("winproc: lock pid %d: creation time: %w", p.pid, err)
	}
	suffix := fmt.Sprintf("hotpatch-%d-%d", p.pid, uint64(created.HighDateTime)<<32|uint64(created.LowDateTime))
	return lockMutex(ctx, int(p.pid), suffix)
}

// lockMutex takes the named mutex on a goroutine of its own, locked to its
// OS thread from the wait to the release. A mutex belongs to the thread
// that acquired it and only that thread can release it. Locking the
// caller's goroutine instead would tie ownership to whatever the caller
// does meanwhile (Self's Stop and Resume lock and unlock the thread too;
// a caller may defer unlock on another goroutine), and two Targets used
// from one thread would acquire the mutex recursively, excluding nothing.
// A thread per holder makes the lock exclude every other holder, in this
// process as in others.
func lockMutex(ctx context.Context, pid int, suffix string) (unlock func(), err error) {
	acquired := make(chan error, 1)
	release := make(chan struct{})
	released := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		h, name, err := openMutex(suffix)
		if err != nil {
			acquired <- fmt.Errorf("winproc: lock pid %d: %w", pid, err)
			return
		}
		defer windows.CloseHandle(h)
		if _, err := waitMutex(ctx, h); err != nil {
			if ctx.Err() != nil {
				err = &proc.HeldError{PID: pid, Lock: name, Err: ctx.Err()}
			}
			acquired <- fmt.Errorf("winproc: lock pid %d: %w", pid, err)
			return
		}
		acquired <- nil
		<-release
		_ = windows.ReleaseMutex(h)
		close(released)
	}()
	if err := <-acquired; err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			close(release)
			<-released
		})
	}, nil
}

// openMutex creates (or opens) the mutex Global\suffix, falling back to
// Local\suffix when the Global one is denied.
func openMutex(suffix string) (windows.Handle, string, error) {
	var first error
	for _, ns := range []string{`Global\`, `Local\`} {
		name := ns + suffix
		u, err := windows.UTF16PtrFromString(name)
		if err != nil {
			return 0, "", err
		}
		h, err := windows.CreateMutex(nil, false, u)
		if h != 0 && (err == nil || errors.Is(err, windows.ERROR_ALREADY_EXISTS)) {
			// x/sys reports an existing mutex as an error with a valid
			// handle: another agent made it first.
			return h, name, nil
		}
		if h != 0 {
			windows.CloseHandle(h)
		}
		if first == nil {
			first = fmt.Errorf("create mutex %s: %w", name, err)
		}
		if !errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			break
		}
	}
	return 0, "", first
}

// waitMutex acquires h, waiting in slices until ctx ends (then it returns
// ctx.Err()). An abandoned mutex is acquired too, and reported.
func waitMutex(ctx context.Context, h windows.Handle) (abandoned bool, err error) {
	for {
		ev, err := windows.WaitForSingleObject(h, lockSlice)
		switch {
		case err != nil:
			return false, fmt.Errorf("wait for mutex: %w", err)
		case ev == windows.WAIT_OBJECT_0, ev == windows.WAIT_ABANDONED:
			return ev == windows.WAIT_ABANDONED, nil
		case ev != waitTimeout:
			return false, fmt.Errorf("wait for mutex: unexpected result %#x", ev)
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
	}
}
