//go:build windows

package winproc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/winapi"
)

// Options tune a Process. The zero value is ready to use.
type Options struct {
	// MaxRounds bounds the thread snapshots Stop takes while new threads
	// keep appearing (0: 64). A process that creates threads faster than
	// they can be suspended makes Stop fail instead of spinning forever.
	MaxRounds int
}

// processAccess is what a remote patch needs: memory, protections, threads
// (SuspendThread on the process's threads needs no process right, but
// PROCESS_SUSPEND_RESUME documents the intent and is what a hardened
// target's DACL is checked against), and a handle to wait on for exit.
const processAccess = windows.PROCESS_VM_READ | windows.PROCESS_VM_WRITE | windows.PROCESS_VM_OPERATION |
	windows.PROCESS_QUERY_INFORMATION | windows.PROCESS_SUSPEND_RESUME | windows.SYNCHRONIZE

// threadAccess is what Stop, SetPC and Resume need on each thread.
const threadAccess = windows.THREAD_SUSPEND_RESUME | windows.THREAD_GET_CONTEXT | windows.THREAD_SET_CONTEXT |
	windows.THREAD_QUERY_LIMITED_INFORMATION | windows.SYNCHRONIZE

// Process is a Windows process opened for patching. It implements
// proc.Process. Not safe for concurrent use.
type Process struct {
	h    windows.Handle
	pid  uint32
	self bool
	opts Options
	arch arch.Arch
	gran uint64 // allocation granularity (64 KiB)
	minA uint64 // lowest and highest user address
	maxA uint64
	st   stopState
}

var _ proc.Process = (*Process)(nil)

// Open opens the process pid for patching. A pid the caller may not open
// gives an error wrapping proc.ErrPermission; a pid with no process, one
// wrapping proc.ErrExited. 32-bit (WOW64) processes are refused.
func Open(pid int, opts Options) (*Process, error) {
	if err := winapi.Load(); err != nil {
		return nil, err
	}
	if pid <= 0 || pid > 0xFFFFFFFF {
		return nil, fmt.Errorf("winproc: open pid %d: %w: not a process id", pid, proc.ErrExited)
	}
	h, err := windows.OpenProcess(processAccess, false, uint32(pid))
	if err != nil {
		return nil, openError(pid, err)
	}
	var wow bool
	if err := windows.IsWow64Process(h, &wow); err == nil && wow {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("winproc: open pid %d: %w: 32-bit (WOW64) process", pid, errors.ErrUnsupported)
	}
	if done, _ := winapi.WaitForSingleObject(h, 0); done == windows.WAIT_OBJECT_0 {
		windows.CloseHandle(h)
		return nil, fmt.Errorf("winproc: open pid %d: %w", pid, proc.ErrExited)
	}
	return newProcess(h, uint32(pid), false, opts), nil
}

// openError classifies an OpenProcess failure.
func openError(pid int, err error) error {
	switch {
	case errors.Is(err, windows.ERROR_ACCESS_DENIED):
		return fmt.Errorf("winproc: open pid %d: %w: %w", pid, proc.ErrPermission, err)
	case errors.Is(err, windows.ERROR_INVALID_PARAMETER):
		// Windows' answer for a pid no process has.
		return fmt.Errorf("winproc: open pid %d: %w: no such process: %w", pid, proc.ErrExited, err)
	}
	return fmt.Errorf("winproc: open pid %d: %w", pid, err)
}

// Self returns the calling process as a proc.Process. Stop suspends every
// other thread of the process, Go runtime threads included, so that none
// can run code being patched.
//
// Between Stop and Resume the calling goroutine is the only code running in
// the process. It must then not block (channels, mutexes: their owner may be
// suspended), not allocate (a Go heap lock may be held by a suspended
// thread), not call fmt or log, and not call a Windows function that takes
// the process heap or loader lock. Every method of Process obeys these
// rules, on failure too (see windowError); Stop also locks the goroutine
// to its thread until Resume, turns the garbage collector off (a GC
// stop-the-world would wait forever for the suspended threads), yields once
// so the scheduler does not preempt it mid-window, and grows the goroutine
// stack beforehand. Call Stop and Resume from the same goroutine.
func Self() (*Process, error) {
	if err := winapi.Load(); err != nil {
		return nil, err
	}
	return newProcess(windows.CurrentProcess(), windows.GetCurrentProcessId(), true, Options{}), nil
}

func newProcess(h windows.Handle, pid uint32, self bool, opts Options) *Process {
	si := winapi.GetSystemInfo()
	p := &Process{
		h: h, pid: pid, self: self, opts: opts,
		gran: uint64(si.AllocationGranularity),
		minA: uint64(si.MinimumApplicationAddress),
		maxA: uint64(si.MaximumApplicationAddress),
	}
	if p.gran == 0 {
		p.gran = 64 << 10
	}
	switch runtime.GOARCH {
	case "amd64":
		p.arch = arch.AMD64
	case "arm64":
		p.arch = arch.ARM64
	}
	if p.opts.MaxRounds <= 0 {
		p.opts.MaxRounds = 64
	}
	return p
}

