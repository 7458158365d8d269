//go:build windows

package winapi

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"
)

var (
	kernel32 = windows.NewLazySystemDLL("kernel32.dll")
	ntdll    = windows.NewLazySystemDLL("ntdll.dll")

	procVirtualAllocEx           = kernel32.NewProc("VirtualAllocEx")
	procVirtualFreeEx            = kernel32.NewProc("VirtualFreeEx")
	procVirtualProtectEx         = kernel32.NewProc("VirtualProtectEx")
	procVirtualQueryEx           = kernel32.NewProc("VirtualQueryEx")
	procReadProcessMemory        = kernel32.NewProc("ReadProcessMemory")
	procWriteProcessMemory       = kernel32.NewProc("WriteProcessMemory")
	procFlushInstructionCache    = kernel32.NewProc("FlushInstructionCache")
	procOpenThread               = kernel32.NewProc("OpenThread")
	procSuspendThread            = kernel32.NewProc("SuspendThread")
	procResumeThread             = kernel32.NewProc("ResumeThread")
	procGetThreadContext         = kernel32.NewProc("GetThreadContext")
	procSetThreadContext         = kernel32.NewProc("SetThreadContext")
	procWaitForSingleObject      = kernel32.NewProc("WaitForSingleObject")
	procCloseHandle              = kernel32.NewProc("CloseHandle")
	procCreateRemoteThread       = kernel32.NewProc("CreateRemoteThread")
	procGetSystemInfo            = kernel32.NewProc("GetSystemInfo")
	procNtQuerySystemInformation = ntdll.NewProc("NtQuerySystemInformation")
	procGetLastError             = kernel32.NewProc("GetLastError")
)

// all lists every proc so Load can resolve them up front.
var all = []*windows.LazyProc{
	procVirtualAllocEx, procVirtualFreeEx, procVirtualProtectEx, procVirtualQueryEx,
	procReadProcessMemory, procWriteProcessMemory, procFlushInstructionCache,
	procOpenThread, procSuspendThread, procResumeThread, procGetThreadContext,
	procSetThreadContext, procWaitForSingleObject, procCloseHandle,
	procCreateRemoteThread, procGetSystemInfo, procNtQuerySystemInformation,
	procGetLastError,
}

// direct counts the callers that asked for direct calls (see Direct).
var direct atomic.Int32

// Direct switches every call of this package to direct calls until the
// returned function is called: the Windows function runs on the calling
// goroutine's stack without the runtime's system-call bookkeeping
// (entersyscall/exitsyscall), so the goroutine keeps its P and never waits
// for the scheduler when the call returns. That matters while the caller
// has suspended every other thread of its process: returning from an
// ordinary system call may need a P that a suspended thread holds, and
// then waits forever. Direct calls block their P while they run; use them
// only for the short calls of such a window. On other than windows/amd64 it
// reports false and changes nothing. Call Load first.
//
// Pointer arguments reach direct calls like any other, so they point to
// the heap (see callN) and a stack that grows for the 16 KiB
// direct frame does not lose a write.
func Direct() (on bool, off func()) {
	if !directSupported {
		return false, func() {}
	}
	direct.Add(1)
	return true, func() { direct.Add(-1) }
}

// callN calls proc with the first n of args (at most 6 when direct) and
// returns its result and the thread's last error. Arguments come in an
// array, not a variadic slice, so that a call allocates nothing.
//
// Pointers reach it as uintptr through the callK functions below, each
// marked uintptrescapes (as syscall.SyscallN and LazyProc.Call are): a
// pointer converted to uintptr in the argument list of a call to one of
// them escapes to the heap, since a goroutine stack may move before Windows
// writes through it and the write would land in the old stack. Callers
// write the conversion in the call expression, never into a variable
// first; out-parameters a caller must not allocate (a self window) are
// passed in by it, in memory it owns.
func callN(p *windows.LazyProc, n int, args [7]uintptr) (uintptr, syscall.Errno) {
	if directSupported && direct.Load() > 0 && n <= 6 {
		r := directCall6(p.Addr(), args[0], args[1], args[2], args[3], args[4], args[5])
		e := directCall6(procGetLastError.Addr(), 0, 0, 0, 0, 0, 0)
		return r, syscall.Errno(e)
	}
	r, _, e := syscall.SyscallN(p.Addr(), args[:n]...)
	return r, e
}

