//go:build linux && (amd64 || arm64)

package ptrace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

var pageSize = uint64(os.Getpagesize())

func roundUp(n uint64) uint64 { return (n + pageSize - 1) &^ (pageSize - 1) }

// injectTimeout bounds one injected syscall. The syscalls we run (mmap,
// mprotect, munmap) do not block, so this is only reached when the thread
// is wedged; the caller's context cannot cut an injection short, because
// the registers must be restored before anything else.
const injectTimeout = 10 * time.Second

// maxCandidates bounds the placement attempts of one AllocNear.
const maxCandidates = 64

func protBits(p proc.Prot) uint64 {
	var b uint64
	if p&proc.ProtRead != 0 {
		b |= unix.PROT_READ
	}
	if p&proc.ProtWrite != 0 {
		b |= unix.PROT_WRITE
	}
	if p&proc.ProtExec != 0 {
		b |= unix.PROT_EXEC
	}
	return b
}

// sysErr decodes a raw syscall return: -4095..-1 is -errno.
func sysErr(r uint64) error {
	if v := int64(r); v < 0 && v >= -4095 {
		return unix.Errno(-v)
	}
	return nil
}

// AllocNear maps size bytes (rounded up to pages) with prot, every byte
// within reach of near. It picks free gaps from /proc/PID/maps, nearest
// first, and maps each candidate with MAP_FIXED_NOREPLACE by injecting mmap
// into a thread, so a range the target took meanwhile is never clobbered.
// It works whether or not the process is stopped (a running process has
// one thread stopped for the injection only). No gap in reach wraps
// proc.ErrNoMemory.
func (p *Process) AllocNear(ctx context.Context, near, size, reach uint64, prot proc.Prot) (uint64, error) {
	if err := p.usable(); err != nil {
		return 0, err
	}
	n := roundUp(size)
	fail := func(err error) (uint64, error) {
		return 0, &proc.AccessError{Op: "alloc", Addr: near, Size: n, Err: err}
	}
	if size == 0 || n < size {
		return fail(fmt.Errorf("ptrace: invalid size %d", size))
	}
	var addr uint64
	err := p.do(func() error {
		maps, err := p.readMaps()
		if err != nil {
			return err
		}
		cands := candidates(maps, near, n, reach, userTop, pageSize)
		var last error
		for i, a := range cands {
			if i == maxCandidates {
				break
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			r, err := p.remoteSyscall(ctx, sysMmap, a, n, protBits(prot),
				unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0)
			if err != nil {
				return err
			}
			if last = sysErr(r); last != nil {
				continue // EEXIST: the target mapped it meanwhile
			}
			if r != a {
				// Kernels before 4.17 read MAP_FIXED_NOREPLACE as a mere hint.
				if _, err := p.remoteSyscall(ctx, sysMunmap, r, n); err != nil {
					return err
				}
				continue
			}
			addr = a
			return nil
		}
		if last != nil {
			return fmt.Errorf("%w (%d candidates, last mmap: %v)", proc.ErrNoMemory, min(len(cands), maxCandidates), last)
		}
		return fmt.Errorf("%w (%d candidates)", proc.ErrNoMemory, len(cands))
	})
	if err != nil {
		return fail(err)
	}
	return addr, nil
}

// Protect sets the protection of the pages covering [addr, addr+size) by
// injecting mprotect, and returns the previous protection of the first page.
func (p *Process) Protect(addr, size uint64, prot proc.Prot) (proc.Prot, error) {
	q, err := p.Query(addr)
	if err != nil {
		return 0, &proc.AccessError{Op: "protect", Addr: addr, Size: size, Err: errors.Unwrap(err)}
	}
	start, end := addr&^(pageSize-1), roundUp(addr+size)
	if err := p.syscallOp("protect", sysMprotect, start, end-start, protBits(prot)); err != nil {
		return 0, err
	}
	if prot&proc.ProtExec != 0 {
		if err := p.flushICache(start, end-start); err != nil {
			return 0, &proc.AccessError{Op: "protect", Addr: start, Size: end - start, Err: err}
		}
	}
	return q.Prot, nil
}

// Free unmaps memory AllocNear returned, by injecting munmap.
func (p *Process) Free(addr, size uint64) error {
	if addr%pageSize != 0 {
		return &proc.AccessError{Op: "free", Addr: addr, Size: size, Err: unix.EINVAL}
	}
	return p.syscallOp("free", sysMunmap, addr, roundUp(size))
}

// syscallOp injects a syscall whose arguments are (addr, size, ...) and
// reports a failure as an AccessError.
func (p *Process) syscallOp(op string, nr uint64, args ...uint64) error {
	if err := p.usable(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), injectTimeout)
	defer cancel()
	err := p.do(func() error {
		r, err := p.remoteSyscall(ctx, nr, args...)
		if err != nil {
			return err
		}
		return sysErr(r)
	})
	if err != nil {
		return &proc.AccessError{Op: op, Addr: args[0], Size: args[1], Err: err}
	}
	return nil
}