// PID returns the process id.
func (p *Process) PID() int { return int(p.pid) }

// Arch returns the process's architecture, the caller's own: Open refuses
// WOW64 processes, and x64 emulation on ARM64 is not supported.
func (p *Process) Arch() arch.Arch { return p.arch }

// Caps: threads can be stopped and moved; Self for the own process.
func (p *Process) Caps() proc.Caps {
	return proc.Caps{StopThreads: true, SetPC: true, Self: p.self}
}

// accessError builds the AccessError of a failed memory call, its cause
// classified (exited, permission, dynamic code); inside a self window
// without allocating (see windowError).
func (p *Process) accessError(op string, addr, size uint64, e syscall.Errno) error {
	var class error
	if p.exited() {
		class = proc.ErrExited
	} else if e == windows.ERROR_ACCESS_DENIED {
		class = proc.ErrPermission
	} else if e == windows.ERROR_DYNAMIC_CODE_BLOCKED {
		class = proc.ErrDynamicCode
	}
	return p.memError(op, addr, size, e, class)
}

// exited reports whether the process has ended.
func (p *Process) exited() bool {
	if p.self {
		return false
	}
	r, _ := winapi.WaitForSingleObject(p.h, 0)
	return r == windows.WAIT_OBJECT_0
}

// callOut is heap memory for the out-parameters of Windows calls (see
// winapi's call: they must not live on a goroutine stack).
type callOut struct {
	n   uintptr
	old uint32
	mbi windows.MemoryBasicInformation
}

// scratch returns memory for out-parameters: the Process's own inside a
// self window, where allocating is not allowed and only the calling
// goroutine runs; else fresh memory, since other goroutines may call.
func (p *Process) scratch() *callOut {
	if p.self && p.st.active {
		return &p.st.out
	}
	return new(callOut)
}

// ErrPartial is wrapped by a read or write that moved fewer bytes than asked.
var ErrPartial = errors.New("winproc: partial transfer")

// ReadAt fills b from addr. A partial read is an error naming the address.
func (p *Process) ReadAt(b []byte, addr uint64) error {
	return p.transfer("read", winapi.ReadProcessMemory, b, addr)
}

// WriteAt writes b at addr with WriteProcessMemory. Windows writes through
// a read-only code page by changing its protection for the call and
// restoring it; it also flushes the instruction cache of the range.
func (p *Process) WriteAt(b []byte, addr uint64) error {
	return p.transfer("write", winapi.WriteProcessMemory, b, addr)
}

// transfer moves b to or from addr with call (Read/WriteProcessMemory); a
// partial transfer is an error naming where it stopped.
func (p *Process) transfer(op string, call func(windows.Handle, uintptr, []byte, *uintptr) syscall.Errno, b []byte, addr uint64) error {
	out := p.scratch()
	if e := call(p.h, uintptr(addr), b, &out.n); e != 0 {
		return p.accessError(op, addr, uint64(len(b)), e)
	}
	if n := out.n; int(n) != len(b) {
		return p.memError(op, addr+uint64(n), uint64(len(b))-uint64(n), 0, ErrPartial)
	}
	return nil
}

// Query returns the region of equal state and protection containing addr.
// Free and reserved regions have no protection.
func (p *Process) Query(addr uint64) (proc.Region, error) {
	out := p.scratch()
	mbi := &out.mbi
	if e := winapi.VirtualQueryEx(p.h, uintptr(addr), mbi); e != 0 {
		return proc.Region{}, p.accessError("query", addr, 0, e)
	}
	r := proc.Region{Base: uint64(mbi.BaseAddress), Size: uint64(mbi.RegionSize)}
	if mbi.State == windows.MEM_COMMIT {
		r.Prot = fromPage(mbi.Protect)
	}
	return r, nil
}

// Protect sets the protection of the pages covering [addr, addr+size) and
// returns the previous protection of the first page.
func (p *Process) Protect(addr, size uint64, prot proc.Prot) (proc.Prot, error) {
	v, err := pageProt(prot)
	if err != nil {
		return 0, &proc.AccessError{Op: "protect", Addr: addr, Size: size, Err: err}
	}
	out := p.scratch()
	if e := winapi.VirtualProtectEx(p.h, uintptr(addr), uintptr(size), v, &out.old); e != 0 {
		return 0, p.accessError("protect", addr, size, e)
	}
	return fromPage(out.old), nil
}

