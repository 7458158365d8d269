//go:build linux && (amd64 || arm64)

package ptrace

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// thread is the tracer's view of one traced thread. Only the tracer
// goroutine touches it.
type thread struct {
	tid int
	// wantStop: the thread should end up (and stay) in a PTRACE_EVENT_STOP.
	// Any other stop is passed through (signals delivered, events resumed).
	wantStop bool
	// stopped: the thread sits in a PTRACE_EVENT_STOP we hold.
	stopped bool
	// group: that stop is a group-stop (SIGSTOP & co.): resume with
	// PTRACE_LISTEN so the process stays stopped for its job control.
	group bool
	// interrupted: a PTRACE_INTERRUPT is pending (any ptrace-stop consumes it).
	interrupted bool
	// stepping: the injector owns this thread's wait status right now.
	stepping bool
	// foreign: created by a clone without CLONE_THREAD (a new process that
	// TRACECLONE attached anyway): detached at its first stop.
	foreign bool
	// zombie: the thread has exited but is not reaped: a thread group
	// leader that called pthread_exit stays so until the whole process
	// exits. It runs no code and can never stop: Stop skips it.
	zombie bool
	// untraced: a leader that was already a zombie at Attach (it cannot be
	// seized); never waited for.
	untraced bool
	// regs as read by Stop (and changed by SetPC).
	regs regs
}

// Process is a process traced through ptrace. It implements proc.Process.
// Methods must not be called concurrently (one transaction at a time).
type Process struct {
	pid  int
	mem  *os.File
	reqs chan func()
	done chan struct{}
	// sigch receives SIGCHLD: the kernel sends it to the tracer on every
	// tracee stop and exit, which is what wakes the tracer to wait.
	sigch     chan os.Signal
	tracerTID int
	closed    bool

	exited atomic.Bool
	execed atomic.Bool

	// Owned by the tracer goroutine.
	threads  map[int]*thread
	wantStop bool // process-wide: new threads start wanting to stop
	holding  bool // Stop succeeded and Resume has not run
	gadget   uint64
	// testHookStopping runs in Stop after the interrupts are sent (tests
	// cancel the context there to exercise the unwind path).
	testHookStopping func()
}

var _ proc.Process = (*Process)(nil)

// Attach seizes every thread of process pid. The process keeps running;
// Stop stops it. Threads it creates from now on are traced automatically.
//
// A ptrace attachment is exclusive: while another tracer (another agent,
// a debugger) is attached, the kernel refuses to seize. Attach then waits,
// backing off with jitter from 5 ms to 200 ms, and tries again until ctx
// ends; it then fails with a *proc.HeldError (matching proc.ErrHeld and the
// context's error) naming the tracer's process and command name. Whatever
// was seized before such a refusal is released first, so two agents never
// hold parts of one process. Because the attachment lasts until Close,
// being attached is what serialises agents on Linux: an agent that reads
// the applied set and then writes cannot race another one.
// If the tracer is the calling process itself (another Process of it),
// Attach fails at once with a *proc.HeldError whose Self is set: the caller
// may be the one holding it.
//
// A real refusal (no tracer: another user, Yama, no CAP_SYS_PTRACE) wraps
// proc.ErrPermission at once; a process that is gone (or a zombie) wraps
// proc.ErrExited.
//
// While attached, the tracer listens for SIGCHLD through os/signal (the
// kernel's wake-up for tracee stops). A caller that is also the target's
// parent must not wait for it (exec.Cmd.Wait) before Close: a parent in the
// tracer's thread group receives the ptrace stops too, and would swallow them.
func Attach(ctx context.Context, pid int, opts Options) (*Process, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("ptrace: attach: invalid pid %d", pid)
	}
	backoff := heldBackoff
	var last *heldSeize // the last refusal waited on
	for {
		p, err := attachOnce(ctx, pid)
		var held *heldSeize
		switch {
		case err == nil:
			return p, nil
		case errors.As(err, &held) && !held.held.Self:
			last = held
		case last != nil && ctx.Err() != nil:
			// The context ended during a new attempt: the holder is still
			// the reason.
		default:
			return nil, err
		}
		if testHookHeld != nil {
			testHookHeld(last.held)
		}
		wait := time.NewTimer(jitter(backoff))
		select {
		case <-ctx.Done():
			wait.Stop()
			last.held.Err = ctx.Err()
			return nil, last
		case <-wait.C:
		}
		backoff = min(2*backoff, maxHeldBackoff)
	}
}

