package patch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/trampoline"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// site is one write of a stopped-world change.
type site struct {
	name string
	addr uint64
	want []byte // pre-image: what must be there before the write
	put  []byte // what is written
}

// move is a range threads may be moved out of instead of waiting for them:
// a thread stopped at from+b.Old goes to to+b.New (a detour moving a thread
// into its trampoline).
type move struct {
	from, to uint64
	bounds   []trampoline.Boundary
	skipZero bool // a thread at from+0 stays (it runs whatever is written there)
}

// change is everything one stop of the target does.
type change struct {
	sites  []site
	busy   []verify.Range // no thread may be inside (besides the sites)
	moves  []move
	strict []verify.Range // strict mode: no return address into these
}

// movedThread records a SetPC to undo it.
type movedThread struct {
	tid    int
	oldPC  uint64
	newPC  uint64
	failed bool
}

// stats is what one applyStopped measured.
type stats struct {
	pause    time.Duration // last attempt's time with threads stopped
	attempts int
}

// The window is the time between Stop and Resume. Nothing in it allocates
// or takes a lock of its own: a suspended thread may hold the Go heap's or
// the process heap's lock (Windows in-process, where the caller's own
// runtime threads are suspended too), and waiting for it would never end.
// Everything it needs is sized before Stop (window); a failure inside is
// recorded in place (fault) and becomes an error after Resume; a thread
// list larger than the buffers makes it resume, grow them and stop again.

// window holds the buffers one stop of the target works in.
type window struct {
	cur   [][]byte // per site: the pre-image read
	back  [][]byte // per site: what was written, read back
	undo  [][]byte // per site: the pre-image, read back after undoing
	moved []movedThread
	stay  []proc.Thread
	stack []byte
	fail  fault // why the window ended without the change
	undid fault // why undoing a failed change failed, too
}

// newWindow sizes a window for ch, for up to threads threads.
func newWindow(ch *change, opts Options, threads int) *window {
	w := &window{}
	for _, s := range ch.sites {
		w.cur = append(w.cur, make([]byte, len(s.want)))
		w.back = append(w.back, make([]byte, len(s.put)))
		w.undo = append(w.undo, make([]byte, len(s.want)))
	}
	if opts.Strict {
		w.stack = make([]byte, opts.StackBytes)
	}
	w.fit(threads)
	return w
}

// fit makes room for n threads.
func (w *window) fit(n int) {
	if cap(w.stay) < n {
		w.stay = make([]proc.Thread, 0, n)
		w.moved = make([]movedThread, 0, n)
	}
}

// fault is a failure inside the window, kept without allocating: a failed
// check (in check) or a failed back-end call (op set).
type fault struct {
	check verify.Failure
	op    string // SiteError.Op
	name  string
	tid   int // the thread a "setpc" or "stack" failure concerns (name unset)
	addr  uint64
	err   error
}

// site records a back-end failure (the first one).
func (f *fault) site(op, name string, tid int, addr uint64, err error) {
	if !f.failed() {
		f.op, f.name, f.tid, f.addr, f.err = op, name, tid, addr, err
	}
}

func (f *fault) failed() bool { return f.op != "" || f.check.Failed() }

// error builds the typed error (after the window).
func (f *fault) error() error {
	if f.op == "" {
		return f.check.Err()
	}
	name := f.name
	if name == "" {
		name = fmt.Sprintf("thread %d", f.tid)
	}
	return &SiteError{Op: f.op, Function: name, Addr: f.addr, Err: f.err}
}

// outcome is how a window ended.
type outcome uint8

const (
	done   outcome = iota // the change is made
	busy                  // a thread is in the way (w.fail.check has it): retry
	failed                // w.fail says why; the target is as it was unless w.undid failed too
	grow                  // more threads than the buffers hold
)

