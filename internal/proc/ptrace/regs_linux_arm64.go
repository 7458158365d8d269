//go:build linux && arm64

package ptrace

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// regs is the NT_PRSTATUS register set (struct user_pt_regs).
type regs = unix.PtraceRegs

const thisArch = arch.ARM64

// syscallInsn is `svc #0` (0xd4000001, little-endian).
var syscallInsn = []byte{0x01, 0x00, 0x00, 0xd4}

const insnAlign = 4

// Syscall numbers (the generic table arm64 uses).
const (
	sysMmap     = unix.SYS_MMAP
	sysMprotect = unix.SYS_MPROTECT
	sysMunmap   = unix.SYS_MUNMAP
)

func regsPC(r *regs) uint64        { return r.Pc }
func regsSP(r *regs) uint64        { return r.Sp }
func setRegsPC(r *regs, pc uint64) { r.Pc = pc }

func setSyscall(r *regs, gadget, nr uint64, args [6]uint64) {
	r.Pc = gadget
	r.Regs[8] = nr
	copy(r.Regs[:6], args[:])
}

func syscallDone(r *regs, gadget uint64) (uint64, bool) {
	return r.Regs[0], r.Pc == gadget+uint64(len(syscallInsn))
}

// extraRegs is the syscall number the kernel keeps outside user_pt_regs
// (NT_ARM_SYSTEM_CALL): -1 when the thread is not inside a syscall. The
// restart logic after a signal stop reads it.
type extraRegs struct{ syscallNo int32 }

func getExtra(tid int) (extraRegs, error) {
	var e extraRegs
	err := getRegSet(tid, unix.NT_ARM_SYSTEM_CALL, unsafe.Pointer(&e.syscallNo), unsafe.Sizeof(e.syscallNo))
	return e, err
}

func setExtra(tid int, e extraRegs) error {
	return setRegSet(tid, unix.NT_ARM_SYSTEM_CALL, unsafe.Pointer(&e.syscallNo), unsafe.Sizeof(e.syscallNo))
}

// clearSyscall sets the syscall number to -1 so that no restart logic
// touches the injected registers on the way back to user mode.
func clearSyscall(tid int) error { return setExtra(tid, extraRegs{syscallNo: -1}) }

// Kernel-internal errnos of an interrupted syscall that will be restarted.
const (
	errRestartSys    = 512
	errRestartNoIntr = 513
	errRestartNoHand = 514
	errRestartBlock  = 516
)

// injectable refuses a thread whose registers could not be restored
// exactly. On arm64 the restart of an interrupted syscall is prepared
// before the thread reaches get_signal() (do_signal rewinds pc to the svc,
// puts orig_x0 back into x0 and forgets the syscall number, "so that a
// debugger will see the already changed PC"), so a thread held in a
// PTRACE_EVENT_STOP normally shows syscallNo -1 and its original
// arguments: restoring user_pt_regs re-executes the syscall exactly as the
// kernel would. The one difference: an -ERESTART_RESTARTBLOCK syscall
// (nanosleep, poll, futex with a timeout) would have continued through
// restart_syscall with the remaining time; after an injection it is
// re-executed with its original arguments (a relative timeout starts
// over). The refusal below guards the case where a syscall is still in
// progress with a restart code in x0 (not reachable through our stops):
// orig_x0 is not visible to ptrace and our own svc overwrites it.
func injectable(r *regs, e extraRegs) error {
	if e.syscallNo == -1 {
		return nil
	}
	switch -int64(r.Regs[0]) {
	case errRestartSys, errRestartNoIntr, errRestartNoHand, errRestartBlock:
		return fmt.Errorf("ptrace: thread is inside restartable syscall %d (orig_x0 cannot be restored on arm64)", e.syscallNo)
	}
	return nil
}

// flushICache makes code written at [addr, addr+size) visible to
// instruction fetch. A write through /proc/PID/mem into a VM_EXEC mapping
// goes through access_remote_vm -> copy_to_user_page, which on arm64 calls
// flush_ptrace_access -> sync_icache_aliases (D-cache clean to PoU and
// I-cache invalidate) for the written bytes. A write into a mapping that was
// not executable at the time is not flushed, and a later mprotect(PROT_EXEC)
// only syncs pages whose PG_dcache_clean bit is clear. So flushing re-writes
// the executable parts of the range with their own bytes: the kernel then
// does the maintenance for us, with no code injected into the target.
func (p *Process) flushICache(addr, size uint64) error {
	maps, err := p.readMaps()
	if err != nil {
		return err
	}
	end := addr + size
	for _, m := range maps {
		if m.End <= addr || m.Start >= end || m.Prot&proc.ProtExec == 0 {
			continue
		}
		lo, hi := max(m.Start, addr), min(m.End, end)
		buf := make([]byte, hi-lo)
		if err := p.ReadAt(buf, lo); err != nil {
			return err
		}
		if err := p.WriteAt(buf, lo); err != nil {
			return err
		}
	}
	return nil
}

// userTop is the end of the largest user address space (48-bit VA); on a
// kernel with fewer VA bits, candidates above its end fail and are skipped.
const userTop = 1<<48 - 65536