// findGadget returns the address of a syscall instruction in the target's
// executable memory, the vDSO first (always mapped, never patched), then
// any other executable mapping. Jumping straight to those bytes runs a
// syscall even if they sit inside a longer instruction, and nothing is
// written into the target's code: threads still running are unaffected.
func (p *Process) findGadget() (uint64, error) {
	if p.gadget != 0 {
		buf := make([]byte, len(syscallInsn))
		if p.ReadAt(buf, p.gadget) == nil && bytes.Equal(buf, syscallInsn) {
			return p.gadget, nil
		}
		p.gadget = 0
	}
	maps, err := p.readMaps()
	if err != nil {
		return 0, err
	}
	var order []mapping
	for _, m := range maps {
		if m.Prot&proc.ProtExec == 0 || m.Path == "[vsyscall]" {
			continue
		}
		if m.Path == "[vdso]" {
			order = append([]mapping{m}, order...)
		} else {
			order = append(order, m)
		}
	}
	const scan = 1 << 20 // per mapping: enough to find one in any libc
	buf := make([]byte, 64<<10)
	for _, m := range order {
		for off := m.Start; off < m.End && off < m.Start+scan; off += uint64(len(buf)) {
			chunk := buf[:min(uint64(len(buf)), m.End-off)]
			if err := p.ReadAt(chunk, off); err != nil {
				if errors.Is(err, proc.ErrExited) {
					return 0, err
				}
				break
			}
			for i := 0; ; {
				j := bytes.Index(chunk[i:], syscallInsn)
				if j < 0 {
					break
				}
				a := off + uint64(i+j)
				if a%insnAlign == 0 {
					p.gadget = a
					return a, nil
				}
				i += j + 1
			}
		}
	}
	// Reads fail all over a process that is being killed.
	p.settle()
	return 0, p.exitedOr(errors.New("ptrace: no syscall instruction in the target's executable memory"))
}

// remoteSyscall runs syscall nr(args) in the target and returns its raw
// result. With the process stopped it borrows a stopped thread; otherwise
// it stops one thread for the injection and resumes it afterwards. Every
// register of the borrowed thread is restored on every path.
func (p *Process) remoteSyscall(ctx context.Context, nr uint64, args ...uint64) (uint64, error) {
	gadget, err := p.findGadget()
	if err != nil {
		return 0, err
	}
	var a [6]uint64
	copy(a[:], args)
	t, temp, err := p.injectionThread(ctx)
	if err == nil && (p.execed.Load() || p.exited.Load()) {
		err = p.errExited()
	}
	if err != nil {
		if temp {
			t.wantStop = false
			_ = p.release(t)
		}
		return 0, err
	}
	if temp {
		defer func() {
			t.wantStop = false
			if t.stopped {
				_ = p.release(t)
			}
		}()
	}
	return p.inject(t, gadget, nr, a)
}

