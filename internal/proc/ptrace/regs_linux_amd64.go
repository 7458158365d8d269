//go:build linux && amd64

package ptrace

import (
	"golang.org/x/sys/unix"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
)

// regs is the NT_PRSTATUS register set (struct user_regs_struct).
type regs = unix.PtraceRegs

const thisArch = arch.AMD64

// syscallInsn is `syscall`; injection single-steps over one found in the
// target's own code, so no code byte is ever written to run it.
var syscallInsn = []byte{0x0f, 0x05}

// insnAlign is the alignment a syscall instruction needs to be executable.
const insnAlign = 1

// Syscall numbers (the x86-64 table).
const (
	sysMmap     = unix.SYS_MMAP
	sysMprotect = unix.SYS_MPROTECT
	sysMunmap   = unix.SYS_MUNMAP
)

func regsPC(r *regs) uint64        { return r.Rip }
func regsSP(r *regs) uint64        { return r.Rsp }
func setRegsPC(r *regs, pc uint64) { r.Rip = pc }

// setSyscall makes r run syscall nr(args) from the instruction at gadget.
// orig_rax = -1 says "no syscall in progress", so the kernel's restart logic
// (which rewinds rip by 2 after an interrupted syscall) stays out of the way
// on the way back to user mode; the saved orig_rax is restored afterwards,
// and with it the interrupted syscall's restart.
func setSyscall(r *regs, gadget, nr uint64, args [6]uint64) {
	r.Rip = gadget
	r.Rax = nr
	r.Orig_rax = ^uint64(0)
	r.Rdi, r.Rsi, r.Rdx, r.R10, r.R8, r.R9 = args[0], args[1], args[2], args[3], args[4], args[5]
}

// syscallDone reports whether the syscall at gadget has run, and its result.
func syscallDone(r *regs, gadget uint64) (uint64, bool) {
	return r.Rax, r.Rip == gadget+uint64(len(syscallInsn))
}

// extraRegs is register state outside NT_PRSTATUS that injection changes:
// none on x86-64, where orig_rax is part of user_regs_struct.
type extraRegs struct{}

func getExtra(tid int) (extraRegs, error)              { return extraRegs{}, nil }
func setExtra(tid int, e extraRegs) error              { return nil }
func clearSyscall(tid int) error                       { return nil }
func injectable(r *regs, e extraRegs) error            { return nil }
func (p *Process) flushICache(addr, size uint64) error { return nil }

// userTop is the end of the user address space with 4-level paging
// (TASK_SIZE_MAX); mappings above it need an explicit opt-in.
const userTop = 1<<47 - 4096
