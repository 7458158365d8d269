//go:build linux && (amd64 || arm64)

package self

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Process is the calling process. It implements proc.Process with
// Caps{Self: true}: Stop returns proc.ErrCannotStop.
type Process struct {
	mu     sync.Mutex
	allocs map[uint64]*execmem.Region
	// pages caches the region (from /proc/self/maps) of pages written
	// through protection: reading maps costs far more than the store.
	// Protect, AllocNear and Free, which change mappings, clear it; nothing
	// else in a Go program changes the protection of mapped code.
	pages map[uint64]proc.Region
}

var _ proc.Process = (*Process)(nil)

// New returns the calling process.
func New() (*Process, error) {
	return &Process{allocs: map[uint64]*execmem.Region{}, pages: map[uint64]proc.Region{}}, nil
}

// region returns the mapping holding addr, cached per page.
func (p *Process) region(addr uint64) (proc.Region, error) {
	page := addr &^ uint64(os.Getpagesize()-1)
	p.mu.Lock()
	r, ok := p.pages[page]
	p.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := p.Query(addr)
	if err != nil {
		return r, err
	}
	p.mu.Lock()
	p.pages[page] = r
	p.mu.Unlock()
	return r, nil
}

func (p *Process) forget() {
	p.mu.Lock()
	clear(p.pages)
	p.mu.Unlock()
}

// PID returns os.Getpid().
func (p *Process) PID() int { return os.Getpid() }

// Arch returns the running architecture.
func (p *Process) Arch() arch.Arch {
	if runtime.GOARCH == "arm64" {
		return arch.ARM64
	}
	return arch.AMD64
}

// Caps: the process is our own and its other threads keep running.
func (p *Process) Caps() proc.Caps { return proc.Caps{Self: true} }

// ReadAt reads through process_vm_readv on our own pid, so an unmapped
// address is an error instead of a fault.
func (p *Process) ReadAt(b []byte, addr uint64) error {
	if len(b) == 0 {
		return nil
	}
	local := []unix.Iovec{{Base: &b[0]}}
	local[0].SetLen(len(b))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(b)}}
	n, err := unix.ProcessVMReadv(os.Getpid(), local, remote, 0)
	if errors.Is(err, unix.ENOSYS) {
		// qemu-user lacks process_vm_readv: check the range is mapped
		// readable, then copy.
		return p.readChecked(b, addr)
	}
	if err != nil || n != len(b) {
		if err == nil {
			err = fmt.Errorf("short read: %d of %d bytes", n, len(b))
		}
		return &proc.AccessError{Op: "read", Addr: addr, Size: uint64(len(b)), Err: err}
	}
	return nil
}

// readChecked copies len(b) bytes at addr after checking, from
// /proc/self/maps, that every byte is in a readable mapping.
func (p *Process) readChecked(b []byte, addr uint64) error {
	ms, err := maps()
	if err != nil {
		return err
	}
	end := addr + uint64(len(b))
	for a := addr; a < end; {
		ok := false
		for _, m := range ms {
			if a >= m.Base && a < m.Base+m.Size && m.Prot&proc.ProtRead != 0 {
				a = m.Base + m.Size
				ok = true
				break
			}
		}
		if !ok {
			return &proc.AccessError{Op: "read", Addr: addr, Size: uint64(len(b)), Err: fmt.Errorf("%#x not mapped readable", a)}
		}
	}
	copy(b, bytesAt(addr, len(b)))
	return nil
}

func bytesAt(addr uint64, n int) []byte {
	return unsafe.Slice((*byte)(pointer(addr)), n)
}

// pointer turns an address of mapped memory outside the Go heap (code,
// mmap'd regions) into a pointer. Going through memory instead of a
// uintptr conversion tells vet this is deliberate: the GC never moves or
// frees such memory.
func pointer(addr uint64) unsafe.Pointer {
	a := uintptr(addr)
	return *(*unsafe.Pointer)(unsafe.Pointer(&a))
}

