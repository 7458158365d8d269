//go:build windows && amd64

package winapi

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/windows"
)

func TestLoad(t *testing.T) {
	require.NoError(t, Load())
}

func TestSystemInfo(t *testing.T) {
	si := GetSystemInfo()
	require.Equal(t, uint32(4096), si.PageSize)
	require.Equal(t, uint32(64<<10), si.AllocationGranularity)
	require.Less(t, si.MinimumApplicationAddress, si.MaximumApplicationAddress)
}

// Memory round trip on the own process: allocate, write through
// WriteProcessMemory, read back, protect, query, flush, free; through
// ordinary system calls and through direct calls.
func TestVirtualMemoryOwnProcess(t *testing.T) {
	require.NoError(t, Load())
	t.Run("syscall", memoryRoundTrip)
	t.Run("direct", func(t *testing.T) {
		on, off := Direct()
		defer off()
		require.Equal(t, runtime.GOARCH == "amd64", on)
		memoryRoundTrip(t)
		// The last error comes back through a direct call too.
		_, e := OpenThread(windows.THREAD_SUSPEND_RESUME, 0x7FFFFFFC)
		require.Equal(t, windows.ERROR_INVALID_PARAMETER, e)
	})
}

func memoryRoundTrip(t *testing.T) {
	self := windows.CurrentProcess()
	addr, e := VirtualAllocEx(self, 0, 8192, windows.MEM_RESERVE|windows.MEM_COMMIT, windows.PAGE_READWRITE)
	require.Zero(t, e)
	require.NotZero(t, addr)
	require.Zero(t, addr%(64<<10), "allocations start at the granularity")

	want := []byte{0xb8, 0x2a, 0, 0, 0, 0xc3}
	var n uintptr
	require.Zero(t, WriteProcessMemory(self, addr+100, want, &n))
	require.Equal(t, uintptr(len(want)), n)
	got := make([]byte, len(want))
	require.Zero(t, ReadProcessMemory(self, addr+100, got, &n))
	require.Equal(t, uintptr(len(want)), n)
	require.Equal(t, want, got)

	var old uint32
	require.Zero(t, VirtualProtectEx(self, addr, 4096, windows.PAGE_EXECUTE_READ, &old))
	require.Equal(t, uint32(windows.PAGE_READWRITE), old)
	var mbi windows.MemoryBasicInformation
	require.Zero(t, VirtualQueryEx(self, addr+5, &mbi))
	require.Equal(t, addr, mbi.BaseAddress)
	require.Equal(t, uintptr(4096), mbi.RegionSize)
	require.Equal(t, uint32(windows.PAGE_EXECUTE_READ), mbi.Protect)
	require.Zero(t, FlushInstructionCache(self, addr, 4096))

	require.Zero(t, VirtualFreeEx(self, addr, 0, windows.MEM_RELEASE))
	require.Zero(t, VirtualQueryEx(self, addr, &mbi))
	require.Equal(t, uint32(MemFree), mbi.State)
	require.NotZero(t, VirtualFreeEx(self, addr, 0, windows.MEM_RELEASE), "double free is refused")
}

// The thread list from NtQuerySystemInformation holds this very thread.
func TestNtQuerySystemInformationThreads(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	me, pid := windows.GetCurrentThreadId(), windows.GetCurrentProcessId()
	buf := make([]byte, 1<<20)
	var n uint32
	st := NtQuerySystemInformation(windows.SystemProcessInformation, buf, &n)
	require.Zero(t, st, "NTSTATUS %#x", uint32(st))
	found := false
	for off := 0; ; {
		e := buf[off:]
		threads := binary.LittleEndian.Uint32(e[4:])
		p := *(*uintptr)(unsafe.Pointer(&e[0x50]))
		if uint32(p) == pid {
			for i := 0; i < int(threads); i++ {
				ti := (*SystemThreadInformation)(unsafe.Pointer(&e[SystemProcessInformationSize+i*0x50]))
				require.Equal(t, uintptr(pid), ti.UniqueProcess)
				found = found || uint32(ti.UniqueThread) == me
			}
		}
		next := binary.LittleEndian.Uint32(e)
		if next == 0 {
			break
		}
		off += int(next)
	}
	require.True(t, found, "thread %d of pid %d not listed", me, pid)
}

// GetThreadContext of a suspended thread of this process: its Rip lies in
// mapped, executable memory. The thread runs Go code: between SuspendThread
// and ResumeThread nothing may allocate or call into testify, because the
// Go runtime may need the suspended thread (a GC stop-the-world waits for
// it), so the results are checked after ResumeThread.
func TestSuspendGetContext(t *testing.T) {
	require.NoError(t, Load())
	tidc := make(chan uint32)
	var stop atomic.Bool
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tidc <- windows.GetCurrentThreadId()
		for !stop.Load() { // spin: the thread is always running user code
		}
	}()
	tid := <-tidc
	defer stop.Store(true)
	h, e := OpenThread(windows.THREAD_SUSPEND_RESUME|windows.THREAD_GET_CONTEXT|windows.THREAD_QUERY_INFORMATION, tid)
	require.Zero(t, e)
	defer CloseHandle(h)
	c := NewContextAMD64(ContextAMD64Control | ContextAMD64Integer)
	var mbi windows.MemoryBasicInformation

	_, se := SuspendThread(h)
	ge := GetThreadContext(h, unsafe.Pointer(c))
	qe := VirtualQueryEx(windows.CurrentProcess(), uintptr(c.Rip), &mbi)
	prev, re := ResumeThread(h)

	require.Zero(t, se)
	require.Zero(t, ge)
	require.Zero(t, qe)
	require.Zero(t, re)
	// Go's own preemption suspends threads too: the count we saw is ours
	// (1) plus possibly the runtime's.
	require.GreaterOrEqual(t, prev, uint32(1))
	require.NotZero(t, mbi.Protect&(windows.PAGE_EXECUTE|windows.PAGE_EXECUTE_READ|windows.PAGE_EXECUTE_READWRITE|windows.PAGE_EXECUTE_WRITECOPY), "Rip %#x in %+v", c.Rip, mbi)
	require.NotZero(t, c.Rsp)
}
