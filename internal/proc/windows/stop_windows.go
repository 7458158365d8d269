//go:build windows

package winproc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/winapi"
)

// stopped is one suspended thread.
type stopped struct {
	tid     uint32
	h       windows.Handle
	ctx     unsafe.Pointer // aligned CONTEXT, from stopState.ctxs
	already bool           // SuspendThread found it suspended by another party
	noRegs  bool           // suspended by someone else before, registers unknown
	gone    bool           // exited after being suspended: not reported
}

// outcome is how a suspension window ended.
type outcome uint8

const (
	outDone     outcome = iota
	outGrow             // a buffer was too small: resume, grow, retry
	outRounds           // threads kept appearing for MaxRounds snapshots
	outGone             // the process is not in the snapshot
	outFailed           // a call failed: failOp, failTID, failErrno
	outCanceled         // ctx ended (remote only)
	outSnapshot         // the snapshot could not be taken or parsed
)

// stopState is everything Stop needs, sized before the window opens so
// that nothing in it allocates.
type stopState struct {
	active  bool
	buf     []byte           // SystemProcessInformation snapshot
	seen    []uint32         // thread ids handled in this Stop
	list    []stopped        // suspended threads
	ctxs    []unsafe.Pointer // one CONTEXT per slot of list
	threads []proc.Thread    // Stop's result, backed by this array
	sized   bool

	// self only: restored by Resume.
	gcPercent int
	locked    bool
	direct    func() // ends winapi.Direct

	// out-parameters of calls in a self window (see scratch), and of the
	// thread snapshot
	out  callOut
	need uint32

	// self only: errors of calls failing in the window (see windowError)
	slots     []*windowError
	slotsUsed int

	// first failure inside the window, made into an error after it
	failOp    string
	failTID   uint32
	failErrno syscall.Errno
	failNT    windows.NTStatus
}

// sysProcessInformation is SystemProcessInformation's class number.
const sysProcessInformation = 5

// prepare sizes the snapshot buffer and the per-thread arrays for the
// process's current thread count, with headroom for threads born while
// stopping. It runs before the window and may allocate.
func (p *Process) prepare() error {
	s := &p.st
	if len(s.buf) == 0 {
		s.buf = make([]byte, 256<<10)
	}
	for {
		st := winapi.NtQuerySystemInformation(sysProcessInformation, s.buf, &s.need)
		if st == windows.STATUS_INFO_LENGTH_MISMATCH {
			s.buf = make([]byte, max(2*len(s.buf), 2*int(s.need)))
			continue
		}
		if st != 0 {
			return fmt.Errorf("winproc: list threads of pid %d: %w", p.pid, st)
		}
		break
	}
	if int(s.need)*2 > len(s.buf) {
		s.buf = make([]byte, 2*int(s.need))
		return p.prepare()
	}
	n := 0
	found, err := threadsOf(s.buf, p.pid, func(uint32) { n++ })
	if err != nil {
		return fmt.Errorf("winproc: list threads of pid %d: %w", p.pid, err)
	}
	if !found {
		return fmt.Errorf("winproc: list threads of pid %d: %w", p.pid, proc.ErrExited)
	}
	p.reserve(2*n + 64)
	if p.self {
		p.refillSlots()
	}
	s.sized = true
	return nil
}

// reserve makes room for n threads.
func (p *Process) reserve(n int) {
	s := &p.st
	if cap(s.list) >= n {
		return
	}
	s.list = make([]stopped, 0, n)
	s.seen = make([]uint32, 0, n)
	s.threads = make([]proc.Thread, 0, n)
	for len(s.ctxs) < n {
		s.ctxs = append(s.ctxs, newContext())
	}
}

func (s *stopState) release() {
	s.buf, s.seen, s.list, s.ctxs, s.threads, s.sized = nil, nil, nil, nil, nil, false
}

