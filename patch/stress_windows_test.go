//go:build windows && amd64

package patch

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// TestWindowsStress: 8 threads of a child call value() in a tight loop and
// check every result (value's 1 or value2's 2; anything else ends the child
// with status 5) while the Windows back-end commits and rolls back,
// alternately redirecting value to value2 and detouring it there. The
// child runs on, and value's bytes and page protection are what they were.
func TestWindowsStress(t *testing.T) {
	cycles := 10000
	switch {
	case testing.Short():
		cycles = 20
	case testenv.Emulated():
		cycles = 250 // Wine: every cross-process call goes through wineserver, 20-80 ms a cycle
	}
	img, err := image.Open(filepath.Join("testdata", manyChildExe))
	require.NoError(t, err)
	cmd, stdin := startManyChild(t, 8)
	tg, err := OpenWindows(cmd.Process.Pid)
	require.NoError(t, err)
	defer tg.Close()
	base := manyChildBase(t, tg)
	value := manyChildFunc(t, img, base, "value")
	value2 := manyChildFunc(t, img, base, "value2")
	before, err := tg.p.Query(value.Addr)
	require.NoError(t, err)

	ctx := context.Background()
	attempts, detours := 0, 0
	for i := 0; i < cycles; i++ {
		tx := tg.Begin(Options{})
		if i%2 == 0 {
			require.NoError(t, tx.Redirect(value, value2.Addr))
		} else {
			_, err := tx.Detour(value, value2.Addr)
			require.NoError(t, err)
			detours++
		}
		a, err := tx.Commit(ctx)
		require.NoError(t, err, "cycle %d", i)
		attempts += a.Attempts
		require.NoError(t, a.Rollback(ctx), "cycle %d", i)
	}
	require.NoError(t, tg.FreeRetired())

	got, err := tg.Read(value.Addr, len(value.Expect))
	require.NoError(t, err)
	require.Equal(t, value.Expect, got, "value's bytes after the last rollback")
	after, err := tg.p.Query(value.Addr)
	require.NoError(t, err)
	require.Equal(t, before, after, "value's page protection")
	// Every result was 1 or 2: the child is still running and exits 0
	// when its stdin closes.
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait(), "the child saw a result that was neither value's nor value2's (status 5), or died")
	t.Logf("%d commit/rollback cycles (%d detours), 8 busy threads: %d stops for %d commits", cycles, detours, attempts, cycles)
}
