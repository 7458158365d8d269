//go:build linux && (amd64 || arm64)

package execmem

import (
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

var pageSize = uintptr(os.Getpagesize())

func roundUp(n uintptr) uintptr { return (n + pageSize - 1) &^ (pageSize - 1) }

// mmapAt maps size bytes read+write, preferably at hint. With exact set the
// kernel must use hint or fail (MAP_FIXED_NOREPLACE never clobbers a mapping).
func mmapAt(hint, size uintptr, exact bool) (unsafe.Pointer, error) {
	flags := unix.MAP_PRIVATE | unix.MAP_ANONYMOUS
	if exact {
		flags |= unix.MAP_FIXED_NOREPLACE
	}
	// hint is an address outside Go's heap, never a Go pointer: reinterpret
	// it rather than convert it, which vet rightly distrusts.
	p, err := unix.MmapPtr(-1, 0, *(*unsafe.Pointer)(unsafe.Pointer(&hint)), size, unix.PROT_READ|unix.PROT_WRITE, flags)
	if err != nil {
		return nil, err
	}
	if exact && uintptr(p) != hint {
		// Kernels before 4.17 ignore MAP_FIXED_NOREPLACE and treat hint as a hint.
		_ = unix.MunmapPtr(p, size)
		return nil, unix.EEXIST
	}
	return p, nil
}

func newRegion(p unsafe.Pointer, size uintptr) *Region {
	return &Region{addr: uintptr(p), size: int(size), mem: unsafe.Slice((*byte)(p), size)}
}

// Alloc maps size bytes (rounded up to pages) anywhere, read+write.
func Alloc(size int) (*Region, error) {
	n := roundUp(uintptr(size))
	addr, err := mmapAt(0, n, false)
	if err != nil {
		return nil, fmt.Errorf("execmem: mmap %d bytes: %w", n, err)
	}
	return newRegion(addr, n), nil
}

// AllocNear maps size bytes so that every byte is within reach of from: what
// a rel32 (reach 1<<31 - 1) or ARM64 B (128 MiB) displacement needs. It probes
// free addresses outward from `from` (see nearHints), below first.
func AllocNear(from uintptr, size int, reach uint64) (*Region, error) {
	n := roundUp(uintptr(size))
	for hint := range nearHints(from, n, reach) {
		if p, err := mmapAt(hint, n, true); err == nil {
			return newRegion(p, n), nil
		}
	}
	return nil, fmt.Errorf("%w: %d bytes within %#x of %#x", ErrNoSpace, n, reach, from)
}

// AllocFar maps size bytes at least min bytes away from `from` (above it when
// the address space allows, else below): tests use it to force far forms.
func AllocFar(from uintptr, size int, min uint64) (*Region, error) {
	n := roundUp(uintptr(size))
	const step = 1 << 30
	for i := uintptr(0); i < 64; i++ {
		for _, hint := range []uintptr{from + uintptr(min) + i*step, from - uintptr(min) - i*step} {
			hint &^= pageSize - 1
			if hint < 1<<20 || hint >= 1<<47 || distance(from, hint) < min || distance(from, hint+n) < min {
				continue
			}
			if addr, err := mmapAt(hint, n, true); err == nil {
				return newRegion(addr, n), nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %d bytes at least %#x from %#x", ErrNoSpace, n, min, from)
}

func (r *Region) protect(prot int) error {
	if err := unix.Mprotect(r.mem, prot); err != nil {
		return fmt.Errorf("execmem: mprotect %#x+%d: %w", r.addr, r.size, err)
	}
	return nil
}

// Write copies code to offset off, then leaves the whole region read+execute
// with the instruction cache flushed. The region is writable only during the copy.
func (r *Region) Write(off int, code []byte) error {
	if err := r.check(off, len(code)); err != nil {
		return err
	}
	if err := r.protect(unix.PROT_READ | unix.PROT_WRITE); err != nil {
		return err
	}
	copy(r.mem[off:], code)
	if err := r.protect(unix.PROT_READ | unix.PROT_EXEC); err != nil {
		return err
	}
	FlushICache(r.addr+uintptr(off), len(code))
	return nil
}

// Free unmaps the region. Using it afterwards is an error.
func (r *Region) Free() error {
	if r.mem == nil {
		return nil
	}
	err := unix.MunmapPtr(unsafe.Pointer(unsafe.SliceData(r.mem)), uintptr(r.size))
	r.mem = nil
	return err
}

// FlushICache makes instructions written to [addr, addr+n) visible to
// instruction fetch on every core (a no-op on x86-64, whose caches are coherent).
func FlushICache(addr uintptr, n int) {
	if n > 0 {
		flushICache(addr, uintptr(n))
	}
}

// Call calls the machine code at fn with the C calling convention (SysV on
// amd64: rdi, rsi, rdx, rcx, r8, r9; AAPCS64 on arm64: x0..x5) and returns the
// integer result register. The callee runs on a private 8 KiB region of the
// goroutine's stack and must return normally; Go cannot preempt it meanwhile.
//
// On arm64 every signal is blocked on the calling thread for the duration of
// the call: compiled C code uses x28 as a scratch register, and Go's signal
// handler (without cgo) takes x28 to be the current goroutine, so a signal
// landing inside the callee would crash the process.
func Call(fn uintptr, args ...uintptr) uintptr {
	var a [6]uintptr
	if len(args) > len(a) {
		panic("execmem.Call: more than 6 arguments")
	}
	copy(a[:], args)
	if runtime.GOARCH != "arm64" {
		return call6(fn, a[0], a[1], a[2], a[3], a[4], a[5])
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	all := unix.Sigset_t{}
	for i := range all.Val {
		all.Val[i] = ^all.Val[i]
	}
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		panic("execmem.Call: cannot block signals: " + err.Error())
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) //nolint:errcheck // restoring a mask that was just valid
	return call6(fn, a[0], a[1], a[2], a[3], a[4], a[5])
}

func call6(fn, a0, a1, a2, a3, a4, a5 uintptr) uintptr
func flushICache(addr, n uintptr)