// AllocNear maps size bytes with prot so that every byte lies within reach
// of near. It walks the address space around near with VirtualQueryEx for
// free ranges, and tries allocation-granularity aligned addresses in them,
// nearest first (another thread of the target may take a range meanwhile).
// A process with Arbitrary Code Guard refuses executable memory: the error
// wraps proc.ErrDynamicCode.
func (p *Process) AllocNear(ctx context.Context, near, size, reach uint64, prot proc.Prot) (uint64, error) {
	v, err := pageProt(prot)
	if err != nil || size == 0 {
		if err == nil {
			err = errors.New("winproc: zero size")
		}
		return 0, &proc.AccessError{Op: "alloc", Addr: near, Size: size, Err: err}
	}
	lo, hi := p.minA, p.maxA
	if near > reach && near-reach > lo {
		lo = near - reach
	}
	if near+reach > near && near+reach < hi {
		hi = near + reach
	}
	var free []span
	for a := lo; a < hi; {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var mbi windows.MemoryBasicInformation
		if e := winapi.VirtualQueryEx(p.h, uintptr(a), &mbi); e != 0 {
			break // past the last user address
		}
		end := uint64(mbi.BaseAddress) + uint64(mbi.RegionSize)
		if mbi.State == winapi.MemFree {
			free = append(free, span{max(uint64(mbi.BaseAddress), lo), min(end, hi)})
		}
		if end <= a {
			break
		}
		a = end
	}
	for _, c := range candidates(free, near, size, reach, p.gran) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		got, e := winapi.VirtualAllocEx(p.h, uintptr(c), uintptr(size), windows.MEM_RESERVE|windows.MEM_COMMIT, v)
		if e == windows.ERROR_DYNAMIC_CODE_BLOCKED || e == windows.ERROR_ACCESS_DENIED || (e != 0 && p.exited()) {
			return 0, p.accessError("alloc", c, size, e)
		}
		if e == 0 {
			return uint64(got), nil
		}
	}
	return 0, &proc.AccessError{Op: "alloc", Addr: near, Size: size,
		Err: fmt.Errorf("%w: %d free ranges within %#x of %#x", proc.ErrNoMemory, len(free), reach, near)}
}

// Free releases memory AllocNear returned (the whole allocation).
func (p *Process) Free(addr, size uint64) error {
	if e := winapi.VirtualFreeEx(p.h, uintptr(addr), 0, windows.MEM_RELEASE); e != 0 {
		return p.accessError("free", addr, size, e)
	}
	return nil
}

// FlushICache makes code written at [addr, addr+size) visible to execution.
func (p *Process) FlushICache(addr, size uint64) error {
	if e := winapi.FlushInstructionCache(p.h, uintptr(addr), uintptr(size)); e != 0 {
		return p.accessError("flush", addr, size, e)
	}
	return nil
}

// Modules lists the images mapped in the process (Toolhelp snapshot).
func (p *Process) Modules() ([]proc.Module, error) {
	// A snapshot taken while the module list changes fails with
	// ERROR_BAD_LENGTH, and under Wine may come back empty (seen once in
	// 10 benchmark runs): a live process always has its executable, so
	// both are read again.
	for range 16 {
		out, err := p.modulesOnce()
		if err != nil || len(out) > 0 {
			return out, err
		}
	}
	return nil, fmt.Errorf("winproc: modules of pid %d: the snapshot lists none", p.pid)
}

// modulesOnce reads one Toolhelp snapshot of the modules; a list that
// changed while being read is empty, not an error.
func (p *Process) modulesOnce() ([]proc.Module, error) {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPMODULE, p.pid)
	if errors.Is(err, windows.ERROR_BAD_LENGTH) {
		return nil, nil
	}
	if err != nil {
		if p.exited() {
			err = fmt.Errorf("%w: %w", proc.ErrExited, err)
		} else if errors.Is(err, windows.ERROR_ACCESS_DENIED) {
			err = fmt.Errorf("%w: %w", proc.ErrPermission, err)
		}
		return nil, fmt.Errorf("winproc: modules of pid %d: %w", p.pid, err)
	}
	defer windows.CloseHandle(snap)
	var out []proc.Module
	me := windows.ModuleEntry32{Size: uint32(unsafe.Sizeof(windows.ModuleEntry32{}))}
	for err = windows.Module32First(snap, &me); err == nil; err = windows.Module32Next(snap, &me) {
		out = append(out, proc.Module{
			Name: windows.UTF16ToString(me.Module[:]),
			Path: windows.UTF16ToString(me.ExePath[:]),
			Base: uint64(me.ModBaseAddr),
			Size: uint64(me.ModBaseSize),
		})
	}
	if !errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return nil, fmt.Errorf("winproc: modules of pid %d: %w", p.pid, err)
	}
	return out, nil
}

// Close resumes threads still stopped and releases the process handle.
func (p *Process) Close() error {
	var err error
	if p.st.active {
		err = p.Resume()
	}
	p.st.release()
	if !p.self && p.h != 0 {
		if e := winapi.CloseHandle(p.h); e != 0 && err == nil {
			err = fmt.Errorf("winproc: close pid %d: %w", p.pid, e)
		}
		p.h = 0
	}
	return err
}