// applyStopped stops the target, checks (through verify) that the change may
// be made, makes it and resumes. A thread in the way makes it resume, back
// off and retry until ctx ends. Any failure after the first write restores
// every byte and every moved thread before resuming.
func (t *Target) applyStopped(ctx context.Context, ch *change, opts Options) (stats, error) {
	var st stats
	act := verify.ActivenessOptions{}
	if t.arch == arch.AMD64 {
		act = verify.LinuxAMD64
	}
	ranges := make([]verify.Range, 0, len(ch.sites)+len(ch.busy))
	for _, s := range ch.sites {
		ranges = append(ranges, verify.Range{Start: s.addr, End: s.addr + uint64(len(s.put)), Function: s.name, Bytes: s.want})
	}
	ranges = append(ranges, ch.busy...)

	// Protections before, one query per distinct region.
	var before []protAt
	for _, s := range ch.sites {
		if covered(before, s.addr, func(p protAt) proc.Region { return p.r }) {
			continue
		}
		r, err := t.p.Query(s.addr)
		if err != nil {
			return st, &SiteError{Op: "query", Function: s.name, Addr: s.addr, Err: err}
		}
		before = append(before, protAt{s.addr, r})
	}
	w := newWindow(ch, opts, 64)
	backoff := opts.Backoff
	var lastBusy error
	for {
		st.attempts++
		start := time.Now()
		threads, err := t.p.Stop(ctx)
		if err != nil {
			if lastBusy != nil && ctx.Err() != nil {
				return st, &BusyError{Attempts: st.attempts - 1, Last: lastBusy, Cause: ctx.Err()}
			}
			return st, fmt.Errorf("patch: stop: %w", err)
		}
		out := t.change(ch, w, threads, ranges, before, act, opts.Strict)
		rerr := t.p.Resume()
		switch out {
		case done:
			if rerr != nil {
				return st, fmt.Errorf("patch: resume after writing: %w", rerr)
			}
			st.pause = time.Since(start)
			return st, nil
		case grow:
			st.attempts--
			if rerr != nil {
				return st, fmt.Errorf("patch: resume: %w", rerr)
			}
			w.fit(2 * len(threads))
			continue
		case busy:
			if rerr != nil {
				return st, fmt.Errorf("patch: resume: %w", rerr)
			}
			lastBusy = w.fail.error()
			if err := sleep(ctx, jitter(backoff)); err != nil {
				return st, &BusyError{Attempts: st.attempts, Last: lastBusy, Cause: err}
			}
			backoff = min(2*backoff, opts.MaxBackoff)
			continue
		}
		err = w.fail.error()
		if w.undid.failed() {
			err = &RestoreError{Err: err, Restore: w.undid.error()}
		}
		if rerr != nil {
			err = &RestoreError{Err: err, Restore: rerr}
		}
		return st, err
	}
}

// protAt is a page's protection before the change.
type protAt struct {
	addr uint64
	r    proc.Region
}

// change is the window of applyStopped: with threads stopped, it checks
// the pre-images and that no thread is in the way, then moves threads,
// writes, flushes, reads back and checks protections. It allocates
// nothing (see window).
func (t *Target) change(ch *change, w *window, threads []proc.Thread, ranges []verify.Range, before []protAt, act verify.ActivenessOptions, strict bool) outcome {
	w.fail, w.undid = fault{}, fault{}
	if len(threads) > cap(w.stay) {
		return grow
	}
	// Pre-image.
	for i, s := range ch.sites {
		if err := t.p.ReadAt(w.cur[i], s.addr); err != nil {
			w.fail.site("read", s.name, 0, s.addr, err)
			return failed
		}
		if !w.fail.check.PreImage(s.addr, s.name, s.want, w.cur[i]) {
			return failed
		}
	}
	// Activeness: first the threads the change can move, then the rest.
	// A moved thread lands on the copy of the instruction it was at,
	// which is consistent by construction: only the others are checked.
	w.moved, w.stay = w.moved[:0], w.stay[:0]
	for _, th := range threads {
		if pc, ok := moveTarget(ch.moves, th.PC); ok && !th.NoRegs {
			w.moved = append(w.moved, movedThread{tid: th.ID, oldPC: th.PC, newPC: pc})
			continue
		}
		w.stay = append(w.stay, th)
	}
	if !w.fail.check.Activeness(w.stay, ranges, act) {
		return busy
	}
	if strict {
		if !t.scanStacks(threads, ch.strict, w.stack, &w.fail) {
			if w.fail.op != "" {
				return failed
			}
			return busy
		}
	}
	// Make the change.
	if t.writeSites(ch.sites, w) {
		for _, b := range before {
			r, err := t.p.Query(b.addr)
			if err != nil {
				w.fail.site("query", "patched page", 0, b.addr, err)
				break
			}
			if !w.fail.check.Protection(b.addr, b.r.Prot, r.Prot) {
				break
			}
		}
		if !w.fail.failed() {
			return done
		}
	}
	t.undo(ch.sites, w)
	return failed
}

