package patch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/trampoline"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// Function is a function of the target: its name (for errors), entry
// address and size in bytes (0 when unknown: then only the bytes the jump
// overwrites are checked, and a function shorter than the jump cannot be
// detected). Expect, when set, holds the bytes the caller knows must be at
// Addr (from the image on disk): the pre-image check compares against them
// instead of the bytes read when the redirection was added.
type Function struct {
	Name   string
	Addr   uint64
	Size   uint64
	Expect []byte
}

type opKind uint8

const (
	opRedirect opKind = iota
	opDetour
)

// op is one planned entry rewrite.
type op struct {
	kind  opKind
	fn    Function
	to    uint64
	orig  []byte // bytes at fn.Addr that entry replaces (the pre-image)
	entry []byte // bytes written at fn.Addr

	// Detour: the trampoline (allocated, code written at Detour time).
	tramp     uint64
	trampSize uint64
	code      []byte
	bounds    []trampoline.Boundary

	// In-process (no stop): the atomic store(s), see concurrent.go.
	word     uint64
	wordSize int
	oldWord  uint64
	newWord  uint64
	pad      *padSite
}

// Tx is a transaction: redirections and detours added with Redirect and
// Detour are applied together by Commit, or dropped by Abort.
type Tx struct {
	t    *Target
	opts Options
	ops  []*op
	done bool
}

// Redirect plans sending every call of fn to `to`: the smallest jump that
// reaches `to` replaces fn's first bytes. fn's body is no longer reachable
// (use Detour to keep calling the original). A function shorter than the
// jump is refused with a *trampoline.TooShortError naming it.
func (tx *Tx) Redirect(fn Function, to uint64) error {
	if tx.done {
		return ErrTxDone
	}
	t := tx.t
	jump, err := trampoline.EncodeJump(t.arch, fn.Addr, to)
	if err != nil {
		return err
	}
	if fn.Size > 0 {
		if err := trampoline.CheckFits(t.arch, fn.Name, fn.Addr, int(fn.Size), to); err != nil {
			return err
		}
	}
	o := &op{kind: opRedirect, fn: fn, to: to, entry: jump}
	if t.caps.Self {
		if err := verify.GoRedirect(fn.Name, fn.Addr, to, isGoCode(fn.Addr), isGoCode(to)); err != nil {
			return err
		}
	}
	if !t.caps.StopThreads {
		if err := t.planConcurrent(o); err != nil {
			return err
		}
	} else {
		if o.orig, err = tx.preImage(fn, len(jump)); err != nil {
			return err
		}
	}
	tx.ops = append(tx.ops, o)
	return nil
}

// preImage returns the n bytes expected at fn.Addr: fn.Expect, or what the
// target holds now.
func (tx *Tx) preImage(fn Function, n int) ([]byte, error) {
	if fn.Expect != nil {
		if len(fn.Expect) < n {
			return nil, fmt.Errorf("patch: %s: Expect has %d bytes, the patch overwrites %d", fn.Name, len(fn.Expect), n)
		}
		return append([]byte(nil), fn.Expect[:n]...), nil
	}
	b := make([]byte, n)
	if err := tx.t.p.ReadAt(b, fn.Addr); err != nil {
		return nil, &SiteError{Op: "read", Function: fn.Name, Addr: fn.Addr, Err: err}
	}
	return b, nil
}