// withWritable runs fn with the pages of [addr, addr+size) writable. A page
// without write permission is made read+write+execute for the duration of
// fn only, then given back its protection: removing execute instead would
// fault every other thread executing code in the same page meanwhile.
func (p *Process) withWritable(addr, size uint64, fn func()) error {
	r, err := p.region(addr)
	if err != nil {
		return err
	}
	if addr+size > r.Base+r.Size {
		return &proc.AccessError{Op: "write", Addr: addr, Size: size, Err: fmt.Errorf("crosses the end of its mapping at %#x", r.Base+r.Size)}
	}
	if r.Prot&proc.ProtWrite != 0 {
		fn()
		return nil
	}
	page := uint64(os.Getpagesize())
	lo, hi := addr&^(page-1), (addr+size+page-1)&^(page-1)
	mem := bytesAt(lo, int(hi-lo))
	if err := unix.Mprotect(mem, unix.PROT_READ|unix.PROT_WRITE|unix.PROT_EXEC); err != nil {
		return &proc.AccessError{Op: "protect", Addr: lo, Size: hi - lo, Err: err}
	}
	fn()
	if err := unix.Mprotect(mem, unixProt(r.Prot)); err != nil {
		return &proc.AccessError{Op: "protect", Addr: lo, Size: hi - lo, Err: err}
	}
	return nil
}

// WriteAt copies b to addr with plain stores, through page protection (see
// withWritable). Other threads must not execute [addr, addr+len(b)) while
// it runs: use it for fresh memory and padding, CompareAndSwap for code.
func (p *Process) WriteAt(b []byte, addr uint64) error {
	return p.withWritable(addr, uint64(len(b)), func() { copy(bytesAt(addr, len(b)), b) })
}

// CompareAndSwap atomically replaces the naturally aligned word of size
// bytes (8, or 4) at addr, if it holds old, by new, through page protection.
// A CPU executing that word concurrently sees either all old or all new
// bytes. It reports whether the swap happened.
func (p *Process) CompareAndSwap(addr uint64, size int, old, new uint64) (bool, error) {
	if addr%uint64(size) != 0 || (size != 8 && size != 4) {
		return false, &proc.AccessError{Op: "write", Addr: addr, Size: uint64(size), Err: fmt.Errorf("not an aligned 4- or 8-byte word")}
	}
	var ok bool
	err := p.withWritable(addr, uint64(size), func() {
		ptr := pointer(addr)
		if size == 8 {
			ok = atomic.CompareAndSwapUint64((*uint64)(ptr), old, new)
		} else {
			ok = atomic.CompareAndSwapUint32((*uint32)(ptr), uint32(old), uint32(new))
		}
	})
	return ok, err
}

// Query returns the mapping containing addr, from /proc/self/maps.
func (p *Process) Query(addr uint64) (proc.Region, error) {
	ms, err := maps()
	if err != nil {
		return proc.Region{}, err
	}
	for _, m := range ms {
		if addr >= m.Base && addr < m.Base+m.Size {
			return m.Region, nil
		}
	}
	return proc.Region{}, &proc.AccessError{Op: "query", Addr: addr, Size: 1, Err: fmt.Errorf("not mapped")}
}

// Protect sets the protection of the pages covering [addr, addr+size).
func (p *Process) Protect(addr, size uint64, prot proc.Prot) (proc.Prot, error) {
	p.forget()
	r, err := p.Query(addr)
	if err != nil {
		return 0, err
	}
	page := uint64(os.Getpagesize())
	lo, hi := addr&^(page-1), (addr+size+page-1)&^(page-1)
	if err := unix.Mprotect(bytesAt(lo, int(hi-lo)), unixProt(prot)); err != nil {
		return 0, &proc.AccessError{Op: "protect", Addr: lo, Size: hi - lo, Err: err}
	}
	return r.Prot, nil
}