//go:uintptrescapes
func call1(p *windows.LazyProc, a0 uintptr) (uintptr, syscall.Errno) {
	return callN(p, 1, [7]uintptr{a0})
}

//go:uintptrescapes
func call2(p *windows.LazyProc, a0, a1 uintptr) (uintptr, syscall.Errno) {
	return callN(p, 2, [7]uintptr{a0, a1})
}

//go:uintptrescapes
func call3(p *windows.LazyProc, a0, a1, a2 uintptr) (uintptr, syscall.Errno) {
	return callN(p, 3, [7]uintptr{a0, a1, a2})
}

//go:uintptrescapes
func call4(p *windows.LazyProc, a0, a1, a2, a3 uintptr) (uintptr, syscall.Errno) {
	return callN(p, 4, [7]uintptr{a0, a1, a2, a3})
}

//go:uintptrescapes
func call5(p *windows.LazyProc, a0, a1, a2, a3, a4 uintptr) (uintptr, syscall.Errno) {
	return callN(p, 5, [7]uintptr{a0, a1, a2, a3, a4})
}

//go:uintptrescapes
func call7(p *windows.LazyProc, a0, a1, a2, a3, a4, a5, a6 uintptr) (uintptr, syscall.Errno) {
	return callN(p, 7, [7]uintptr{a0, a1, a2, a3, a4, a5, a6})
}

// Load resolves every declared export now. A lazy resolution takes the
// loader lock, which a thread suspended by the caller may hold: call Load
// before suspending threads of the calling process.
func Load() error {
	for _, p := range all {
		if err := p.Find(); err != nil {
			return fmt.Errorf("winapi: %w", err)
		}
	}
	return nil
}

// errno turns the last-error value of a failed call into an Errno that is
// never 0, so callers can test errno != 0.
func errno(e syscall.Errno) syscall.Errno {
	if e == 0 {
		return syscall.EINVAL
	}
	return e
}

// VirtualAllocEx reserves and/or commits memory in process at addr (0: the
// system chooses).
func VirtualAllocEx(process windows.Handle, addr, size uintptr, allocType, protect uint32) (uintptr, syscall.Errno) {
	r, e := call5(procVirtualAllocEx, uintptr(process), addr, size, uintptr(allocType), uintptr(protect))
	if r == 0 {
		return 0, errno(e)
	}
	return r, 0
}