// Detour plans sending calls of fn to `to` while keeping the original
// callable: it allocates a trampoline near fn, writes into it fn's first
// instructions (relocated) and a jump back, and returns its address — the
// replacement calls it to run the original. Nothing in fn changes before
// Commit. A thread stopped inside the moved instructions at commit time is
// moved to the matching instruction of the trampoline.
func (tx *Tx) Detour(fn Function, to uint64) (uint64, error) {
	if tx.done {
		return 0, ErrTxDone
	}
	t := tx.t
	if !t.caps.StopThreads {
		return 0, &NeedStopError{Function: fn.Name, Addr: fn.Addr, Why: "a detour rewrites several instructions, which is only safe with every thread stopped; this back-end cannot stop them (use Redirect)"}
	}
	if t.caps.Self && isGoCode(fn.Addr) {
		return 0, &verify.ForeignCodeError{Symbol: fn.Name, From: fn.Addr, To: to}
	}
	n := fn.Size
	if n == 0 || n > 256 {
		n = 64 // enough for any prologue; whole function unknown
	}
	code := make([]byte, n)
	if err := t.p.ReadAt(code, fn.Addr); err != nil {
		// Near the end of a mapping: fall back to what the jump needs.
		code = code[:trampoline.FarJumpSize(t.arch)+16]
		if err := t.p.ReadAt(code, fn.Addr); err != nil {
			return 0, &SiteError{Op: "read", Function: fn.Name, Addr: fn.Addr, Err: err}
		}
	}
	var ropts trampoline.Options
	if fn.Size > 0 && fn.Size <= 256 {
		ropts.Function, ropts.FunctionAddr = code, fn.Addr
	}
	// Plan at a provisional address to learn the trampoline's size.
	reach := uint64(1<<31 - 1<<20)
	if t.arch == arch.ARM64 {
		reach = 128<<20 - 1<<16
	}
	const size = 4096
	// The function's retired trampoline (from a rolled-back detour) is
	// reused when its code is what this detour needs.
	t.mu.Lock()
	r, reuse := t.retired[fn.Addr]
	if reuse {
		delete(t.retired, fn.Addr)
	}
	t.mu.Unlock()
	if reuse {
		if d, err := trampoline.NewDetour(t.arch, fn.Addr, code, to, r.addr, &ropts); err == nil && bytes.Equal(d.Code, r.code) {
			if err := t.readback(fn.Name, r.addr, d.Code); err == nil {
				if orig, err := tx.preImage(fn, len(d.Original)); err == nil && verify.PreImage(fn.Addr, fn.Name, orig, d.Original) == nil {
					tx.ops = append(tx.ops, &op{kind: opDetour, fn: fn, to: to, orig: orig, entry: d.Entry,
						tramp: r.addr, trampSize: r.size, code: d.Code, bounds: d.Boundaries})
					return r.addr, nil
				}
			}
		}
		_ = t.p.Free(r.addr, r.size)
	}
	tramp, err := t.p.AllocNear(context.Background(), fn.Addr, size, reach, proc.ProtRead|proc.ProtExec)
	if err != nil {
		return 0, &SiteError{Op: "alloc", Function: fn.Name, Addr: fn.Addr, Err: err}
	}
	d, err := trampoline.NewDetour(t.arch, fn.Addr, code, to, tramp, &ropts)
	var ts *trampoline.TooShortError
	if errors.As(err, &ts) && ts.Function == "" {
		ts.Function = fn.Name
	}
	if err == nil && fn.Size > 0 && uint64(len(d.Original)) > fn.Size {
		err = &trampoline.TooShortError{Function: fn.Name, Addr: fn.Addr, Size: int(fn.Size), Need: len(d.Original)}
	}
	if err == nil && len(d.Code) > size {
		err = fmt.Errorf("patch: %s: trampoline of %d bytes", fn.Name, len(d.Code))
	}
	var orig []byte
	if err == nil {
		orig, err = tx.preImage(fn, len(d.Original))
	}
	if err == nil {
		err = verify.PreImage(fn.Addr, fn.Name, orig, d.Original)
	}
	if err == nil {
		if werr := t.p.WriteAt(d.Code, tramp); werr != nil {
			err = &SiteError{Op: "write", Function: fn.Name, Addr: tramp, Err: werr}
		}
	}
	if err == nil {
		err = t.readback(fn.Name, tramp, d.Code)
	}
	if err == nil {
		err = t.p.FlushICache(tramp, uint64(len(d.Code)))
	}
	if err != nil {
		_ = t.p.Free(tramp, size)
		return 0, err
	}
	tx.ops = append(tx.ops, &op{kind: opDetour, fn: fn, to: to, orig: orig, entry: d.Entry,
		tramp: tramp, trampSize: size, code: d.Code, bounds: d.Boundaries})
	return tramp, nil
}

// Abort drops the transaction and frees what it allocated.
func (tx *Tx) Abort() {
	if tx.done {
		return
	}
	tx.done = true
	tx.freeAll()
}

func (tx *Tx) freeAll() {
	for _, o := range tx.ops {
		if o.tramp != 0 {
			_ = tx.t.p.Free(o.tramp, o.trampSize)
		}
	}
}

func (t *Target) readback(name string, addr uint64, want []byte) error {
	got := make([]byte, len(want))
	if err := t.p.ReadAt(got, addr); err != nil {
		return &SiteError{Op: "read", Function: name, Addr: addr, Err: err}
	}
	return verify.Readback(addr, name, want, got)
}

// isGoCode reports whether addr is code of this Go program (in the Go
// runtime's function table). Only meaningful for the calling process.
func isGoCode(addr uint64) bool {
	return runtime.FuncForPC(uintptr(addr)) != nil
}
