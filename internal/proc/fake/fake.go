// Package fake is an in-memory proc.Process for tests: mappings are byte
// slices, threads are PCs that never run, and failures (a write failing at
// the k-th call, the process exiting mid-way) are injected on demand.
//
// The patch transaction's fault tests run against it and compare Snapshot
// before and after, byte for byte and protection for protection.
package fake

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
)

// Mapping is a run of fake memory with one protection.
type Mapping struct {
	Base uint64
	Data []byte
	Prot proc.Prot
	// Allocated marks memory AllocNear created.
	Allocated bool
}

func (m *Mapping) end() uint64 { return m.Base + uint64(len(m.Data)) }

// Process is a fake process. Configure the exported fields before use.
type Process struct {
	ArchV   arch.Arch
	CapsV   proc.Caps
	Maps    []*Mapping
	Threads []proc.Thread
	ModList []proc.Module

	// FailWrite makes the FailWrite-th WriteAt call (1-based) fail with an
	// AccessError; 0 never.
	FailWrite int
	// ExitAtWrite makes the process exit at the ExitAtWrite-th WriteAt call:
	// that call and every later one fails with proc.ErrExited. 0 never.
	ExitAtWrite int
	// OnStop, when set, is called by each Stop (n counts from 1) and may
	// change the threads it returns (to park one, then release it).
	OnStop func(n int, threads []proc.Thread)
	// AllocGap is where AllocNear places memory relative to near (default
	// 1 MiB above).
	AllocGap uint64

	// CountWindowAllocs makes Stop and Resume count the heap allocations
	// made between them (by anyone: the caller's window code, and this
	// back-end, whose injected failures are then built before the window)
	// into WindowAllocs. It stops the world twice per Stop.
	CountWindowAllocs bool
	WindowAllocs      uint64

	Writes, Stops, Resumes int
	Moves                  map[int]uint64 // last SetPC per thread
	stopped                bool
	exited                 bool

	mem      runtime.MemStats
	mallocs  uint64            // at the end of the last Stop
	injected *proc.AccessError // built before the window when counting
}

var _ proc.Process = (*Process)(nil)

// New returns a fake AMD64 process able to stop threads and set PCs, with
// one mapping of code at base with protection r-x.
func New(a arch.Arch, base uint64, code []byte) *Process {
	return &Process{
		ArchV: a,
		CapsV: proc.Caps{StopThreads: true, SetPC: true},
		Maps:  []*Mapping{{Base: base, Data: append([]byte(nil), code...), Prot: proc.ProtRead | proc.ProtExec}},
	}
}

// PID is always 4242.
func (p *Process) PID() int { return 4242 }

// Arch returns ArchV.
func (p *Process) Arch() arch.Arch { return p.ArchV }

// Caps returns CapsV.
func (p *Process) Caps() proc.Caps { return p.CapsV }

func (p *Process) find(addr, size uint64) (*Mapping, bool) {
	for _, m := range p.Maps {
		if addr >= m.Base && addr+size <= m.end() && addr+size >= addr {
			return m, true
		}
	}
	return nil, false
}

// ReadAt copies from the mapping holding [addr, addr+len(b)).
func (p *Process) ReadAt(b []byte, addr uint64) error {
	if p.exited {
		return fmt.Errorf("fake read: %w", proc.ErrExited)
	}
	m, ok := p.find(addr, uint64(len(b)))
	if !ok {
		return &proc.AccessError{Op: "read", Addr: addr, Size: uint64(len(b)), Err: fmt.Errorf("unmapped")}
	}
	copy(b, m.Data[addr-m.Base:])
	return nil
}

// WriteAt writes through protections (like /proc/PID/mem), or fails as
// injected.
func (p *Process) WriteAt(b []byte, addr uint64) error {
	p.Writes++
	if p.ExitAtWrite != 0 && p.Writes >= p.ExitAtWrite {
		p.exited = true
	}
	if p.exited {
		return p.writeError(addr, len(b), proc.ErrExited)
	}
	if p.FailWrite != 0 && p.Writes == p.FailWrite {
		return p.writeError(addr, len(b), errInjected)
	}
	m, ok := p.find(addr, uint64(len(b)))
	if !ok {
		return &proc.AccessError{Op: "write", Addr: addr, Size: uint64(len(b)), Err: fmt.Errorf("unmapped")}
	}
	copy(m.Data[addr-m.Base:], b)
	return nil
}

var errInjected = errors.New("injected failure")

// writeError is the AccessError of a failing write; prepared by Stop when
// allocations are counted.
func (p *Process) writeError(addr uint64, n int, err error) error {
	e := p.injected
	p.injected = nil
	if e == nil {
		e = &proc.AccessError{}
	}
	*e = proc.AccessError{Op: "write", Addr: addr, Size: uint64(n), Err: err}
	return e
}

// Query returns the mapping holding addr.
func (p *Process) Query(addr uint64) (proc.Region, error) {
	m, ok := p.find(addr, 1)
	if !ok {
		return proc.Region{}, &proc.AccessError{Op: "query", Addr: addr, Size: 1, Err: fmt.Errorf("unmapped")}
	}
	return proc.Region{Base: m.Base, Size: uint64(len(m.Data)), Prot: m.Prot}, nil
}