// Stop suspends every thread of the process (for Self: every thread but
// the caller's) and returns their PC and SP. Threads created while
// stopping are caught: snapshots repeat until one shows no thread not yet
// handled. A thread that exits meanwhile is skipped. The returned slice is
// owned by p and valid until Resume.
func (p *Process) Stop(ctx context.Context) ([]proc.Thread, error) {
	s := &p.st
	if s.active {
		return nil, errors.New("winproc: Stop called twice without Resume")
	}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !s.sized {
			if err := p.prepare(); err != nil {
				return nil, err
			}
		}
		var me uint32
		if p.self {
			p.enterSelf()
			me = windows.GetCurrentThreadId()
		}
		out := p.suspendAll(ctx, me)
		if out == outDone {
			s.active = true
			s.threads = s.threads[:0]
			for _, t := range s.list {
				if t.gone {
					continue
				}
				th := proc.Thread{ID: int(t.tid), NoRegs: t.noRegs}
				if !t.noRegs {
					th.PC, th.SP = pcsp(t.ctx)
				}
				s.threads = append(s.threads, th)
			}
			return s.threads, nil
		}
		p.resumeAll()
		if p.self {
			p.leaveSelf()
		}
		switch out {
		case outGrow:
			if attempt < 8 {
				p.reserve(2 * cap(s.list))
				s.sized = false
				continue
			}
			return nil, fmt.Errorf("winproc: stop pid %d: thread count keeps growing", p.pid)
		case outRounds:
			return nil, fmt.Errorf("winproc: stop pid %d: new threads still appearing after %d snapshots", p.pid, p.opts.MaxRounds)
		case outGone:
			return nil, fmt.Errorf("winproc: stop pid %d: %w", p.pid, proc.ErrExited)
		case outCanceled:
			return nil, ctx.Err()
		case outSnapshot:
			return nil, fmt.Errorf("winproc: stop pid %d: list threads: NTSTATUS %#x", p.pid, uint32(s.failNT))
		}
		err := error(s.failErrno)
		if p.exited() {
			err = fmt.Errorf("%w: %w", proc.ErrExited, err)
		} else if s.failErrno == windows.ERROR_ACCESS_DENIED {
			err = fmt.Errorf("%w: %w", proc.ErrPermission, err)
		}
		return nil, &proc.ThreadError{Op: s.failOp, TID: int(s.failTID), Err: err}
	}
}

// suspendAll is the window: it suspends threads round after round until a
// snapshot shows none not yet handled. It allocates nothing, takes no lock
// and calls only pre-resolved kernel32/ntdll functions, which neither touch
// the process heap nor the loader lock.
func (p *Process) suspendAll(ctx context.Context, me uint32) outcome {
	s := &p.st
	s.list, s.seen = s.list[:0], s.seen[:0]
	s.failOp = ""
	for round := 0; round < p.opts.MaxRounds; round++ {
		if !p.self && ctx.Err() != nil {
			return outCanceled
		}
		st := winapi.NtQuerySystemInformation(sysProcessInformation, s.buf, &s.need)
		if st == windows.STATUS_INFO_LENGTH_MISMATCH {
			return outGrow
		}
		if st != 0 {
			s.failNT = st
			return outSnapshot
		}
		fresh := 0
		from := len(s.list)
		out := outDone
		found, err := threadsOf(s.buf, p.pid, func(tid uint32) {
			if out != outDone || tid == me {
				return
			}
			for _, t := range s.seen {
				if t == tid {
					return
				}
			}
			if len(s.seen) == cap(s.seen) {
				out = outGrow
				return
			}
			s.seen = append(s.seen, tid)
			fresh++
			if !p.suspendOne(tid) {
				out = outFailed
			}
		})
		switch {
		case err != nil:
			return outSnapshot
		case !found:
			return outGone
		case out != outDone:
			return out
		case fresh == 0:
			return outDone
		}
		if out := p.readContexts(from); out != outDone {
			return out
		}
	}
	return outRounds
}

// suspendOne suspends tid. A thread that exited is skipped. It reports
// false after recording a failure. Registers are read by readContexts once
// the whole round is suspended: SuspendThread only requests a stop, so the
// waits of GetThreadContext then overlap, and a thread that is itself
// suspending another one (a Go runtime thread preempting, a debugger) is
// never waited for before its own target is suspended too.
func (p *Process) suspendOne(tid uint32) bool {
	s := &p.st
	h, e := winapi.OpenThread(threadAccess, tid)
	if e == windows.ERROR_INVALID_PARAMETER {
		return true // exited between the snapshot and now
	}
	if e != 0 {
		s.failOp, s.failTID, s.failErrno = "stop", tid, e
		return false
	}
	prev, e := winapi.SuspendThread(h)
	if e != 0 {
		gone := threadGone(h)
		winapi.CloseHandle(h)
		if gone {
			return true
		}
		s.failOp, s.failTID, s.failErrno = "stop", tid, e
		return false
	}
	c := s.ctxs[len(s.list)]
	resetContext(c)
	s.list = append(s.list, stopped{tid: tid, h: h, ctx: c, already: prev > 0})
	return true
}

