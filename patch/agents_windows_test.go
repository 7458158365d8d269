//go:build windows && amd64

package patch_test

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	winproc "github.com/seed3bccf95f/hotpatch/internal/proc/windows"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// holdTarget holds pid the way Apply and Revert do on Windows: its lock.
func holdTarget(ctx context.Context, pid int) (release func() error, err error) {
	p, err := winproc.Open(pid, winproc.Options{})
	if err != nil {
		return nil, err
	}
	unlock, err := p.Lock(ctx)
	if err != nil {
		p.Close()
		return nil, err
	}
	return func() error {
		unlock()
		return p.Close()
	}, nil
}

// openAgent opens pid as an agent does (the waiting is Apply's).
func openAgent(ctx context.Context, pid int) (*patch.Target, error) {
	return patch.OpenWindows(pid)
}

// startWinV1 runs the mingw v1 program and returns its pid, its lines, a
// checker fed with its first lines and its module.
func startWinV1(t *testing.T) (int, *lineReader, *modelChecker, *patch.Target, patch.Module) {
	t.Helper()
	cmd := exec.Command(fixtures.Path(t, "c-v1-amd64.exe"), "1000000", "20")
	lr := startLines(t, cmd)
	chk := newModelChecker()
	for range 3 {
		require.Equal(t, "v1", chk.feed(t, lr.next(t)))
	}
	pid := cmd.Process.Pid
	tgt, err := patch.OpenWindows(pid)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tgt.Close() })
	mods, err := tgt.Modules()
	require.NoError(t, err)
	var mod patch.Module
	for _, m := range mods {
		if m.Name == "c-v1-amd64.exe" {
			mod = m
		}
	}
	require.NotZero(t, mod.Base, "modules: %v", mods)
	return pid, lr, chk, tgt, mod
}

// TestApplyWaitsForHolder (under Wine): while another agent process holds
// the target's lock, Apply with a short deadline fails as held, naming the
// pid, and writes nothing; once the holder lets go Apply succeeds, and
// Revert restores every byte. A holder killed while holding (its mutex
// abandoned) does not block the next agent either.
func TestApplyWaitsForHolder(t *testing.T) {
	fp := buildFixturePackage(t, "c-v1-amd64.exe", "c-v2-amd64.exe", pkg.BuildOptions{})
	pid, lr, chk, tgt, mod := startWinV1(t)
	before := snapshotWin(t, pid, mod)

	h := startHolder(t, pid)
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err := patch.Apply(short, tgt, fp.p, patch.ApplyOptions{})
	cancel()
	require.ErrorIs(t, err, patch.ErrHeld)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var held *patch.HeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, pid, held.PID)
	t.Logf("held: %v", err)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "refused while held")
	// Revert is kept out the same way.
	short, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = patch.Revert(short, tgt, fp.p, patch.ApplyOptions{})
	cancel()
	require.ErrorIs(t, err, patch.ErrHeld)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h.release(t)
	chk.drain(t, lr, "v1")
	ap, err := patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	require.NoError(t, err)
	chk.until(t, lr, "v1", "v2", 3)
	require.NoError(t, ap.Revert(ctx, patch.ApplyOptions{}))
	chk.until(t, lr, "v2", "v1", 3)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "reverted")

	// An agent that dies holding the lock.
	h = startHolder(t, pid)
	require.NoError(t, h.cmd.Process.Kill())
	_ = h.cmd.Wait()
	ap, err = patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	require.NoError(t, err, "the dead holder's mutex is abandoned, which counts as free")
	chk.until(t, lr, "v1", "v2", 3)
	require.NoError(t, ap.Revert(ctx, patch.ApplyOptions{}))
	chk.until(t, lr, "v2", "v1", 3)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "reverted again")
}

// TestConcurrentAgentsApplyWindows (under Wine): two agent processes apply
// the same package to one running v1 at once. Exactly one applies it; the
// other waits for the lock, sees the record and is refused as out of
// sequence. The target holds exactly one applied record, prints v2, and
// reverting gives v1 back byte for byte.
func TestConcurrentAgentsApplyWindows(t *testing.T) {
	fp := buildFixturePackage(t, "c-v1-amd64.exe", "c-v2-amd64.exe", pkg.BuildOptions{})
	pid, lr, chk, tgt, mod := startWinV1(t)
	before := snapshotWin(t, pid, mod)

	got := applyConcurrently(t, pid, fp, 2, true)
	t.Logf("agents: %q", got)
	requireOneApplied(t, got)
	chk.until(t, lr, "v1", "v2", 3)

	all, err := patch.AppliedRecords(context.Background(), tgt)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Len(t, all[0].Records, 1)
	require.EqualValues(t, 1, all[0].Records[0].Sequence)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	require.NoError(t, patch.Revert(ctx, tgt, fp.p, patch.ApplyOptions{}))
	chk.until(t, lr, "v2", "v1", 3)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "reverted")
}