// Protect changes the whole mapping holding addr.
func (p *Process) Protect(addr, size uint64, prot proc.Prot) (proc.Prot, error) {
	if p.exited {
		return 0, fmt.Errorf("fake protect: %w", proc.ErrExited)
	}
	m, ok := p.find(addr, size)
	if !ok {
		return 0, &proc.AccessError{Op: "protect", Addr: addr, Size: size, Err: fmt.Errorf("unmapped")}
	}
	old := m.Prot
	m.Prot = prot
	return old, nil
}

// AllocNear maps size bytes at near+AllocGap (past any mapping there).
func (p *Process) AllocNear(ctx context.Context, near, size, reach uint64, prot proc.Prot) (uint64, error) {
	if p.exited {
		return 0, fmt.Errorf("fake alloc: %w", proc.ErrExited)
	}
	gap := p.AllocGap
	if gap == 0 {
		gap = 1 << 20
	}
	size = (size + 0xfff) &^ 0xfff
	addr := (near + gap) &^ 0xfff
	for {
		clash := false
		for _, m := range p.Maps {
			if addr < m.end() && m.Base < addr+size {
				clash = true
				addr = (m.end() + 0xfff) &^ 0xfff
			}
		}
		if !clash {
			break
		}
	}
	if addr+size-near > reach {
		return 0, &proc.AccessError{Op: "alloc", Addr: near, Size: size, Err: proc.ErrNoMemory}
	}
	p.Maps = append(p.Maps, &Mapping{Base: addr, Data: make([]byte, size), Prot: prot, Allocated: true})
	return addr, nil
}

// Free unmaps an allocation.
func (p *Process) Free(addr, size uint64) error {
	for i, m := range p.Maps {
		if m.Base == addr && m.Allocated {
			p.Maps = append(p.Maps[:i], p.Maps[i+1:]...)
			return nil
		}
	}
	return &proc.AccessError{Op: "free", Addr: addr, Size: size, Err: fmt.Errorf("not allocated")}
}

// FlushICache does nothing.
func (p *Process) FlushICache(addr, size uint64) error { return nil }

// Stop returns a copy of Threads (after OnStop had its say).
func (p *Process) Stop(ctx context.Context) ([]proc.Thread, error) {
	if !p.CapsV.StopThreads {
		return nil, proc.ErrCannotStop
	}
	if p.exited {
		return nil, fmt.Errorf("fake stop: %w", proc.ErrExited)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p.Stops++
	if p.OnStop != nil {
		p.OnStop(p.Stops, p.Threads)
	}
	p.stopped = true
	threads := append([]proc.Thread(nil), p.Threads...)
	if p.CountWindowAllocs {
		if p.Moves == nil {
			// A map allocates its storage on the first insert: make that
			// happen here, not in SetPC inside the window.
			p.Moves = map[int]uint64{-1: 0}
			delete(p.Moves, -1)
		}
		p.injected = &proc.AccessError{}
		runtime.ReadMemStats(&p.mem)
		p.mallocs = p.mem.Mallocs
	}
	return threads, nil
}

// SetPC moves a stopped thread.
func (p *Process) SetPC(tid int, pc uint64) error {
	if !p.stopped {
		return &proc.ThreadError{Op: "setregs", TID: tid, Err: fmt.Errorf("not stopped")}
	}
	for i := range p.Threads {
		if p.Threads[i].ID == tid {
			p.Threads[i].PC = pc
			if p.Moves == nil {
				p.Moves = map[int]uint64{}
			}
			p.Moves[tid] = pc
			return nil
		}
	}
	return &proc.ThreadError{Op: "setregs", TID: tid, Err: proc.ErrExited}
}

// Resume ends a stop.
func (p *Process) Resume() error {
	if p.CountWindowAllocs && p.stopped {
		runtime.ReadMemStats(&p.mem)
		p.WindowAllocs += p.mem.Mallocs - p.mallocs
	}
	p.stopped = false
	p.Resumes++
	if p.exited {
		return fmt.Errorf("fake resume: %w", proc.ErrExited)
	}
	return nil
}

// Stopped reports whether the threads are stopped.
func (p *Process) Stopped() bool { return p.stopped }

// Modules returns ModList.
func (p *Process) Modules() ([]proc.Module, error) { return p.ModList, nil }

// Close does nothing.
func (p *Process) Close() error { return nil }

// Snapshot is a deep copy of every mapping, sorted by address, for
// byte-identical comparisons.
func (p *Process) Snapshot() []Mapping {
	out := make([]Mapping, len(p.Maps))
	for i, m := range p.Maps {
		out[i] = Mapping{Base: m.Base, Data: append([]byte(nil), m.Data...), Prot: m.Prot, Allocated: m.Allocated}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Base < out[j].Base })
	return out
}

// Revive undoes an injected exit (so a test can inspect memory).
func (p *Process) Revive() { p.exited = false }