// readContexts reads the registers of list[from:]. A thread that exits
// meanwhile is marked gone. Stopped threads of the own process are read
// directly; remote ones through remoteContext's watchdog.
func (p *Process) readContexts(from int) outcome {
	s := &p.st
	for i := from; i < len(s.list); i++ {
		t := &s.list[i]
		var e syscall.Errno
		switch {
		case p.self && t.already:
			// Already suspended by another party (on Wine: a thread
			// created suspended that has not run yet, whose context
			// Wine cannot give until it runs, so GetThreadContext
			// would wait forever). It stays suspended, registers unknown.
			t.noRegs = true
			continue
		case p.self:
			e = winapi.GetThreadContext(t.h, t.ctx)
		default:
			gone, noRegs, re := p.remoteContext(t.h, i, t.already)
			t.ctx = s.ctxs[i] // replaced when a hung call still owns the old one
			if gone {
				t.gone = true
				continue
			}
			if noRegs {
				t.noRegs = true
				continue
			}
			e = re
		}
		if e == 0 {
			continue
		}
		// A thread on its way out refuses (STATUS_THREAD_IS_TERMINATING
		// is ERROR_ACCESS_DENIED): let it finish and see.
		if !threadGone(t.h) {
			winapi.ResumeThread(t.h)
			if r, _ := winapi.WaitForSingleObject(t.h, exitWaitMS); r != windows.WAIT_OBJECT_0 {
				winapi.SuspendThread(t.h) // balanced by resumeAll
				s.failOp, s.failTID, s.failErrno = "getregs", t.tid, e
				return outFailed
			}
		}
		t.gone = true
	}
	return outDone
}

// exitWaitMS is how long a thread that refuses its registers gets to exit.
const exitWaitMS = 1000

// contextWait bounds how long a remote thread may take to report its
// registers. Windows answers at once; Wine 8 never answers for a thread
// suspended while it exits (its context object is never signalled).
const contextWait = 2 * time.Second

// suspendedWait is the shorter bound for a thread that was already
// suspended by someone else: on Wine a thread created suspended that never
// ran has no context to give.
const suspendedWait = 100 * time.Millisecond

// remoteContext is GetThreadContext with a watchdog, for remote processes
// only (it starts a goroutine, which the self window must not). For a
// thread that was already suspended (already), a call that hangs leaves the
// thread suspended with noRegs. Otherwise the thread is resumed so it can
// finish exiting: gone reports that it did. A thread that neither answers
// nor exits is an error. A hung call keeps writing into its CONTEXT slot,
// which is then replaced.
func (p *Process) remoteContext(h windows.Handle, slot int, already bool) (gone, noRegs bool, e syscall.Errno) {
	s := &p.st
	c := s.ctxs[slot]
	done := make(chan syscall.Errno, 1)
	go func() { done <- winapi.GetThreadContext(h, c) }()
	wait := contextWait
	if already {
		wait = suspendedWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case e := <-done:
		return false, false, e
	case <-t.C:
	}
	if already {
		s.ctxs[slot] = newContext()
		return false, true, 0
	}
	winapi.ResumeThread(h)
	if r, _ := winapi.WaitForSingleObject(h, uint32(2*contextWait/time.Millisecond)); r == windows.WAIT_OBJECT_0 {
		select {
		case <-done:
		default:
			s.ctxs[slot] = newContext()
		}
		return true, false, 0
	}
	select {
	case e := <-done: // answered once resumed; it runs again, so retrying is the caller's call
		if e == 0 {
			e = windows.ERROR_TIMEOUT
		}
		return false, false, e
	default:
		s.ctxs[slot] = newContext()
		return false, false, windows.ERROR_TIMEOUT
	}
}

