//go:build windows && amd64

package patch_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	winproc "github.com/seed3bccf95f/hotpatch/internal/proc/windows"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// winSnapshot is the regions (base, size, protection) of the module and of
// the 2 GiB around it, and the bytes of the module's non-writable regions.
type winSnapshot struct {
	regions []string
	bytes   map[uint64][]byte
}

func snapshotWin(t testing.TB, pid int, m patch.Module) winSnapshot {
	t.Helper()
	p, err := winproc.Open(pid, winproc.Options{})
	require.NoError(t, err)
	defer p.Close()
	s := winSnapshot{bytes: map[uint64][]byte{}}
	const reach = 1 << 31
	lo, hi := uint64(0x10000), m.Base+m.Size+reach
	if m.Base > reach {
		lo = m.Base - reach
	}
	for a := lo; a < hi; {
		r, err := p.Query(a)
		if err != nil {
			break
		}
		s.regions = append(s.regions, fmt.Sprintf("%#x+%#x %v", r.Base, r.Size, r.Prot))
		if r.Base >= m.Base && r.Base < m.Base+m.Size && r.Prot != 0 && r.Prot&2 == 0 {
			b := make([]byte, r.Size)
			require.NoError(t, p.ReadAt(b, r.Base))
			s.bytes[r.Base] = b
		}
		if r.Base+r.Size <= a {
			break
		}
		a = r.Base + r.Size
	}
	return s
}

func requireSameWin(t testing.TB, want, got winSnapshot, what string) {
	t.Helper()
	require.Equal(t, want.regions, got.regions, "%s: regions changed", what)
	require.Equal(t, len(want.bytes), len(got.bytes), what)
	for k, b := range want.bytes {
		require.True(t, string(b) == string(got.bytes[k]), "%s: bytes at %#x changed", what, k)
	}
}

// TestApplyWindowsEndToEnd is issue 6's proof on Windows (under Wine): this
// Go agent starts the mingw v1 program, builds the package from the v1/v2
// executables, applies it through the Windows remote back-end (same pid,
// counter continuing, v2 results), and reverts it from a second agent that
// knows only the package and what the process records: another process
// (this test binary run again).
func TestApplyWindowsEndToEnd(t *testing.T) {
	fp := buildFixturePackage(t, "c-v1-amd64.exe", "c-v2-amd64.exe", pkg.BuildOptions{})
	cmd := exec.Command(fixtures.Path(t, "c-v1-amd64.exe"), "1000000", "20")
	lr := startLines(t, cmd)
	chk := newModelChecker()
	for range 3 {
		require.Equal(t, "v1", chk.feed(t, lr.next(t)))
	}
	pid := cmd.Process.Pid
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	tgt, err := patch.OpenWindows(pid)
	require.NoError(t, err)
	defer tgt.Close()
	mods, err := tgt.Modules()
	require.NoError(t, err)
	var mod patch.Module
	for _, m := range mods {
		if m.Name == "c-v1-amd64.exe" {
			mod = m
		}
	}
	require.NotZero(t, mod.Base, "modules: %v", mods)
	before := snapshotWin(t, pid, mod)

	// A package for another build of v1 (other timestamp and RSDS GUID).
	other := buildFixturePackage(t, "c-v1-rebuilt-amd64.exe", "c-v2-amd64.exe", pkg.BuildOptions{Module: "c-v1-amd64.exe"})
	_, err = patch.Apply(ctx, tgt, other.p, patch.ApplyOptions{})
	require.ErrorIs(t, err, patch.ErrNoModule)
	var im *image.IdentityMismatchError
	require.ErrorAs(t, err, &im)
	t.Logf("another build: %v", err)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "another build")
	// A skipped sequence number.
	two := buildFixturePackage(t, "c-v1-amd64.exe", "c-v2-amd64.exe", pkg.BuildOptions{Sequence: 2})
	_, err = patch.Apply(ctx, tgt, two.p, patch.ApplyOptions{})
	require.ErrorIs(t, err, patch.ErrSequence)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "skipped sequence")

	// An unsigned package.
	u, err := pkg.Load(fp.data, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{fp.pub}})
	require.NoError(t, err)
	u.Unsign()
	_, err = patch.Apply(ctx, tgt, u, patch.ApplyOptions{})
	require.ErrorIs(t, err, pkg.ErrUnsigned)
	// A function already hooked by another tool.
	hookedRefusal(t, ctx, tgt, mod.Base, fp, chk, lr, func() any { return snapshotWin(t, pid, mod) })
	requireSameWin(t, before, snapshotWin(t, pid, mod), "hook rolled back")

	chk.drain(t, lr, "v1")
	ap, err := patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	require.NoError(t, err)
	chk.until(t, lr, "v1", "v2", 5)
	t.Logf("applied %d functions (pause %v, %d attempts); now at line %d", len(ap.Record.Functions), ap.Pause, ap.Attempts, chk.last)
	_, recs, err := patch.AppliedSet(context.Background(), tgt, fp.p)
	require.NoError(t, err)
	require.Equal(t, []*pkg.AppliedRecord{ap.Record}, recs)
	require.NoError(t, tgt.Close())

	// A second agent process reverts it, with the package file only.
	revertFromAnotherAgent(t, pid, fp)
	chk.until(t, lr, "v2", "v1", 5)
	requireSameWin(t, before, snapshotWin(t, pid, mod), "reverted")
}

func openTarget(pid int) (*patch.Target, error) { return patch.OpenWindows(pid) }