// writeSites moves threads and writes every site, then flushes and reads
// back. It stops at the first failure (recorded in w.fail).
func (t *Target) writeSites(sites []site, w *window) bool {
	for i := range w.moved {
		m := &w.moved[i]
		if err := t.p.SetPC(m.tid, m.newPC); err != nil {
			m.failed = true
			w.fail.site("setpc", "", m.tid, m.newPC, err)
			return false
		}
	}
	for _, s := range sites {
		if err := t.p.WriteAt(s.put, s.addr); err != nil {
			w.fail.site("write", s.name, 0, s.addr, err)
			return false
		}
	}
	for _, s := range sites {
		if err := t.p.FlushICache(s.addr, uint64(len(s.put))); err != nil {
			w.fail.site("flush", s.name, 0, s.addr, err)
			return false
		}
	}
	for i, s := range sites {
		if !t.readInto(&w.fail, s.name, s.addr, s.put, w.back[i]) {
			return false
		}
	}
	return true
}

// undo writes every site's pre-image back (a failed write may have written
// part of its bytes) and moves threads back. It tries everything and
// records the first failure in w.undid.
func (t *Target) undo(sites []site, w *window) {
	for i, s := range sites {
		if err := t.p.WriteAt(s.want, s.addr); err != nil {
			w.undid.site("write", s.name, 0, s.addr, err)
			continue
		}
		_ = t.p.FlushICache(s.addr, uint64(len(s.want)))
		t.readInto(&w.undid, s.name, s.addr, s.want, w.undo[i])
	}
	for _, m := range w.moved {
		if m.failed {
			continue
		}
		if err := t.p.SetPC(m.tid, m.oldPC); err != nil {
			w.undid.site("setpc", "", m.tid, m.oldPC, err)
		}
	}
}

// readInto reads len(want) bytes at addr into buf and checks them against
// want (verify.Readback), recording a failure in f.
func (t *Target) readInto(f *fault, name string, addr uint64, want, buf []byte) bool {
	if err := t.p.ReadAt(buf, addr); err != nil {
		f.site("read", name, 0, addr, err)
		return false
	}
	return f.check.Readback(addr, name, want, buf)
}

// moveTarget returns where a thread stopped at pc goes, if a move covers it.
func moveTarget(moves []move, pc uint64) (uint64, bool) {
	for _, m := range moves {
		for _, b := range m.bounds {
			from, to := b.Old, b.New
			if from == 0 && m.skipZero {
				continue
			}
			if pc == m.from+uint64(from) {
				return m.to + uint64(to), true
			}
		}
	}
	return 0, false
}

// scanStacks is the strict check: no return address into fns on any
// stack. It runs in the window: a failure is recorded in f (a failed read
// with f.op set, a return address in f.check).
func (t *Target) scanStacks(threads []proc.Thread, fns []verify.Range, buf []byte, f *fault) bool {
	for _, th := range threads {
		if th.NoRegs || th.SP == 0 {
			continue
		}
		n := uint64(len(buf))
		if r, err := t.p.Query(th.SP); err == nil && r.Base+r.Size-th.SP < n {
			n = r.Base + r.Size - th.SP
		}
		if err := t.p.ReadAt(buf[:n], th.SP); err != nil {
			f.site("stack", "", th.ID, th.SP, err)
			return false
		}
		if !f.check.StackScan(th.ID, th.SP, buf[:n], fns, 8) {
			return false
		}
	}
	return true
}

func covered[T any](xs []T, addr uint64, region func(T) proc.Region) bool {
	for _, x := range xs {
		r := region(x)
		if addr >= r.Base && addr < r.Base+r.Size {
			return true
		}
	}
	return false
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}