// injectionThread picks a thread held in a PTRACE_EVENT_STOP whose
// registers can be restored exactly. temp says it was stopped just for
// this and must be resumed.
func (p *Process) injectionThread(ctx context.Context) (*thread, bool, error) {
	var reasons []error
	try := func(t *thread) bool {
		var r regs
		if err := getRegs(t.tid, &r); err != nil {
			reasons = append(reasons, &proc.ThreadError{Op: "getregs", TID: t.tid, Err: err})
			return false
		}
		e, err := getExtra(t.tid)
		if err == nil {
			err = injectable(&r, e)
		}
		if err != nil {
			reasons = append(reasons, &proc.ThreadError{Op: "inject", TID: t.tid, Err: err})
			return false
		}
		return true
	}
	ts := p.sortedThreads()
	if p.holding {
		// Prefer a thread outside a group-stop: it goes back to exactly
		// the same kind of stop either way, but this is the common case.
		for _, group := range []bool{false, true} {
			for _, t := range ts {
				if t.stopped && t.group == group && try(t) {
					return t, false, nil
				}
			}
		}
		return nil, false, p.deadOr(fmt.Errorf("ptrace: no stopped thread can run an injected syscall: %w", errors.Join(reasons...)))
	}
	for _, t := range ts {
		if t.foreign || t.zombie {
			continue
		}
		if taskState(p.pid, t.tid) == 'Z' {
			t.zombie = true
			continue
		}
		t.wantStop = true
		if !t.stopped && !t.interrupted {
			p.interrupt(t)
		}
		_, known := p.threads[t.tid]
		err := p.waitUntil(ctx, func() bool { _, known = p.threads[t.tid]; return !known || t.stopped })
		if err == nil && known && try(t) {
			return t, true, nil
		}
		t.wantStop = false
		if t.stopped {
			_ = p.release(t)
		}
		if err != nil {
			return nil, false, err
		}
	}
	return nil, false, p.deadOr(fmt.Errorf("ptrace: no thread can run an injected syscall: %w", errors.Join(reasons...)))
}

