//go:build linux && amd64

package patch_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// holdTarget holds pid the way an agent does on Linux: attached.
func holdTarget(ctx context.Context, pid int) (release func() error, err error) {
	tgt, err := patch.AttachLinux(ctx, pid)
	if err != nil {
		return nil, err
	}
	return tgt.Close, nil
}

// openAgent attaches as an agent does, waiting for another agent until ctx
// ends.
func openAgent(ctx context.Context, pid int) (*patch.Target, error) {
	return patch.AttachLinux(ctx, pid)
}

// TestAttachWaitsForHolder: while another agent process is attached,
// AttachLinux with a short deadline fails as held (not as a permission
// problem) naming the holder's pid and command; one started before the
// holder lets go waits and attaches once it does. (That it really waited,
// not merely came late, is shown deterministically in internal/proc/ptrace:
// TestHeldByAnotherAgent.)
func TestAttachWaitsForHolder(t *testing.T) {
	needNativePtrace(t)
	child := startELF(t, "c-v1-amd64.elf", 20)
	child.lr.next(t)
	pid := child.cmd.Process.Pid
	h := startHolder(t, pid)
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", h.cmd.Process.Pid))
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = patch.AttachLinux(ctx, pid)
	cancel()
	require.ErrorIs(t, err, patch.ErrHeld)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NotErrorIs(t, err, patch.ErrPermission)
	var held *patch.HeldError
	require.ErrorAs(t, err, &held)
	require.Equal(t, pid, held.PID)
	require.Equal(t, h.cmd.Process.Pid, held.HolderPID)
	require.Contains(t, err.Error(), fmt.Sprintf("pid %d (%s)", h.cmd.Process.Pid, string(comm[:len(comm)-1])))
	t.Logf("held: %v", err)

	type result struct {
		tgt *patch.Target
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		tgt, err := patch.AttachLinux(ctx, pid)
		done <- result{tgt, err}
	}()
	h.release(t)
	r := <-done
	require.NoError(t, r.err)
	t.Cleanup(func() { _ = r.tgt.Close() })
	mods, err := r.tgt.Modules()
	require.NoError(t, err)
	require.NotEmpty(t, mods)
}

// TestConcurrentAgentsApply: two agent processes apply the same package to
// one running v1 at the same moment. Exactly one applies it; the other,
// serialised behind it, sees the record and is refused as out of
// sequence. The target then holds exactly one applied record, prints v2,
// and reverting gives v1 back byte for byte.
func TestConcurrentAgentsApply(t *testing.T) {
	needNativePtrace(t)
	fp := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{})
	child := startELF(t, "c-v1-amd64.elf", 20)
	pid := child.cmd.Process.Pid
	chk := newModelChecker()
	for range 3 {
		require.Equal(t, "v1", chk.feed(t, child.lr.next(t)))
	}
	path, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	require.NoError(t, err)
	before := snapshotProc(t, pid, path)

	got := applyConcurrently(t, pid, fp, 2, false)
	t.Logf("agents: %q", got)
	requireOneApplied(t, got)
	chk.until(t, child.lr, "v1", "v2", 5)

	tgt := attachPtrace(t, pid)
	all, err := patch.AppliedRecords(context.Background(), tgt)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Len(t, all[0].Records, 1)
	require.EqualValues(t, 1, all[0].Records[0].Sequence)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, patch.Revert(ctx, tgt, fp.p, patch.ApplyOptions{}))
	chk.until(t, child.lr, "v2", "v1", 5)
	requireSameProc(t, before, snapshotProc(t, pid, path), "reverted")
}
