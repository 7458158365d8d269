package patch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Module is an executable image mapped in the target (name, path, base, size).
type Module = proc.Module

// Target is a process being patched. Transactions on one Target are
// serialised; committed ones stack and roll back newest first.
type Target struct {
	p    proc.Process
	arch arch.Arch
	caps proc.Caps

	mu      sync.Mutex
	applied []*Applied // committed and not rolled back, oldest first
	nextID  int
	// pads remembers the padding jump placed before a function (in-process
	// x86-64), reused by later transactions: see concurrent.go.
	pads map[uint64]*padSite
	// retired holds trampolines of rolled-back detours, by function: see
	// Rollback. A later detour of the same function reuses its own.
	retired map[uint64]retiredTramp
}

type retiredTramp struct {
	addr, size uint64
	code       []byte
}

// newTarget wraps a back-end.
func newTarget(p proc.Process) *Target {
	return &Target{p: p, arch: p.Arch(), caps: p.Caps(), pads: map[uint64]*padSite{}, retired: map[uint64]retiredTramp{}}
}

// AttachLinux attaches to process pid through ptrace (Linux amd64; arm64
// compiled only). Threads keep running until a commit stops them briefly.
//
// The attachment is exclusive and lasts until Close, which is what keeps
// two agents from patching one process at once on Linux: while another
// agent (or a debugger) is attached, AttachLinux waits for it, retrying
// with backoff until ctx ends, then fails with a *HeldError (matching
// ErrHeld and the context's error) naming the holder's pid and command.
// A Target of this same process already attached gives a *HeldError with
// Self set at once. Hold a Target only as long as needed: other agents
// wait for it.
//
// A process the caller may not trace gives an error matching
// proc.ErrPermission (also exposed as patch.ErrPermission).
func AttachLinux(ctx context.Context, pid int) (*Target, error) {
	p, err := attachLinux(ctx, pid)
	if err != nil {
		return nil, fmt.Errorf("patch: attach %d: %w", pid, err)
	}
	return newTarget(p), nil
}

// ErrPermission is matched by errors from a back-end the OS refused access
// to the process.
var ErrPermission = proc.ErrPermission

// ErrExited is matched by errors from a process that exited.
var ErrExited = proc.ErrExited

// ErrHeld is matched by errors from a target another agent holds (Linux:
// it is attached; Windows: it holds the target's lock) until the context
// ended; see HeldError.
var ErrHeld = proc.ErrHeld

// HeldError reports a target another agent holds: the target's pid, the
// holder's pid and command name where the OS tells them, and why waiting
// ended. AttachLinux returns it when another tracer stays attached; Apply,
// Revert, AppliedSet and AppliedRecords on Windows when another agent
// keeps the target's lock.
type HeldError = proc.HeldError

// PID returns the target's process ID.
func (t *Target) PID() int { return t.p.PID() }

// Arch returns the target's architecture.
func (t *Target) Arch() arch.Arch { return t.arch }

// Modules lists the executable images mapped in the target.
func (t *Target) Modules() ([]Module, error) { return t.p.Modules() }

// Read returns n bytes of the target's memory at addr.
func (t *Target) Read(addr uint64, n int) ([]byte, error) {
	b := make([]byte, n)
	if err := t.p.ReadAt(b, addr); err != nil {
		return nil, err
	}
	return b, nil
}

// Write writes b at addr in the target (through page protection where the
// back-end can). It is for setting up data a replacement needs (a pointer to
// a trampoline), not for code: code goes through transactions.
func (t *Target) Write(addr uint64, b []byte) error { return t.p.WriteAt(b, addr) }

// Close releases the back-end (detaching from a remote process). Committed
// transactions stay in place: roll them back first to undo them.
func (t *Target) Close() error { return t.p.Close() }

// FreeRetired unmaps the trampolines of rolled-back detours. Rollback keeps
// them mapped because a replacement may still hold a trampoline's address
// (loaded, not yet called) when the rollback happens: calling it after the
// rollback still runs the original correctly, calling freed memory would
// crash. Call FreeRetired once no replacement can run any more (its module
// unloaded, or the process quiescent). Each function keeps at most one
// retired trampoline, reused by its next detour.
func (t *Target) FreeRetired() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var first error
	for fn, r := range t.retired {
		if err := t.p.Free(r.addr, r.size); err != nil && first == nil {
			first = err
		}
		delete(t.retired, fn)
	}
	return first
}

// Options tune a transaction. The zero value is the default.
type Options struct {
	// Strict also refuses while any thread's stack holds a return address
	// into a function being replaced (a conservative scan of StackBytes
	// from each thread's SP).
	Strict bool
	// StackBytes is how much of each stack the strict scan reads (default
	// 16 KiB; less where the stack mapping ends sooner).
	StackBytes int
	// Backoff is the first pause before retrying a commit a thread made
	// unsafe (default 100 µs); it doubles up to MaxBackoff (default 20 ms),
	// with jitter.
	Backoff, MaxBackoff time.Duration
}

func (o Options) withDefaults() Options {
	if o.StackBytes <= 0 {
		o.StackBytes = 16 << 10
	}
	if o.Backoff <= 0 {
		o.Backoff = 100 * time.Microsecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 20 * time.Millisecond
	}
	return o
}

// Begin starts a transaction. Nothing is written before Commit (except
// trampolines, into memory the transaction allocated for them).
func (t *Target) Begin(opts Options) *Tx {
	return &Tx{t: t, opts: opts.withDefaults()}
}