// inject runs one syscall in t (held in a PTRACE_EVENT_STOP): save the
// registers, point the PC at the gadget with the syscall's registers,
// single-step over it, read the result, then restore every register and
// put the thread back into a PTRACE_EVENT_STOP.
func (p *Process) inject(t *thread, gadget, nr uint64, args [6]uint64) (res uint64, err error) {
	var orig regs
	if err := getRegs(t.tid, &orig); err != nil {
		return 0, p.deadOr(&proc.ThreadError{Op: "getregs", TID: t.tid, Err: err})
	}
	extra, err := getExtra(t.tid)
	if err != nil {
		return 0, p.deadOr(&proc.ThreadError{Op: "getregs", TID: t.tid, Err: err})
	}
	work := orig
	setSyscall(&work, gadget, nr, args)
	var pending []unix.Signal
	t.stepping = true
	defer func() {
		if rerr := p.restore(t, &orig, extra, pending); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if err := setRegs(t.tid, &work); err != nil {
		return 0, p.deadOr(&proc.ThreadError{Op: "setregs", TID: t.tid, Err: err})
	}
	if err := clearSyscall(t.tid); err != nil {
		return 0, p.deadOr(&proc.ThreadError{Op: "setregs", TID: t.tid, Err: err})
	}
	deadline := time.Now().Add(injectTimeout)
	for tries := 0; tries < 16; tries++ {
		if err := singleStep(t.tid); err != nil {
			return 0, p.deadOr(&proc.ThreadError{Op: "step", TID: t.tid, Err: err})
		}
		ws, err := p.waitTid(t.tid, deadline)
		if err != nil {
			return 0, err
		}
		if ws.exited() {
			p.forget(t)
			return 0, p.errExited()
		}
		var r regs
		if err := getRegs(t.tid, &r); err != nil {
			return 0, p.deadOr(&proc.ThreadError{Op: "getregs", TID: t.tid, Err: err})
		}
		if ws.event() == 0 && ws.sig() != unix.SIGTRAP {
			// A signal arrived: hold it back, raise it again once the
			// thread is restored.
			pending = append(pending, ws.sig())
		}
		if v, done := syscallDone(&r, gadget); done {
			return v, nil
		}
		if regsPC(&r) != gadget {
			return 0, fmt.Errorf("ptrace: thread %d left the injected syscall at %#x", t.tid, regsPC(&r))
		}
	}
	return 0, fmt.Errorf("ptrace: thread %d did not run the injected syscall", t.tid)
}

// restore writes back the saved registers of t (in a ptrace-stop after the
// step) and returns it to a PTRACE_EVENT_STOP without running user code:
// with an interrupt pending, get_signal() takes the interrupt trap before
// anything else once the step's SIGTRAP is discarded by PTRACE_CONT(0). The
// syscall-restart logic only runs after that, on the real resume, with the
// restored registers.
func (p *Process) restore(t *thread, orig *regs, extra extraRegs, pending []unix.Signal) error {
	defer func() { t.stepping = false }()
	if _, ok := p.threads[t.tid]; !ok {
		return p.errExited()
	}
	if err := setRegs(t.tid, orig); err != nil {
		// ESRCH from a live thread: it is not in a stop (a step that
		// timed out). Stop it, then write the registers back.
		if !errors.Is(err, unix.ESRCH) || p.reStop(t) != nil || setRegs(t.tid, orig) != nil {
			return p.deadOr(&proc.ThreadError{Op: "setregs", TID: t.tid, Err: err})
		}
	}
	if err := setExtra(t.tid, extra); err != nil {
		return p.deadOr(&proc.ThreadError{Op: "setregs", TID: t.tid, Err: err})
	}
	t.stepping = false
	t.stopped = false
	t.wantStop = true
	p.interrupt(t)
	if err := cont(t.tid, 0); err != nil {
		return p.deadOr(&proc.ThreadError{Op: "resume", TID: t.tid, Err: err})
	}
	ctx, cancel := context.WithTimeout(context.Background(), injectTimeout)
	defer cancel()
	known := true
	if err := p.waitUntil(ctx, func() bool { _, known = p.threads[t.tid]; return !known || t.stopped }); err != nil {
		return err
	}
	if !known {
		return p.errExited()
	}
	var now regs
	if err := getRegs(t.tid, &now); err != nil {
		return p.deadOr(&proc.ThreadError{Op: "getregs", TID: t.tid, Err: err})
	}
	if now != *orig {
		if err := setRegs(t.tid, orig); err != nil {
			return p.deadOr(&proc.ThreadError{Op: "setregs", TID: t.tid, Err: err})
		}
	}
	for _, s := range pending {
		_ = unix.Tgkill(p.pid, t.tid, s)
	}
	return nil
}

// waitTid waits for the next status of tid alone (the injector's thread,
// whose SIGTRAP must not be taken for a signal to deliver).
func (p *Process) waitTid(tid int, deadline time.Time) (waitStatus, error) {
	timer := time.NewTimer(time.Millisecond)
	defer timer.Stop()
	for {
		if ws, ok := waitOne(tid); ok {
			return ws, nil
		}
		if time.Now().After(deadline) {
			return 0, &proc.ThreadError{Op: "step", TID: tid, Err: context.DeadlineExceeded}
		}
		timer.Reset(time.Millisecond)
		select {
		case <-p.sigch:
		case <-timer.C:
		}
	}
}

// reStop brings a thread that escaped the injector back into a stop.
func (p *Process) reStop(t *thread) error {
	if err := interrupt(t.tid); err != nil {
		return err
	}
	ws, err := p.waitTid(t.tid, time.Now().Add(injectTimeout))
	if err != nil {
		return err
	}
	if ws.exited() {
		p.forget(t)
		return p.errExited()
	}
	return nil
}
