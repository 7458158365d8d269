//go:build linux && (amd64 || arm64)

package ptrace

import (
	"fmt"
	"io"
	"math"
	"os"
	"strconv"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// ReadAt reads len(b) bytes at addr through /proc/PID/mem. Any byte it
// cannot read makes it fail with an *proc.AccessError naming the address.
func (p *Process) ReadAt(b []byte, addr uint64) error {
	return p.memIO("read", b, addr)
}

// WriteAt writes b at addr through /proc/PID/mem. The kernel writes through
// page protections (FOLL_FORCE), so code stays read+execute: no mprotect is
// needed and no page is ever writable and executable. On arm64 the kernel
// also flushes the instruction cache when the mapping is executable.
func (p *Process) WriteAt(b []byte, addr uint64) error {
	return p.memIO("write", b, addr)
}

func (p *Process) memIO(op string, b []byte, addr uint64) error {
	if err := p.usable(); err != nil {
		return err
	}
	if len(b) == 0 {
		return nil
	}
	fail := func(err error) error {
		return &proc.AccessError{Op: op, Addr: addr, Size: uint64(len(b)), Err: p.exitedOr(err)}
	}
	if addr > math.MaxInt64 || uint64(len(b)) > math.MaxInt64-addr {
		return fail(ErrUnmapped)
	}
	var n int
	var err error
	if op == "read" {
		n, err = p.mem.ReadAt(b, int64(addr))
	} else {
		n, err = p.mem.WriteAt(b, int64(addr))
	}
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	if err != nil {
		if err == io.EOF {
			err = fmt.Errorf("%w after %d bytes", io.ErrUnexpectedEOF, n)
		}
		return fail(err)
	}
	return nil
}

// readMaps reads and parses /proc/PID/maps.
func (p *Process) readMaps() ([]mapping, error) {
	if err := p.usable(); err != nil {
		return nil, err
	}
	b, err := p.procFile("maps")
	if err != nil {
		return nil, p.exitedOr(err)
	}
	return parseMaps(b)
}

// procFile reads /proc/PID/<name> of a per-process file that reads empty
// (maps) or fails (mem) for a zombie leader: then through a live thread,
// /proc/PID/task/TID/<name>, which sees the same address space.
func (p *Process) procFile(name string) ([]byte, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", p.pid, name))
	if err == nil && len(b) > 0 {
		return b, nil
	}
	if tid := liveThread(p.pid); tid != 0 {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/%s", p.pid, tid, name)); err == nil && len(b) > 0 {
			return b, nil
		}
	}
	if err == nil {
		// Every thread's view is empty: the address space is being torn
		// down, the process is exiting.
		return nil, fmt.Errorf("ptrace: pid %d: %w (empty /proc/%d/%s)", p.pid, proc.ErrExited, p.pid, name)
	}
	if gone(p.pid) {
		p.exited.Store(true)
		return nil, p.errExited()
	}
	return nil, err
}

// liveThread returns a thread of pid that has not exited, or 0.
func liveThread(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0
	}
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil && !dead(taskState(pid, tid)) {
			return tid
		}
	}
	return 0
}

// Query returns the mapping that contains addr, from /proc/PID/maps.
func (p *Process) Query(addr uint64) (proc.Region, error) {
	maps, err := p.readMaps()
	if err != nil {
		return proc.Region{}, &proc.AccessError{Op: "query", Addr: addr, Err: err}
	}
	m, ok := find(maps, addr)
	if !ok {
		return proc.Region{}, &proc.AccessError{Op: "query", Addr: addr, Err: ErrUnmapped}
	}
	return proc.Region{Base: m.Start, Size: m.End - m.Start, Prot: m.Prot}, nil
}

// Modules lists the files with executable mappings, from /proc/PID/maps.
func (p *Process) Modules() ([]proc.Module, error) {
	maps, err := p.readMaps()
	if err != nil {
		return nil, err
	}
	return modules(maps), nil
}

// FlushICache makes code written at [addr, addr+size) visible to
// instruction fetch: nothing to do on x86-64 (coherent caches); on arm64
// see flushICache.
func (p *Process) FlushICache(addr, size uint64) error {
	if err := p.usable(); err != nil {
		return err
	}
	return p.flushICache(addr, size)
}
