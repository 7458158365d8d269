package patch

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/proc/fake"
	"github.com/seed3bccf95f/hotpatch/trampoline"
	"github.com/seed3bccf95f/hotpatch/verify"
)

const base = 0x400000

// The fake module: real x86-64 code, so the planner decodes and relocates
// it for real.
var (
	// f1: push rbp; mov rbp,rsp; mov [rbp-4],edi; mov eax,[rbp-4]; pop rbp; ret
	f1Code   = []byte{0x55, 0x48, 0x89, 0xe5, 0x89, 0x7d, 0xfc, 0x8b, 0x45, 0xfc, 0x5d, 0xc3}
	f1Bounds = []int{0, 1, 4, 7, 10, 11}
	// f2: mov eax,1; ret
	f2Code = []byte{0xb8, 0x01, 0x00, 0x00, 0x00, 0xc3}
	// f3: xor eax,eax; ret (too short for a jump)
	f3Code = []byte{0x31, 0xc0, 0xc3}
)

var (
	f1 = Function{Name: "f1", Addr: base + 0x00, Size: uint64(len(f1Code))}
	f2 = Function{Name: "f2", Addr: base + 0x20, Size: uint64(len(f2Code))}
	f3 = Function{Name: "f3", Addr: base + 0x40, Size: uint64(len(f3Code))}
	// Replacements elsewhere in the module.
	r1, r2 = uint64(base + 0x800), uint64(base + 0x900)
)

const stackBase = 0x7f0000

func newFake(t testing.TB) (*fake.Process, *Target) {
	t.Helper()
	code := make([]byte, 0x1000)
	for i := range code {
		code[i] = 0xcc
	}
	copy(code[0x00:], f1Code)
	copy(code[0x20:], f2Code)
	copy(code[0x40:], f3Code)
	p := fake.New(arch.AMD64, base, code)
	p.Maps = append(p.Maps, &fake.Mapping{Base: stackBase, Data: make([]byte, 0x4000), Prot: proc.ProtRead | proc.ProtWrite})
	p.Threads = []proc.Thread{{ID: 10, PC: base + 0x900, SP: stackBase + 0x3000}, {ID: 11, PC: 0x10, SP: stackBase + 0x1000}}
	return p, newTarget(p)
}

func quick(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestFakeCommitRollback(t *testing.T) {
	p, tg := newFake(t)
	before := p.Snapshot()
	tx := tg.Begin(Options{})
	require.NoError(t, tx.Redirect(f1, r1))
	require.NoError(t, tx.Redirect(f2, r2))
	tr, err := tx.Detour(Function{Name: "f1-detour-would-clash"}, r1)
	require.Error(t, err, "unmapped function")
	require.Zero(t, tr)
	a, err := tx.Commit(context.Background())
	require.NoError(t, err)
	require.Equal(t, 1, a.Attempts)
	require.Equal(t, 2, a.Functions)
	got, _ := tg.Read(f1.Addr, 5)
	want, _ := trampoline.EncodeJump(arch.AMD64, f1.Addr, r1)
	require.Equal(t, want, got)
	require.False(t, p.Stopped())
	require.NoError(t, a.Rollback(context.Background()))
	require.Equal(t, before, p.Snapshot())
	require.ErrorIs(t, a.Rollback(context.Background()), ErrRolledBack)
	_, err = tx.Commit(context.Background())
	require.ErrorIs(t, err, ErrTxDone)
}

func TestFakePreImage(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan func(tx *Tx) error
		race func(p *fake.Process) // changes the target between plan and commit
	}{
		{"expect differs", func(tx *Tx) error {
			f := f1
			f.Expect = []byte{0x90, 0x90, 0x90, 0x90, 0x90}
			return tx.Redirect(f, r1)
		}, nil},
		{"changed after planning", func(tx *Tx) error { return tx.Redirect(f1, r1) },
			func(p *fake.Process) { p.Maps[0].Data[2] = 0x90 }},
		{"detour changed after planning", func(tx *Tx) error { _, err := tx.Detour(f1, r1); return err },
			func(p *fake.Process) { p.Maps[0].Data[2] = 0x90 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, tg := newFake(t)
			tx := tg.Begin(Options{})
			require.NoError(t, tx.Redirect(f2, r2))
			require.NoError(t, tc.plan(tx))
			if tc.race != nil {
				tc.race(p)
			}
			before := p.Snapshot()
			_, err := tx.Commit(context.Background())
			var pe *verify.PreImageError
			require.ErrorAs(t, err, &pe)
			require.Equal(t, "f1", pe.Symbol)
			require.Equal(t, f1.Addr, pe.Addr)
			after := p.Snapshot()
			require.Equal(t, before[:1], after[:1], "code untouched")
			for _, m := range after {
				require.False(t, m.Allocated, "trampoline freed")
			}
			require.False(t, p.Stopped())
		})
	}
}