// VirtualFreeEx releases (MEM_RELEASE, size 0) or decommits memory in process.
func VirtualFreeEx(process windows.Handle, addr, size uintptr, freeType uint32) syscall.Errno {
	r, e := call4(procVirtualFreeEx, uintptr(process), addr, size, uintptr(freeType))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// VirtualProtectEx changes the protection of [addr, addr+size) in process and
// stores the first page's previous protection in *old.
func VirtualProtectEx(process windows.Handle, addr, size uintptr, prot uint32, old *uint32) syscall.Errno {
	r, e := call5(procVirtualProtectEx, uintptr(process), addr, size, uintptr(prot), uintptr(unsafe.Pointer(old)))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// VirtualQueryEx describes the region of process containing addr.
func VirtualQueryEx(process windows.Handle, addr uintptr, mbi *windows.MemoryBasicInformation) syscall.Errno {
	r, e := call4(procVirtualQueryEx, uintptr(process), addr, uintptr(unsafe.Pointer(mbi)), unsafe.Sizeof(*mbi))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// ReadProcessMemory copies len(p) bytes at addr of process into p and
// stores how many it copied in *n.
func ReadProcessMemory(process windows.Handle, addr uintptr, p []byte, n *uintptr) syscall.Errno {
	*n = 0
	if len(p) == 0 {
		return 0
	}
	r, e := call5(procReadProcessMemory, uintptr(process), addr, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(unsafe.Pointer(n)))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// WriteProcessMemory copies p to addr of process and stores how many bytes
// it wrote in *n. Windows makes read-only code pages writable for the call and
// restores them (and flushes the instruction cache) itself.
func WriteProcessMemory(process windows.Handle, addr uintptr, p []byte, n *uintptr) syscall.Errno {
	*n = 0
	if len(p) == 0 {
		return 0
	}
	r, e := call5(procWriteProcessMemory, uintptr(process), addr, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), uintptr(unsafe.Pointer(n)))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// FlushInstructionCache makes code written at [addr, addr+size) of process
// visible to instruction fetch.
func FlushInstructionCache(process windows.Handle, addr, size uintptr) syscall.Errno {
	r, e := call3(procFlushInstructionCache, uintptr(process), addr, size)
	if r == 0 {
		return errno(e)
	}
	return 0
}

// OpenThread opens thread tid with access.
func OpenThread(access uint32, tid uint32) (windows.Handle, syscall.Errno) {
	r, e := call3(procOpenThread, uintptr(access), 0, uintptr(tid))
	if r == 0 {
		return 0, errno(e)
	}
	return windows.Handle(r), 0
}

// SuspendThread increments thread's suspend count and returns the previous
// count. The thread may still run briefly: GetThreadContext waits for it to
// really stop.
func SuspendThread(thread windows.Handle) (uint32, syscall.Errno) {
	r, e := call1(procSuspendThread, uintptr(thread))
	if uint32(r) == 0xFFFFFFFF {
		return 0, errno(e)
	}
	return uint32(r), 0
}

// ResumeThread decrements thread's suspend count and returns the previous count.
func ResumeThread(thread windows.Handle) (uint32, syscall.Errno) {
	r, e := call1(procResumeThread, uintptr(thread))
	if uint32(r) == 0xFFFFFFFF {
		return 0, errno(e)
	}
	return uint32(r), 0
}

// GetThreadContext fills the CONTEXT at ctx (a *CONTEXTAMD64 or
// *CONTEXTARM64 with ContextFlags set, 16-byte aligned) from thread.
func GetThreadContext(thread windows.Handle, ctx unsafe.Pointer) syscall.Errno {
	r, e := call2(procGetThreadContext, uintptr(thread), uintptr(ctx))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// SetThreadContext sets the registers ContextFlags selects from the CONTEXT at ctx.
func SetThreadContext(thread windows.Handle, ctx unsafe.Pointer) syscall.Errno {
	r, e := call2(procSetThreadContext, uintptr(thread), uintptr(ctx))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// WaitForSingleObject waits up to ms milliseconds for h to be signalled and
// returns WAIT_OBJECT_0, WAIT_TIMEOUT or WAIT_FAILED.
func WaitForSingleObject(h windows.Handle, ms uint32) (uint32, syscall.Errno) {
	r, e := call2(procWaitForSingleObject, uintptr(h), uintptr(ms))
	if uint32(r) == windows.WAIT_FAILED {
		return uint32(r), errno(e)
	}
	return uint32(r), 0
}

// CloseHandle closes h.
func CloseHandle(h windows.Handle) syscall.Errno {
	r, e := call1(procCloseHandle, uintptr(h))
	if r == 0 {
		return errno(e)
	}
	return 0
}

// CreateRemoteThread starts a thread in process at start with parameter
// param and returns its handle and id.
func CreateRemoteThread(process windows.Handle, start, param uintptr) (windows.Handle, uint32, syscall.Errno) {
	var tid uint32
	r, e := call7(procCreateRemoteThread, uintptr(process), 0, 0, start, param, 0, uintptr(unsafe.Pointer(&tid)))
	if r == 0 {
		return 0, 0, errno(e)
	}
	return windows.Handle(r), tid, 0
}

// GetSystemInfo returns the page size, allocation granularity and address
// range of the machine.
func GetSystemInfo() SystemInfo {
	var si SystemInfo
	call1(procGetSystemInfo, uintptr(unsafe.Pointer(&si)))
	return si
}

// NtQuerySystemInformation calls ntdll's function of that name into buf and
// returns the raw NTSTATUS (0 on success). It neither allocates nor touches
// the process heap, which makes it the thread lister that is safe while
// threads of the caller's own process are suspended.
func NtQuerySystemInformation(class uint32, buf []byte, retLen *uint32) windows.NTStatus {
	r, _ := call4(procNtQuerySystemInformation, uintptr(class), uintptr(unsafe.Pointer(unsafe.SliceData(buf))), uintptr(len(buf)), uintptr(unsafe.Pointer(retLen)))
	return windows.NTStatus(r)
}
