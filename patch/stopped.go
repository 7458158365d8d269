package patch

import (
	"context"
	"errors"
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
	type protAt struct {
		addr uint64
		r    proc.Region
	}
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
	cur := make([][]byte, len(ch.sites))
	for i, s := range ch.sites {
		cur[i] = make([]byte, len(s.want))
	}
	var stack []byte
	if opts.Strict {
		stack = make([]byte, opts.StackBytes)
	}
	backoff := opts.Backoff
	var moved []movedThread
	var stay []proc.Thread
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
		fail := func(err error) (stats, error) {
			if rerr := t.p.Resume(); rerr != nil {
				return st, &RestoreError{Err: err, Restore: rerr}
			}
			return st, err
		}
		// Pre-image.
		for i, s := range ch.sites {
			if err := t.p.ReadAt(cur[i], s.addr); err != nil {
				return fail(&SiteError{Op: "read", Function: s.name, Addr: s.addr, Err: err})
			}
			if err := verify.PreImage(s.addr, s.name, s.want, cur[i]); err != nil {
				return fail(err)
			}
		}
		// Activeness: first the threads the change can move, then the rest.
		// A moved thread lands on the copy of the instruction it was at,
		// which is consistent by construction: only the others are checked.
		moved = moved[:0]
		stay = stay[:0]
		for _, th := range threads {
			if pc, ok := moveTarget(ch.moves, th.PC); ok && !th.NoRegs {
				moved = append(moved, movedThread{tid: th.ID, oldPC: th.PC, newPC: pc})
				continue
			}
			stay = append(stay, th)
		}
		busy := verify.Activeness(stay, ranges, act)
		if busy == nil && opts.Strict {
			busy = t.scanStacks(threads, ch.strict, stack)
		}
		if busy != nil {
			var ae *verify.ActiveThreadError
			if !errors.As(busy, &ae) {
				return fail(busy)
			}
			if err := t.p.Resume(); err != nil {
				return st, fmt.Errorf("patch: resume: %w", err)
			}
			lastBusy = busy
			if err := sleep(ctx, jitter(backoff)); err != nil {
				return st, &BusyError{Attempts: st.attempts, Last: busy, Cause: err}
			}
			backoff = min(2*backoff, opts.MaxBackoff)
			continue
		}
		// Make the change.
		err = t.writeSites(ch.sites, moved)
		if err == nil {
			for _, b := range before {
				r, qerr := t.p.Query(b.addr)
				if qerr == nil {
					qerr = verify.Protection(b.addr, b.r.Prot, r.Prot)
				}
				if qerr != nil {
					err = qerr
					break
				}
			}
		}
		if err != nil {
			if uerr := t.undo(ch.sites, moved); uerr != nil {
				err = &RestoreError{Err: err, Restore: uerr}
			}
			return fail(err)
		}
		if err := t.p.Resume(); err != nil {
			return st, fmt.Errorf("patch: resume after writing: %w", err)
		}
		st.pause = time.Since(start)
		return st, nil
	}
}

// writeSites moves threads and writes every site, then flushes and reads
// back. It stops at the first failure.
func (t *Target) writeSites(sites []site, moved []movedThread) error {
	for i := range moved {
		if err := t.p.SetPC(moved[i].tid, moved[i].newPC); err != nil {
			moved[i].failed = true
			return &SiteError{Op: "setpc", Function: fmt.Sprintf("thread %d", moved[i].tid), Addr: moved[i].newPC, Err: err}
		}
	}
	for _, s := range sites {
		if err := t.p.WriteAt(s.put, s.addr); err != nil {
			return &SiteError{Op: "write", Function: s.name, Addr: s.addr, Err: err}
		}
	}
	for _, s := range sites {
		if err := t.p.FlushICache(s.addr, uint64(len(s.put))); err != nil {
			return &SiteError{Op: "flush", Function: s.name, Addr: s.addr, Err: err}
		}
	}
	for _, s := range sites {
		if err := t.readback(s.name, s.addr, s.put); err != nil {
			return err
		}
	}
	return nil
}

// undo writes every site's pre-image back (a failed write may have written
// part of its bytes) and moves threads back. It tries everything and
// returns the first failure.
func (t *Target) undo(sites []site, moved []movedThread) error {
	var first error
	for _, s := range sites {
		err := t.p.WriteAt(s.want, s.addr)
		if err == nil {
			_ = t.p.FlushICache(s.addr, uint64(len(s.want)))
			err = t.readback(s.name, s.addr, s.want)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	for _, m := range moved {
		if m.failed {
			continue
		}
		if err := t.p.SetPC(m.tid, m.oldPC); err != nil && first == nil {
			first = err
		}
	}
	return first
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

// scanStacks is the strict check: no return address into fns on any stack.
func (t *Target) scanStacks(threads []proc.Thread, fns []verify.Range, buf []byte) error {
	for _, th := range threads {
		if th.NoRegs || th.SP == 0 {
			continue
		}
		n := uint64(len(buf))
		if r, err := t.p.Query(th.SP); err == nil && r.Base+r.Size-th.SP < n {
			n = r.Base + r.Size - th.SP
		}
		if err := t.p.ReadAt(buf[:n], th.SP); err != nil {
			return &SiteError{Op: "stack", Function: fmt.Sprintf("thread %d", th.ID), Addr: th.SP, Err: err}
		}
		if err := verify.StackScan(th.ID, th.SP, buf[:n], fns, 8); err != nil {
			return err
		}
	}
	return nil
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