// TestFakeWriteFails injects a failing write at every write of a commit
// (and an exit): the target is left byte-identical.
func TestFakeWriteFails(t *testing.T) {
	plan := func(tx *Tx) {
		require.NoError(t, tx.Redirect(f2, r2))
		_, err := tx.Detour(f1, r1)
		require.NoError(t, err)
	}
	// A clean run counts the writes.
	p, tg := newFake(t)
	tx := tg.Begin(Options{})
	plan(tx)
	planned := p.Writes
	_, err := tx.Commit(context.Background())
	require.NoError(t, err)
	total := p.Writes
	require.Greater(t, total, planned)
	for k := 1; k <= total; k++ {
		for _, exit := range []bool{false, true} {
			p, tg := newFake(t)
			before := p.Snapshot()
			if exit {
				p.ExitAtWrite = k
			} else {
				p.FailWrite = k
			}
			tx := tg.Begin(Options{})
			require.NoError(t, tx.Redirect(f2, r2))
			_, derr := tx.Detour(f1, r1)
			var cerr error
			if derr == nil {
				_, cerr = tx.Commit(context.Background())
			}
			err := errors.Join(derr, cerr)
			require.Error(t, err, "write %d exit %v", k, exit)
			if exit {
				require.ErrorIs(t, err, proc.ErrExited)
				if k > planned+1 {
					// Writes after the first were lost with the process:
					// the restore failed and says so.
					var re *RestoreError
					require.ErrorAs(t, err, &re)
				}
				p.Revive()
				if k <= planned+1 {
					require.Equal(t, before[:1], p.Snapshot()[:1])
				}
				continue
			}
			var se *SiteError
			require.ErrorAs(t, err, &se, "write %d", k)
			require.Equal(t, "write", se.Op)
			require.Equal(t, before, p.Snapshot(), "write %d failing leaves the target identical", k)
			require.False(t, p.Stopped())
		}
	}
}

func TestFakeTooShort(t *testing.T) {
	_, tg := newFake(t)
	tx := tg.Begin(Options{})
	err := tx.Redirect(f3, r1)
	var ts *trampoline.TooShortError
	require.ErrorAs(t, err, &ts)
	require.Equal(t, "f3", ts.Function)
	require.Contains(t, err.Error(), "f3")
	_, err = tx.Detour(f3, r1)
	require.ErrorIs(t, err, trampoline.ErrTooShort)
	require.Contains(t, err.Error(), "f3")
}

// TestFakeParkedEveryBoundary: a thread stopped at each instruction
// boundary inside the bytes to overwrite. Redirect backs off until ctx ends
// and names thread and function; Detour moves the thread into the
// trampoline, where rollback leaves it.
func TestFakeParkedEveryBoundary(t *testing.T) {
	for _, b := range f1Bounds {
		pc := f1.Addr + uint64(b)
		// Redirect.
		p, tg := newFake(t)
		p.Threads[1].PC = pc
		before := p.Snapshot()
		tx := tg.Begin(Options{})
		require.NoError(t, tx.Redirect(f1, r1))
		a, err := tx.Commit(quick(t))
		if b == 0 || b >= 5 {
			require.NoError(t, err, "boundary %d is not inside the jump", b)
			require.NoError(t, a.Rollback(context.Background()))
		} else {
			var be *BusyError
			require.ErrorAs(t, err, &be, "boundary %d", b)
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.ErrorIs(t, err, ErrBusy)
			var ae *verify.ActiveThreadError
			require.ErrorAs(t, err, &ae)
			require.Equal(t, 11, ae.TID)
			require.Equal(t, "f1", ae.Function)
			require.Greater(t, be.Attempts, 1)
			require.Contains(t, err.Error(), "thread 11")
		}
		require.Equal(t, before, p.Snapshot())

		// Detour.
		p, tg = newFake(t)
		p.Threads[1].PC = pc
		before = p.Snapshot()
		tx = tg.Begin(Options{})
		tramp, err := tx.Detour(f1, r1)
		require.NoError(t, err)
		a, err = tx.Commit(quick(t))
		require.NoError(t, err, "boundary %d", b)
		d, err := trampoline.NewDetour(arch.AMD64, f1.Addr, f1Code, r1, tramp, &trampoline.Options{Function: f1Code, FunctionAddr: f1.Addr})
		require.NoError(t, err)
		if b == 0 || b >= len(d.Original) {
			require.NotContains(t, p.Moves, 11)
		} else {
			var want uint64
			for _, bd := range d.Boundaries {
				if bd.Old == b {
					want = tramp + uint64(bd.New)
				}
			}
			require.NotZero(t, want)
			require.Equal(t, want, p.Threads[1].PC, "thread moved to the copy of its instruction")
		}
		moved := p.Threads[1].PC
		require.NoError(t, a.Rollback(context.Background()))
		require.Equal(t, moved, p.Threads[1].PC, "rollback leaves the thread in the (retired, mapped) trampoline")
		require.Len(t, p.Snapshot(), len(before)+1, "the trampoline is retired, still mapped")
		require.NoError(t, tg.FreeRetired())
		require.Equal(t, before, p.Snapshot())
	}
}