// AllocNear maps size bytes within reach of near, with prot.
func (p *Process) AllocNear(ctx context.Context, near, size, reach uint64, prot proc.Prot) (uint64, error) {
	p.forget()
	r, err := execmem.AllocNear(uintptr(near), int(size), reach)
	if err != nil {
		return 0, &proc.AccessError{Op: "alloc", Addr: near, Size: size, Err: fmt.Errorf("%w: %v", proc.ErrNoMemory, err)}
	}
	a := uint64(r.Addr())
	if err := unix.Mprotect(bytesAt(a, r.Size()), unixProt(prot)); err != nil {
		_ = r.Free()
		return 0, &proc.AccessError{Op: "protect", Addr: a, Size: uint64(r.Size()), Err: err}
	}
	p.mu.Lock()
	p.allocs[a] = r
	p.mu.Unlock()
	return a, nil
}

// Free unmaps memory AllocNear returned.
func (p *Process) Free(addr, size uint64) error {
	p.forget()
	p.mu.Lock()
	r, ok := p.allocs[addr]
	delete(p.allocs, addr)
	p.mu.Unlock()
	if !ok {
		return &proc.AccessError{Op: "free", Addr: addr, Size: size, Err: fmt.Errorf("not allocated by AllocNear")}
	}
	return r.Free()
}

// FlushICache flushes the instruction cache of the range.
func (p *Process) FlushICache(addr, size uint64) error {
	execmem.FlushICache(uintptr(addr), int(size))
	return nil
}

// Stop cannot stop the caller's own threads on Linux.
func (p *Process) Stop(ctx context.Context) ([]proc.Thread, error) { return nil, proc.ErrCannotStop }

// SetPC is impossible without Stop.
func (p *Process) SetPC(tid int, pc uint64) error {
	return &proc.ThreadError{Op: "setregs", TID: tid, Err: proc.ErrCannotStop}
}

// Resume has nothing to resume.
func (p *Process) Resume() error { return nil }

// Modules lists files with executable mappings.
func (p *Process) Modules() ([]proc.Module, error) {
	ms, err := maps()
	if err != nil {
		return nil, err
	}
	byPath := map[string]*proc.Module{}
	var out []proc.Module
	for _, m := range ms {
		if m.path == "" || !strings.HasPrefix(m.path, "/") {
			continue
		}
		if mod, ok := byPath[m.path]; ok {
			if end := m.Base + m.Size; end > mod.Base+mod.Size {
				mod.Size = end - mod.Base
			}
			continue
		}
		if m.offset != 0 {
			continue
		}
		out = append(out, proc.Module{Name: filepath.Base(m.path), Path: m.path, Base: m.Base, Size: m.Size})
		byPath[m.path] = &out[len(out)-1]
	}
	return out, nil
}

// Close releases nothing (allocations stay until freed).
func (p *Process) Close() error { return nil }

type mapping struct {
	proc.Region
	offset uint64
	path   string
}

func maps() ([]mapping, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(fs[0], "-")
		if !ok {
			continue
		}
		a, err1 := strconv.ParseUint(lo, 16, 64)
		b, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(fs[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		var pr proc.Prot
		if fs[1][0] == 'r' {
			pr |= proc.ProtRead
		}
		if fs[1][1] == 'w' {
			pr |= proc.ProtWrite
		}
		if fs[1][2] == 'x' {
			pr |= proc.ProtExec
		}
		m := mapping{Region: proc.Region{Base: a, Size: b - a, Prot: pr}, offset: off}
		if len(fs) >= 6 {
			m.path = fs[5]
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func unixProt(p proc.Prot) int {
	var u int
	if p&proc.ProtRead != 0 {
		u |= unix.PROT_READ
	}
	if p&proc.ProtWrite != 0 {
		u |= unix.PROT_WRITE
	}
	if p&proc.ProtExec != 0 {
		u |= unix.PROT_EXEC
	}
	return u
}
