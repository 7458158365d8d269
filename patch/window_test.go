package patch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// TestWindowAllocates: between stopping the threads and resuming them,
// nothing allocates (on Windows in-process a suspended thread may hold a
// heap lock), on every path: a commit that succeeds (moving a thread into a
// detour's trampoline), one that backs off for a busy thread and one whose
// strict stack scan sees a return address, a pre-image mismatch, a write
// failing at each write, a rollback, and a Revert's check of the patch
// memory. The fake back-end counts the heap allocations made inside each
// stop.
func TestWindowAllocates(t *testing.T) {
	ctx := context.Background()
	plan := func(t *testing.T, tg *Target, opts Options) *Tx {
		tx := tg.Begin(opts)
		require.NoError(t, tx.Redirect(f2, r2))
		_, err := tx.Detour(f1, r1)
		require.NoError(t, err)
		return tx
	}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"commit and rollback", func(t *testing.T) {
			p, tg := newFake(t)
			p.Threads[1].PC = f1.Addr + 1 // moved into the trampoline
			tx := plan(t, tg, Options{Strict: true})
			p.CountWindowAllocs = true
			a, err := tx.Commit(ctx)
			require.NoError(t, err)
			require.NoError(t, a.Rollback(ctx))
			require.Contains(t, p.Moves, 11)
			requireNoWindowAllocs(t, p.Stops, p.WindowAllocs, 2)
		}},
		{"busy thread, then free", func(t *testing.T) {
			p, tg := newFake(t)
			p.Threads[1].PC = f2.Addr + 1
			p.OnStop = func(n int, threads []proc.Thread) {
				if n == 3 {
					threads[1].PC = 0x10
				}
			}
			tx := plan(t, tg, Options{})
			p.CountWindowAllocs = true
			a, err := tx.Commit(ctx)
			require.NoError(t, err)
			require.Equal(t, 3, a.Attempts)
			requireNoWindowAllocs(t, p.Stops, p.WindowAllocs, 3)
		}},
		{"strict: return address on a stack", func(t *testing.T) {
			p, tg := newFake(t)
			ret := f2.Addr + 5
			stack := p.Maps[1].Data[0x3000:]
			for i := range 8 {
				stack[i] = byte(ret >> (8 * i))
			}
			tx := plan(t, tg, Options{Strict: true})
			p.CountWindowAllocs = true
			_, err := tx.Commit(quick(t))
			require.ErrorIs(t, err, ErrBusy)
			requireNoWindowAllocs(t, p.Stops, p.WindowAllocs, 1)
		}},
		{"pre-image mismatch", func(t *testing.T) {
			p, tg := newFake(t)
			tx := plan(t, tg, Options{})
			require.NoError(t, p.WriteAt([]byte{0x90}, f2.Addr))
			p.CountWindowAllocs = true
			_, err := tx.Commit(ctx)
			require.ErrorIs(t, err, verify.ErrPreImage)
			requireNoWindowAllocs(t, p.Stops, p.WindowAllocs, 1)
		}},
		{"a write fails, each in turn", func(t *testing.T) {
			for k := 1; k <= 8; k++ {
				p, tg := newFake(t)
				before := p.Snapshot()
				tx := plan(t, tg, Options{})
				p.FailWrite = p.Writes + k
				p.CountWindowAllocs = true
				_, err := tx.Commit(ctx)
				if err == nil {
					require.Greater(t, k, 2, "two sites: writes 1 and 2 are the change")
					continue
				}
				var se *SiteError
				require.ErrorAs(t, err, &se)
				require.Equal(t, "write", se.Op)
				requireNoWindowAllocs(t, p.Stops, p.WindowAllocs, 1)
				p.CountWindowAllocs = false
				require.NoError(t, tg.FreeRetired())
				require.Equal(t, before, p.Snapshot())
			}
		}},
		{"revert checks the patch memory", func(t *testing.T) {
			p, tg := newFake(t)
			p.CountWindowAllocs = true
			require.True(t, tg.regionUnused(ctx, verify.Range{Start: r1, End: r1 + 0x80, Function: "patch code"}, Options{}.withDefaults()))
			requireNoWindowAllocs(t, p.Stops, p.WindowAllocs, 1)
		}},
	} {
		t.Run(tc.name, tc.run)
	}
}

func requireNoWindowAllocs(t *testing.T, stops int, allocs uint64, wantStops int) {
	t.Helper()
	require.GreaterOrEqual(t, stops, wantStops)
	require.Zero(t, allocs, "heap allocations while %d stops held the threads", stops)
}