// TestFakeReleased: a thread in the way leaves after a few stops; the
// commit then succeeds.
func TestFakeReleased(t *testing.T) {
	p, tg := newFake(t)
	p.Threads[1].PC = f1.Addr + 1
	p.OnStop = func(n int, th []proc.Thread) {
		if n == 4 {
			th[1].PC = 0x10
		}
	}
	tx := tg.Begin(Options{})
	require.NoError(t, tx.Redirect(f1, r1))
	a, err := tx.Commit(context.Background())
	require.NoError(t, err)
	require.Equal(t, 4, a.Attempts)
	require.Equal(t, 4, p.Resumes)
}

func TestFakeStrictStack(t *testing.T) {
	p, tg := newFake(t)
	// Thread 10's stack holds a return address into f1 (after its call).
	slot := uint64(stackBase + 0x3010)
	require.NoError(t, p.WriteAt([]byte{0x07, 0x00, 0x40, 0, 0, 0, 0, 0}, slot))
	before := p.Snapshot()
	tx := tg.Begin(Options{Strict: true})
	require.NoError(t, tx.Redirect(f1, r1))
	_, err := tx.Commit(quick(t))
	var ae *verify.ActiveThreadError
	require.ErrorAs(t, err, &ae)
	require.True(t, ae.Stack)
	require.Equal(t, slot, ae.Slot)
	require.Equal(t, 10, ae.TID)
	require.Equal(t, before, p.Snapshot())
	// Not strict: allowed (the old body stays intact behind the jump).
	tx = tg.Begin(Options{})
	require.NoError(t, tx.Redirect(f1, r1))
	_, err = tx.Commit(quick(t))
	require.NoError(t, err)
}

func TestFakeStackedOrder(t *testing.T) {
	p, tg := newFake(t)
	before := p.Snapshot()
	ctx := context.Background()
	tx1 := tg.Begin(Options{})
	require.NoError(t, tx1.Redirect(f1, r1))
	a1, err := tx1.Commit(ctx)
	require.NoError(t, err)
	mid := p.Snapshot()
	// The second transaction redirects again what the first redirected
	// (its pre-image is the first one's jump) and detours another.
	tx2 := tg.Begin(Options{})
	require.NoError(t, tx2.Redirect(f1, r2))
	_, err = tx2.Detour(f2, r1)
	require.NoError(t, err)
	a2, err := tx2.Commit(ctx)
	require.NoError(t, err)
	var oe *OrderError
	require.ErrorAs(t, a1.Rollback(ctx), &oe)
	require.Equal(t, a1.ID(), oe.ID)
	require.Equal(t, a2.ID(), oe.Newest)
	require.NoError(t, a2.Rollback(ctx))
	require.NoError(t, tg.FreeRetired())
	require.Equal(t, mid, p.Snapshot())
	require.NoError(t, a1.Rollback(ctx))
	require.Equal(t, before, p.Snapshot())
}

func TestFakeProtection(t *testing.T) {
	p, tg := newFake(t)
	p.Maps[0].Prot = proc.ProtRead | proc.ProtWrite | proc.ProtExec
	before := p.Snapshot()
	tx := tg.Begin(Options{})
	require.NoError(t, tx.Redirect(f1, r1))
	_, err := tx.Commit(context.Background())
	require.ErrorIs(t, err, verify.ErrProtection)
	require.Equal(t, before, p.Snapshot())
}

func TestFakeAbortFrees(t *testing.T) {
	p, tg := newFake(t)
	before := p.Snapshot()
	tx := tg.Begin(Options{})
	_, err := tx.Detour(f1, r1)
	require.NoError(t, err)
	require.Len(t, p.Maps, 3)
	tx.Abort()
	require.Equal(t, before, p.Snapshot())
	require.ErrorIs(t, tx.Redirect(f2, r2), ErrTxDone)
}

// TestFakeRetiredReuse: a rolled-back detour's trampoline stays mapped (a
// replacement may still call it) and the next detour of the function
// reuses it.
func TestFakeRetiredReuse(t *testing.T) {
	p, tg := newFake(t)
	ctx := context.Background()
	var addrs []uint64
	for i := 0; i < 3; i++ {
		tx := tg.Begin(Options{})
		tr, err := tx.Detour(f1, r1+uint64(i)*0x10)
		require.NoError(t, err)
		addrs = append(addrs, tr)
		a, err := tx.Commit(ctx)
		require.NoError(t, err)
		require.NoError(t, a.Rollback(ctx))
		require.Len(t, p.Maps, 3)
	}
	require.Equal(t, addrs[0], addrs[1])
	require.Equal(t, addrs[0], addrs[2])
	require.NoError(t, tg.FreeRetired())
	require.Len(t, p.Maps, 2)
}