// heldSeize is a seize refused because another tracer holds the thread: a
// *proc.HeldError with the threads involved.
type heldSeize struct {
	tid, tracer int
	held        *proc.HeldError
}

// Error names the thread refused and the tracer thread, then the holder.
func (e *heldSeize) Error() string {
	return fmt.Sprintf("ptrace: attach pid %d (thread %d traced by thread %d): %v", e.held.PID, e.tid, e.tracer, e.held)
}

// Unwrap returns the *proc.HeldError.
func (e *heldSeize) Unwrap() error { return e.held }

// How Attach backs off while another tracer holds the process: a detaching
// agent is gone within milliseconds, a patching one within its commit.
const (
	heldBackoff    = 5 * time.Millisecond
	maxHeldBackoff = 200 * time.Millisecond
)

// testHookHeld, when set, sees every refusal Attach waits on (tests use it
// to release the holder only once Attach is known to be waiting).
var testHookHeld func(*proc.HeldError)

// jitter spreads d over [d/2, 3d/2), so agents backing off from one another
// do not retry in lockstep.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d)
}

// attachOnce is one attempt of Attach. On failure everything seized so far
// is detached (shutdown), and the tracer thread ends.
func attachOnce(ctx context.Context, pid int) (*Process, error) {
	if gone(pid) {
		return nil, fmt.Errorf("ptrace: attach pid %d: %w", pid, proc.ErrExited)
	}
	if err := checkArch(pid); err != nil {
		return nil, err
	}
	p := &Process{
		pid:     pid,
		reqs:    make(chan func()),
		done:    make(chan struct{}),
		sigch:   make(chan os.Signal, 1),
		threads: map[int]*thread{},
	}
	signal.Notify(p.sigch, unix.SIGCHLD)
	ready := make(chan int)
	go p.loop(ready)
	p.tracerTID = <-ready

	if err := p.do(func() error { return p.seizeAll(ctx) }); err != nil {
		p.shutdown()
		return nil, err
	}
	mem, err := os.OpenFile(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR, 0)
	if errors.Is(err, unix.ESRCH) {
		// A zombie leader has no address space: open it through a live
		// thread. The descriptor pins the address space, not the thread.
		if tid := liveThread(pid); tid != 0 {
			mem, err = os.OpenFile(fmt.Sprintf("/proc/%d/task/%d/mem", pid, tid), os.O_RDWR, 0)
		}
	}
	if err != nil {
		p.shutdown()
		if errors.Is(err, os.ErrPermission) {
			return nil, fmt.Errorf("ptrace: open memory of pid %d: %w: %w", pid, proc.ErrPermission, err)
		}
		return nil, fmt.Errorf("ptrace: open memory of pid %d: %w", pid, p.exitedOr(err))
	}
	p.mem = mem
	return p, nil
}

// checkArch refuses a process whose executable is not for this tracer's
// architecture (register layouts and syscall numbers would be wrong). An
// unreadable executable is let through: GETREGSET checks sizes again.
func checkArch(pid int) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	var hdr [20]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil || string(hdr[:4]) != "\x7fELF" {
		return nil
	}
	want := map[arch.Arch]uint16{arch.AMD64: 62, arch.ARM64: 183}[thisArch]
	if hdr[4] != 2 || uint16(hdr[18])|uint16(hdr[19])<<8 != want {
		return fmt.Errorf("ptrace: pid %d is not a 64-bit %s process (ELF class %d, machine %d)", pid, thisArch, hdr[4], uint16(hdr[18])|uint16(hdr[19])<<8)
	}
	return nil
}