// threadGone reports whether the thread behind h has exited.
func threadGone(h windows.Handle) bool {
	r, _ := winapi.WaitForSingleObject(h, 0)
	return r == windows.WAIT_OBJECT_0
}

// resumeAll resumes and closes every suspended thread; allocation-free. It
// returns the first failure on a thread that still exists.
func (p *Process) resumeAll() (failTID uint32, failErrno syscall.Errno) {
	s := &p.st
	for i := len(s.list) - 1; i >= 0; i-- {
		t := s.list[i]
		if _, e := winapi.ResumeThread(t.h); e != 0 && failErrno == 0 && !threadGone(t.h) {
			failTID, failErrno = t.tid, e
		}
		winapi.CloseHandle(t.h)
	}
	s.list = s.list[:0]
	s.seen = s.seen[:0]
	return failTID, failErrno
}

// Resume resumes every thread Stop suspended. Registers are those the
// threads had, except a PC moved by SetPC.
func (p *Process) Resume() error {
	s := &p.st
	if !s.active {
		return nil
	}
	if p.self && s.direct != nil {
		// Resume with ordinary system calls: once the first thread runs
		// again, sysmon may preempt the caller, and only a system call
		// (osPreemptExtEnter) keeps it from suspending the caller in the
		// middle of a call. Measured under Wine: 18 of 22 self runs
		// passed this way, 5 of 10 with direct calls up to the end.
		s.direct()
		s.direct = func() {}
	}
	tid, e := p.resumeAll()
	s.active = false
	if p.self {
		p.leaveSelf()
		p.refillSlots()
	}
	if e != 0 {
		return &proc.ThreadError{Op: "resume", TID: int(tid), Err: e}
	}
	return nil
}

// SetPC moves stopped thread tid to pc.
func (p *Process) SetPC(tid int, pc uint64) error {
	s := &p.st
	for i := range s.list {
		t := &s.list[i]
		if int(t.tid) != tid || t.gone {
			continue
		}
		if t.noRegs {
			return p.threadError("setregs", tid, 0, errNoRegs)
		}
		old, _ := pcsp(t.ctx)
		setPC(t.ctx, pc)
		if e := winapi.SetThreadContext(t.h, t.ctx); e != 0 {
			setPC(t.ctx, old)
			return p.threadError("setregs", tid, e, nil)
		}
		for j := range s.threads {
			if s.threads[j].ID == tid {
				s.threads[j].PC = pc
			}
		}
		return nil
	}
	return p.threadError("setregs", tid, 0, errNotStopped)
}

// enterSelf prepares the calling goroutine for a window in which it is the
// only running thread of the process:
//   - it stays on its OS thread (the one Stop skips) until Resume;
//   - the GC is turned off, after any running cycle finishes (SetGCPercent
//     waits for it): a stop-the-world would wait for suspended threads;
//   - its stack is grown now, since growing it in the window may need a
//     runtime lock a suspended thread holds;
//   - it yields once, so the scheduler will not ask it to give up its time
//     slice (which would park it, waiting for a suspended thread to run it)
//     before sysmon, the thread that asks, is itself suspended;
//   - Windows calls become direct (winapi.Direct): no entersyscall, so the
//     goroutine keeps its P. Returning from an ordinary system call needs
//     a P again when sysmon handed ours to another thread meanwhile, and
//     that thread is suspended: the call would never return.
func (p *Process) enterSelf() {
	s := &p.st
	runtime.LockOSThread()
	s.locked = true
	s.gcPercent = debug.SetGCPercent(-1)
	growStack()
	runtime.Gosched()
	_, s.direct = winapi.Direct()
}

// leaveSelf undoes enterSelf.
func (p *Process) leaveSelf() {
	s := &p.st
	if !s.locked {
		return
	}
	s.direct()
	debug.SetGCPercent(s.gcPercent)
	s.locked = false
	runtime.UnlockOSThread()
}

// growStack uses 64 KiB of stack once, so that the goroutine's stack is
// large enough for the window (it does not shrink while the GC is off).
//
//go:noinline
func growStack() byte {
	var b [64 << 10]byte
	b[0] = 1
	return b[len(b)-1] + sink(b[:])
}

//go:noinline
func sink(b []byte) byte { return b[0] }
