//go:build linux && (amd64 || arm64)

package ptrace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Raw ptrace requests: x/sys/unix lacks PTRACE_SEIZE with options,
// PTRACE_LISTEN and a GETREGSET for amd64. Every call must come from the
// tracer thread.

func ptraceRaw(req int, tid int, addr, data uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_PTRACE, uintptr(req), uintptr(tid), addr, data, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

// seizeOptions: auto-attach threads the target creates (TRACECLONE), and
// report exec (the image we patch is gone). No EXITKILL: if the tracer
// dies, the target must live on.
const seizeOptions = unix.PTRACE_O_TRACECLONE | unix.PTRACE_O_TRACEEXEC

func seize(tid int) error { return ptraceRaw(unix.PTRACE_SEIZE, tid, 0, seizeOptions) }

func interrupt(tid int) error { return ptraceRaw(unix.PTRACE_INTERRUPT, tid, 0, 0) }

func listen(tid int) error { return ptraceRaw(unix.PTRACE_LISTEN, tid, 0, 0) }

func cont(tid, sig int) error { return ptraceRaw(unix.PTRACE_CONT, tid, 0, uintptr(sig)) }

func singleStep(tid int) error { return ptraceRaw(unix.PTRACE_SINGLESTEP, tid, 0, 0) }

func detach(tid int) error { return ptraceRaw(unix.PTRACE_DETACH, tid, 0, 0) }

func getRegSet(tid int, note int, p unsafe.Pointer, size uintptr) error {
	iov := unix.Iovec{Base: (*byte)(p)}
	iov.SetLen(int(size))
	if err := ptraceRaw(unix.PTRACE_GETREGSET, tid, uintptr(note), uintptr(unsafe.Pointer(&iov))); err != nil {
		return err
	}
	if uintptr(iov.Len) != size {
		// A 32-bit (compat) task has a smaller register set.
		return fmt.Errorf("ptrace: register set %#x of thread %d has %d bytes, want %d (not a 64-bit %s thread)", note, tid, iov.Len, size, thisArch)
	}
	return nil
}

func setRegSet(tid int, note int, p unsafe.Pointer, size uintptr) error {
	iov := unix.Iovec{Base: (*byte)(p)}
	iov.SetLen(int(size))
	return ptraceRaw(unix.PTRACE_SETREGSET, tid, uintptr(note), uintptr(unsafe.Pointer(&iov)))
}

func getRegs(tid int, r *regs) error {
	return getRegSet(tid, unix.NT_PRSTATUS, unsafe.Pointer(r), unsafe.Sizeof(*r))
}

func setRegs(tid int, r *regs) error {
	return setRegSet(tid, unix.NT_PRSTATUS, unsafe.Pointer(r), unsafe.Sizeof(*r))
}

// waitStatus decodes a wait4 status the way ptrace reports stops.
type waitStatus uint32

// exited: the thread is gone (normal exit or killed by a signal).
func (w waitStatus) exited() bool  { return w&0x7f != 0x7f }
func (w waitStatus) stopped() bool { return w&0xff == 0x7f }
func (w waitStatus) sig() unix.Signal {
	return unix.Signal((w >> 8) & 0xff)
}

// event is the PTRACE_EVENT_* of a stop (status>>16), 0 for a signal stop.
func (w waitStatus) event() int { return int(w>>16) & 0xff }

func isStopSignal(s unix.Signal) bool {
	return s == unix.SIGSTOP || s == unix.SIGTSTP || s == unix.SIGTTIN || s == unix.SIGTTOU
}