// loop is the tracer: one goroutine locked to one OS thread for the life of
// the Process, running every ptrace request. It never unlocks: when it
// returns, the thread exits and the kernel detaches whatever is still
// traced (resuming it), a last line of defence after Close's own detach.
func (p *Process) loop(ready chan<- int) {
	runtime.LockOSThread()
	defer close(p.done)
	ready <- unix.Gettid()
	// SIGCHLD is the wake-up; the ticker only guards against a missed one.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case f, ok := <-p.reqs:
			if !ok {
				return
			}
			f()
		case <-p.sigch:
		case <-tick.C:
		}
		// Between requests the target runs: answer its clone events,
		// pass its signals on, reap its exited threads.
		p.poll()
	}
}

var errClosed = errors.New("ptrace: process is closed")

// do runs f on the tracer thread and returns its error.
func (p *Process) do(f func() error) error {
	if p.closed {
		return errClosed
	}
	errc := make(chan error, 1)
	select {
	case p.reqs <- func() { errc <- f() }:
	case <-p.done:
		return errClosed
	}
	return <-errc
}

// shutdown ends the tracer after a failed Attach.
func (p *Process) shutdown() {
	_ = p.do(func() error { p.detachAll(); return nil })
	p.closed = true
	close(p.reqs)
	<-p.done
	signal.Stop(p.sigch)
}

// PID returns the process ID.
func (p *Process) PID() int { return p.pid }

// Arch returns the tracer's architecture, which Attach checked the target has.
func (p *Process) Arch() arch.Arch { return thisArch }

// Caps says what this back-end can do: threads really stop, a stopped
// thread's PC can move, and the process is not the caller's own.
func (p *Process) Caps() proc.Caps { return proc.Caps{StopThreads: true, SetPC: true} }

// gone reports whether process pid no longer runs: no /proc entry, or a
// zombie (dead, waiting to be reaped).
func gone(pid int) bool {
	if !dead(taskState(pid, pid)) {
		return false
	}
	// A zombie leader (it called pthread_exit) may still have live threads.
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return true
	}
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil && tid != pid && !dead(taskState(pid, tid)) {
			return false
		}
	}
	return true
}

// taskState returns the state letter of a thread from /proc (0 if gone).
func taskState(pid, tid int) byte {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		return 0
	}
	// The state follows the parenthesised command name, which may contain ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return 0
	}
	return b[i+2]
}

// dead: the state of an exited (or vanished) thread.
func dead(st byte) bool { return st == 0 || st == 'Z' || st == 'X' }

// exitedOr returns proc.ErrExited (wrapping err) when the process is gone,
// else err.
func (p *Process) exitedOr(err error) error {
	if p.exited.Load() || gone(p.pid) {
		p.exited.Store(true)
		return fmt.Errorf("pid %d: %w (%v)", p.pid, proc.ErrExited, err)
	}
	return err
}

// deadOr is exitedOr for the tracer thread: a thread that vanished
// (ESRCH) is usually a sign of the whole process dying (SIGKILL), whose
// exit reports follow within moments; collect them before deciding.
func (p *Process) deadOr(err error) error {
	if errors.Is(err, unix.ESRCH) || gone(p.pid) {
		p.settle()
	}
	return p.exitedOr(err)
}

// settle gives a process that may be dying a moment to report its exit.
func (p *Process) settle() {
	if !p.exited.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_ = p.waitUntil(ctx, p.exited.Load)
		cancel()
	}
}

func (p *Process) errExited() error {
	if p.execed.Load() {
		return fmt.Errorf("ptrace: pid %d executed a new program: %w", p.pid, proc.ErrExited)
	}
	return fmt.Errorf("ptrace: pid %d: %w", p.pid, proc.ErrExited)
}

// usable is the check every operation starts with.
func (p *Process) usable() error {
	if p.closed {
		return errClosed
	}
	if p.exited.Load() || p.execed.Load() {
		return p.errExited()
	}
	return nil
}

