package patch

import (
	"context"
	"time"

	"github.com/seed3bccf95f/hotpatch/verify"
)

// Applied is a committed transaction. Rollback undoes it.
type Applied struct {
	t   *Target
	ops []*op
	id  int
	// Pause is how long the target's threads were stopped for the commit
	// (the successful attempt); zero in-process on Linux, where nothing
	// stops.
	Pause time.Duration
	// Attempts counts the stops it took (more than 1 when a thread was in
	// the way and the commit backed off).
	Attempts int
	// Functions counts the redirected functions.
	Functions int
	rolled    bool
	opts      Options
}

// ID numbers committed transactions of a Target from 1, in commit order.
func (a *Applied) ID() int { return a.id }

// Commit applies every planned redirection and detour, all or none: it
// stops the target's threads, checks the pre-image of each entry and that
// no thread is inside bytes to overwrite (moving threads parked in a
// detour's prologue into its trampoline), writes the entry jumps, flushes,
// reads back, checks protections and resumes. A thread in the way makes it
// resume, back off and retry until ctx ends (*BusyError). Any failure
// leaves the target as it was and frees the trampolines.
func (tx *Tx) Commit(ctx context.Context) (*Applied, error) {
	if tx.done {
		return nil, ErrTxDone
	}
	tx.done = true
	t := tx.t
	t.mu.Lock()
	defer t.mu.Unlock()
	a := &Applied{t: t, ops: tx.ops, Functions: len(tx.ops)}
	var err error
	if len(tx.ops) > 0 {
		if !t.caps.StopThreads {
			err = t.commitConcurrent(tx.ops)
		} else {
			var st stats
			st, err = t.applyStopped(ctx, commitChange(tx.ops), tx.opts)
			a.Pause, a.Attempts = st.pause, st.attempts
		}
	}
	if err != nil {
		tx.freeAll()
		return nil, err
	}
	t.nextID++
	a.id = t.nextID
	a.opts = tx.opts
	t.applied = append(t.applied, a)
	return a, nil
}

func commitChange(ops []*op) *change {
	ch := &change{}
	for _, o := range ops {
		ch.sites = append(ch.sites, site{name: o.fn.Name, addr: o.fn.Addr, want: o.orig, put: o.entry})
		end := o.fn.Addr + o.fn.Size
		if o.fn.Size == 0 {
			end = o.fn.Addr + uint64(len(o.orig))
		}
		ch.strict = append(ch.strict, verify.Range{Start: o.fn.Addr, End: end, Function: o.fn.Name})
		if o.kind == opDetour {
			ch.moves = append(ch.moves, move{from: o.fn.Addr, to: o.tramp, bounds: o.bounds, skipZero: true})
		}
	}
	return ch
}

// Rollback restores the exact original bytes of every function the
// transaction changed. Its trampolines stay mapped (retired, see
// FreeRetired), since a replacement may still be about to call one. Stacked transactions roll
// back newest first: rolling back an older one while a newer one is applied
// is an *OrderError (the newer one's pre-image would no longer hold).
// Threads inside a trampoline stay there (see rollbackChange).
func (a *Applied) Rollback(ctx context.Context) error {
	t := a.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.rolled {
		return ErrRolledBack
	}
	if n := len(t.applied); n == 0 || t.applied[n-1] != a {
		newest := 0
		if n > 0 {
			newest = t.applied[n-1].id
		}
		return &OrderError{ID: a.id, Newest: newest}
	}
	var err error
	if !t.caps.StopThreads {
		err = t.rollbackConcurrent(a.ops)
	} else {
		_, err = t.applyStopped(ctx, rollbackChange(a.ops), a.opts)
	}
	if err != nil {
		return err
	}
	for _, o := range a.ops {
		if o.tramp == 0 {
			continue
		}
		if old, ok := t.retired[o.fn.Addr]; ok && old.addr != o.tramp {
			_ = t.p.Free(old.addr, old.size)
		}
		t.retired[o.fn.Addr] = retiredTramp{addr: o.tramp, size: o.trampSize, code: o.code}
	}
	a.rolled = true
	t.applied = t.applied[:len(t.applied)-1]
	return nil
}

// rollbackChange restores every entry. Threads inside a trampoline are left
// there: the trampoline stays mapped (retired) and runs the original
// prologue, then the original body, which the rollback leaves intact. Moving
// them back would be wrong for a thread at the trampoline's first byte that
// a replacement called: at the entry, the next commit would send it to the
// replacement a second time.
func rollbackChange(ops []*op) *change {
	ch := &change{}
	for _, o := range ops {
		ch.sites = append(ch.sites, site{name: o.fn.Name, addr: o.fn.Addr, want: o.entry, put: o.orig})
	}
	return ch
}