// seizeAll attaches the leader, then every thread /proc lists, until a
// listing shows nothing new. A thread created between two listings by a
// not-yet-seized thread shows up in the next one; one created by a seized
// thread is auto-attached (TRACECLONE) and adopted by tracerOf.
func (p *Process) seizeAll(ctx context.Context) error {
	if taskState(p.pid, p.pid) == 'Z' {
		// The leader called pthread_exit; the other threads live on.
		p.threads[p.pid] = &thread{tid: p.pid, zombie: true, untraced: true}
	} else {
		if tracer, err := p.seizeThread(p.pid); err != nil {
			return p.seizeError(p.pid, tracer, err)
		}
		p.threads[p.pid] = &thread{tid: p.pid}
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, err := p.scanTasks()
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return p.aliveOrExited()
}

// seizeError turns a failed PTRACE_SEIZE into ErrPermission, ErrExited or,
// when a tracer held the thread (tracer, from seizeThread), a *heldSeize,
// with the reason a user can act on.
func (p *Process) seizeError(tid, tracer int, err error) error {
	switch {
	case errors.Is(err, unix.ESRCH):
		p.exited.Store(tid == p.pid)
		return fmt.Errorf("ptrace: attach pid %d: %w", p.pid, proc.ErrExited)
	case errors.Is(err, unix.EPERM):
		if gone(p.pid) {
			p.exited.Store(true)
			return fmt.Errorf("ptrace: attach pid %d: %w (zombie)", p.pid, proc.ErrExited)
		}
		if tracer != 0 {
			// Busy, not forbidden: another tracer holds the thread.
			// TracerPid is the tracing thread; name its process.
			tgid, comm := threadProcess(tracer)
			held := &proc.HeldError{PID: p.pid, HolderPID: tgid, Holder: comm, Lock: "ptrace", Self: tgid == os.Getpid()}
			return &heldSeize{tid: tid, tracer: tracer, held: held}
		}
		why := "needs CAP_SYS_PTRACE or the same user (and Yama ptrace_scope allowing it)"
		if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil {
			why += "; kernel.yama.ptrace_scope=" + strings.TrimSpace(string(b))
		}
		return fmt.Errorf("ptrace: attach pid %d (thread %d): %w: %w (%s)", p.pid, tid, proc.ErrPermission, err, why)
	}
	return fmt.Errorf("ptrace: attach pid %d (thread %d): %w", p.pid, tid, err)
}

// seizeThread seizes tid. A refusal comes with the tracer thread /proc
// showed right after it (0: none), read once so that the refusal is
// classified by what was seen, not by a second look after the tracer may
// have let go. A refusal while no tracer is shown is tried once more: a
// tracer that detached between the refusal and the look would otherwise
// pass for a permission refusal.
func (p *Process) seizeThread(tid int) (tracer int, err error) {
	for try := 0; ; try++ {
		err = seize(tid)
		if !errors.Is(err, unix.EPERM) {
			return 0, err
		}
		if tracer = tracerPid(p.pid, tid); tracer != 0 || try == 1 {
			return tracer, err
		}
	}
}

// threadProcess returns the process (thread group) a thread belongs to and
// the process's command name; 0 and "" when the thread is gone.
func threadProcess(tid int) (tgid int, comm string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", tid))
	if err != nil {
		return 0, ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Tgid:"); ok {
			tgid, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if tgid == 0 {
		return 0, ""
	}
	c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tgid))
	if err != nil {
		return tgid, ""
	}
	return tgid, strings.TrimSpace(string(c))
}

// tracerPid reads the TracerPid of a thread (a thread ID: the tracing thread).
func tracerPid(pid, tid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "TracerPid:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// taskIDs lists the thread IDs of the process.
func (p *Process) taskIDs() ([]int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.pid))
	if err != nil {
		return nil, p.exitedOr(err)
	}
	ids := make([]int, 0, len(ents))
	for _, e := range ents {
		if id, err := strconv.Atoi(e.Name()); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// scanTasks seizes (or adopts) every listed thread not yet known and
// returns how many it found. A thread already traced by our tracer thread
// was auto-attached by TRACECLONE before its creator reported the clone.
func (p *Process) scanTasks() (int, error) {
	ids, err := p.taskIDs()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, tid := range ids {
		if _, ok := p.threads[tid]; ok {
			continue
		}
		n++
		if tracer, err := p.seizeThread(tid); err != nil {
			switch {
			case errors.Is(err, unix.ESRCH):
				continue // exited meanwhile
			case errors.Is(err, unix.EPERM) && tracer == p.tracerTID:
				p.adopt(tid)
				continue
			}
			return n, p.seizeError(tid, tracer, err)
		}
		t := &thread{tid: tid, wantStop: p.wantStop}
		p.threads[tid] = t
		if t.wantStop {
			p.interrupt(t)
		}
	}
	return n, nil
}

// adopt records a thread the kernel attached for us (TRACECLONE). It starts
// in a PTRACE_EVENT_STOP of its own, which handle answers.
func (p *Process) adopt(tid int) {
	if _, ok := p.threads[tid]; ok {
		return
	}
	t := &thread{tid: tid, wantStop: p.wantStop}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", p.pid, tid)); err != nil {
		t.foreign = true
	}
	p.threads[tid] = t
}

func (p *Process) sortedThreads() []*thread {
	ts := make([]*thread, 0, len(p.threads))
	for _, t := range p.threads {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].tid < ts[j].tid })
	return ts
}

// waitOne collects one pending status of tid without blocking. ok is
// false when there is none; a tid the kernel no longer knows (reaped
// elsewhere) reads as an exit.
func waitOne(tid int) (ws waitStatus, ok bool) {
	for {
		var st unix.WaitStatus
		n, err := unix.Wait4(tid, &st, unix.WALL|unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil: // ECHILD
			return 0, true
		}
		return waitStatus(st), n == tid
	}
}

// poll handles every pending event of every thread (never blocking) and
// reports whether there was any.
func (p *Process) poll() bool {
	any := false
	for again := true; again; {
		again = false
		for _, t := range p.sortedThreads() {
			if t.stepping || t.untraced {
				continue
			}
			if ws, ok := waitOne(t.tid); ok {
				p.handle(t, ws)
				again, any = true, true
			}
		}
	}
	return any
}

// handle moves a thread on after a wait status. Every ptrace-stop but a
// PTRACE_EVENT_STOP is passed through at once (signals delivered, events
// continued); a thread that wants to stop is re-interrupted first, because
// any ptrace-stop consumes a pending PTRACE_INTERRUPT. So a held thread is
// always in a PTRACE_EVENT_STOP, inside get_signal(), where its registers
// can be changed and the kernel's syscall-restart logic has not run yet.
func (p *Process) handle(t *thread, ws waitStatus) {
	if ws.exited() {
		p.forget(t)
		return
	}
	if !ws.stopped() {
		return
	}
	sig := ws.sig()
	switch ws.event() {
	case unix.PTRACE_EVENT_STOP:
		t.interrupted = false
		if t.foreign {
			_ = detach(t.tid)
			delete(p.threads, t.tid)
			return
		}
		t.group = isStopSignal(sig)
		if t.wantStop {
			t.stopped = true
			return
		}
		p.release(t)
	case unix.PTRACE_EVENT_CLONE, unix.PTRACE_EVENT_FORK, unix.PTRACE_EVENT_VFORK:
		if msg, err := unix.PtraceGetEventMsg(t.tid); err == nil {
			p.adopt(int(msg))
		}
		p.pass(t, 0)
	case unix.PTRACE_EVENT_EXEC:
		// The image is gone; nothing we hold (addresses, modules) is valid.
		p.execed.Store(true)
		p.pass(t, 0)
	case 0:
		// Signal-delivery-stop: deliver it.
		p.pass(t, int(sig))
	default:
		p.pass(t, 0)
	}
}

// pass resumes t from a stop other than PTRACE_EVENT_STOP, delivering sig.
func (p *Process) pass(t *thread, sig int) {
	t.stopped = false
	if t.wantStop {
		p.interrupt(t)
	}
	_ = cont(t.tid, sig) // ESRCH: it died meanwhile; its exit status follows
}

// release resumes t from its PTRACE_EVENT_STOP: PTRACE_LISTEN for a
// group-stop (the process stays stopped as its job control wants, and we
// hear of SIGCONT), PTRACE_CONT otherwise.
func (p *Process) release(t *thread) error {
	t.stopped = false
	var err error
	if t.group {
		err = listen(t.tid)
	} else {
		err = cont(t.tid, 0)
	}
	if err != nil && !errors.Is(err, unix.ESRCH) {
		return &proc.ThreadError{Op: "resume", TID: t.tid, Err: err}
	}
	return nil
}

func (p *Process) interrupt(t *thread) {
	if err := interrupt(t.tid); err == nil {
		t.interrupted = true
	}
}

// forget drops an exited thread. The leader's exit is reported only once
// every other thread is gone: it is the process's exit.
func (p *Process) forget(t *thread) {
	delete(p.threads, t.tid)
	if t.tid == p.pid {
		p.exited.Store(true)
		return
	}
	for _, o := range p.threads {
		if !o.zombie {
			return
		}
	}
	p.exited.Store(true)
}

// spinFor is how long waitUntil polls before sleeping on SIGCHLD.
const spinFor = 50 * time.Microsecond

// waitUntil handles events until cond holds, sleeping on SIGCHLD between
// polls. It fails when the process exits or ctx ends.
func (p *Process) waitUntil(ctx context.Context, cond func() bool) error {
	var timer *time.Timer
	start := time.Now()
	for {
		p.poll()
		if cond() {
			return nil
		}
		if p.exited.Load() {
			return p.errExited()
		}
		if time.Since(start) < spinFor {
			// An interrupted thread stops within microseconds; the SIGCHLD
			// path (signal handler, runtime signal goroutine, channel, and
			// back to this locked thread) costs several thread hand-offs.
			// Polling for a short while keeps the pause short.
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		if timer == nil {
			// A backstop in case a SIGCHLD notification was coalesced away.
			timer = time.NewTimer(5 * time.Millisecond)
			defer timer.Stop()
		} else {
			timer.Reset(5 * time.Millisecond)
		}
		select {
		case <-p.sigch:
		case <-timer.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (p *Process) allStopped() bool {
	for _, t := range p.threads {
		if !t.stopped && !t.zombie {
			return false
		}
	}
	return true
}

// markZombies flags threads that exited but are not reaped (see
// thread.zombie): waiting for them to stop would wait forever.
func (p *Process) markZombies() {
	for _, t := range p.threads {
		if !t.stopped && !t.zombie && taskState(p.pid, t.tid) == 'Z' {
			t.zombie = true
		}
	}
}

// stopAll interrupts every thread and waits until each one is held in a
// PTRACE_EVENT_STOP or has exited; threads born meanwhile are held too.
// On error the caller resumes (resumeAll) what was stopped.
func (p *Process) stopAll(ctx context.Context) error {
	p.wantStop = true
	for {
		for _, t := range p.sortedThreads() {
			t.wantStop = true
			if !t.stopped && !t.interrupted {
				p.interrupt(t)
			}
		}
		if p.testHookStopping != nil {
			p.testHookStopping()
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		// Interrupted threads stop within microseconds; one that has not
		// after a moment may be a zombie, which never will.
		short, cancel := context.WithTimeout(ctx, 2*time.Millisecond)
		err := p.waitUntil(short, p.allStopped)
		cancel()
		if err != nil && ctx.Err() == nil && !p.exited.Load() {
			p.markZombies()
			err = p.waitUntil(ctx, p.allStopped)
		}
		if err != nil {
			return err
		}
		// Every thread created by a traced thread is known by now (its
		// creator reported the clone before it could stop). The listing
		// guards against anything else.
		n, err := p.scanTasks()
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	return p.aliveOrExited()
}

// resumeAll lets every held thread run again. Threads still on their way
// to a stop are released by handle when the stop arrives.
func (p *Process) resumeAll() error {
	p.wantStop = false
	p.holding = false
	var errs []error
	for _, t := range p.sortedThreads() {
		t.wantStop = false
		if t.stopped {
			if err := p.release(t); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.poll()
	return errors.Join(errs...)
}

// Stop stops every thread and returns their registers' PC and SP, sorted
// by thread ID. Threads that exit while being stopped are left out; threads
// created meanwhile are stopped too. On any error no thread is left stopped.
// A thread blocked in a syscall reports the PC after its syscall
// instruction on amd64 (see SetPC for restarts).
func (p *Process) Stop(ctx context.Context) ([]proc.Thread, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	var out []proc.Thread
	err := p.do(func() error {
		err := p.stopAll(ctx)
		if err == nil && p.execed.Load() {
			// Learnt while stopping: the image the caller patches is gone.
			err = p.errExited()
		}
		if err != nil {
			_ = p.resumeAll()
			return err
		}
		for _, t := range p.sortedThreads() {
			if t.zombie {
				continue
			}
			if err := getRegs(t.tid, &t.regs); err != nil {
				_ = p.resumeAll()
				return p.deadOr(&proc.ThreadError{Op: "getregs", TID: t.tid, Err: err})
			}
			out = append(out, proc.Thread{ID: t.tid, PC: regsPC(&t.regs), SP: regsSP(&t.regs)})
		}
		p.holding = true
		return nil
	})
	if err != nil {
		if p.exited.Load() || p.execed.Load() {
			return nil, p.errExited()
		}
		return nil, fmt.Errorf("ptrace: stop pid %d: %w", p.pid, err)
	}
	return out, nil
}

// SetPC moves a stopped thread to pc (written at once).
//
// Threads stopped while blocked in a syscall: on amd64 the PC is the
// address after the `syscall` instruction and, for a syscall the kernel
// restarts, the kernel rewinds it by 2 on resume (orig_rax and rax say so);
// on arm64 the kernel has already rewound the PC to the `svc` before the
// stop. SetPC keeps that state, so a thread moved to the copy of the same
// instruction stream (a detour trampoline) re-executes the copied syscall
// instruction, as it would have the original. Moving such a thread to
// unrelated code is the caller's responsibility.
func (p *Process) SetPC(tid int, pc uint64) error {
	if err := p.usable(); err != nil {
		return err
	}
	return p.do(func() error {
		t := p.threads[tid]
		if t == nil || !t.stopped || !p.holding {
			return &proc.ThreadError{Op: "setregs", TID: tid, Err: errors.New("thread is not stopped by Stop")}
		}
		r := t.regs
		setRegsPC(&r, pc)
		if err := setRegs(tid, &r); err != nil {
			return p.deadOr(&proc.ThreadError{Op: "setregs", TID: tid, Err: err})
		}
		t.regs = r
		return nil
	})
}

// Resume lets every thread Stop stopped run again (with any PC set by
// SetPC). It returns proc.ErrExited if the process died meanwhile.
func (p *Process) Resume() error {
	if p.closed {
		return errClosed
	}
	err := p.do(p.resumeAll)
	if p.exited.Load() {
		return p.errExited()
	}
	return err
}

// Close detaches from every thread (resuming them) and ends the tracer.
func (p *Process) Close() error {
	if p.closed {
		return nil
	}
	err := p.do(func() error { return p.detachAll() })
	p.closed = true
	close(p.reqs)
	<-p.done
	signal.Stop(p.sigch)
	if p.mem != nil {
		if cerr := p.mem.Close(); err == nil {
			err = cerr
		}
	}
	if p.exited.Load() {
		return nil
	}
	return err
}

// detachAll brings every thread into a stop (PTRACE_DETACH needs one) and
// detaches it. A thread that does not stop in time is released by the
// kernel when the tracer thread exits.
func (p *Process) detachAll() error {
	if p.exited.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := p.stopAll(ctx)
	var errs []error
	if err != nil && !p.exited.Load() {
		errs = append(errs, err)
	}
	for _, t := range p.sortedThreads() {
		if t.stopped {
			if err := detach(t.tid); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, &proc.ThreadError{Op: "detach", TID: t.tid, Err: err})
			}
			delete(p.threads, t.tid)
		}
	}
	p.holding = false
	return errors.Join(errs...)
}

// aliveOrExited returns nil while any known thread is not a zombie; with
// nothing but zombies the process is dying (its exit reports follow), so it
// settles them and reports the exit.
func (p *Process) aliveOrExited() error {
	for _, t := range p.threads {
		if !t.zombie {
			return nil
		}
	}
	p.settle()
	p.exited.Store(true)
	return p.errExited()
}
