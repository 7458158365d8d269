//go:build linux && amd64

package patch_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

func needNativePtrace(t testing.TB) {
	t.Helper()
	if testenv.Emulated() {
		t.Skip("ptrace runs natively on linux/amd64 only (qemu-user cannot ptrace)")
	}
}

// elfChild is a running fixture program (testdata/bin/c-v1-amd64.elf).
type elfChild struct {
	cmd *exec.Cmd
	lr  *lineReader
}

func startELF(t testing.TB, name string, interval int) *elfChild {
	t.Helper()
	cmd := exec.Command(fixtures.Path(t, name), "1000000", strconv.Itoa(interval))
	// Its Cleanup is registered first, so it runs after the target's Close
	// (a tracer must not wait for its tracee).
	return &elfChild{cmd: cmd, lr: startLines(t, cmd)}
}

func attachPtrace(t testing.TB, pid int) *patch.Target {
	t.Helper()
	tgt, err := patch.AttachLinux(context.Background(), pid)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tgt.Close() })
	return tgt
}

// procSnapshot is every mapping of a process (range, protection, path) and
// the bytes of every non-writable mapping of one file: what a refusal or a
// revert must leave exactly as it was.
type procSnapshot struct {
	maps  []string
	bytes map[string][]byte
}

func snapshotProc(t testing.TB, pid int, path string) procSnapshot {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	require.NoError(t, err)
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	require.NoError(t, err)
	defer mem.Close()
	s := procSnapshot{bytes: map[string][]byte{}}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		f := strings.Fields(line)
		if len(f) >= 6 && f[5] == "[stack]" {
			continue // its start moves with the kernel's stack guard accounting
		}
		s.maps = append(s.maps, strings.Join(f, " "))
		if len(f) < 6 || f[5] != path || f[1][1] == 'w' {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		b, _ := strconv.ParseUint(hi, 16, 64)
		buf := make([]byte, b-a)
		_, err := mem.ReadAt(buf, int64(a))
		require.NoError(t, err, "reading %s", line)
		s.bytes[f[0]+" "+f[1]] = buf
	}
	return s
}

func requireSameProc(t testing.TB, want, got procSnapshot, what string) {
	t.Helper()
	require.Equal(t, want.maps, got.maps, "%s: mappings changed", what)
	require.Equal(t, len(want.bytes), len(got.bytes), "%s", what)
	for k, b := range want.bytes {
		require.True(t, string(b) == string(got.bytes[k]), "%s: bytes of %s changed", what, k)
	}
}

// TestApplyLinuxEndToEnd is issue 6's proof on Linux x86-64: a running gcc
// v1 is patched to v2 through ptrace with a package built here, keeps its
// pid and counter, prints v2's results, refuses every package that does not
// fit without changing a byte, and is reverted to v1 by another agent
// process that has only the package and what the target records.
func TestApplyLinuxEndToEnd(t *testing.T) {
	needNativePtrace(t)
	fp := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{})
	child := startELF(t, "c-v1-amd64.elf", 20)
	pid := child.cmd.Process.Pid
	chk := newModelChecker()
	for range 3 {
		require.Equal(t, "v1", chk.feed(t, child.lr.next(t)))
	}
	require.EqualValues(t, pid, chk.pid)
	path, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	tgt := attachPtrace(t, pid)
	before := snapshotProc(t, pid, path)

	// Refusals, each leaving the process byte-identical.
	t.Run("refusals", func(t *testing.T) {
		refuse := func(t *testing.T, p *pkg.Package, check func(t *testing.T, err error)) {
			t.Helper()
			_, err := patch.Apply(ctx, tgt, p, patch.ApplyOptions{})
			require.Error(t, err)
			check(t, err)
			requireSameProc(t, before, snapshotProc(t, pid, path), err.Error())
		}
		t.Run("another build", func(t *testing.T) {
			other := buildFixturePackage(t, "c-v1-rebuilt-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{Module: "c-v1-amd64.elf"})
			refuse(t, other.p, func(t *testing.T, err error) {
				require.ErrorIs(t, err, patch.ErrNoModule)
				var nm *patch.NoModuleError
				require.ErrorAs(t, err, &nm)
				var im *image.IdentityMismatchError
				require.ErrorAs(t, err, &im)
				require.Equal(t, "BuildID", im.Field)
				require.Equal(t, fmt.Sprintf("%x", other.p.Base.Identity.BuildID), im.Want)
				require.Equal(t, fmt.Sprintf("%x", fp.p.Base.Identity.BuildID), im.Got)
				require.Contains(t, err.Error(), "c-v1-amd64.elf")
			})
		})
		t.Run("skipped sequence", func(t *testing.T) {
			two := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{Sequence: 2})
			refuse(t, two.p, func(t *testing.T, err error) {
				var se *patch.SequenceError
				require.ErrorAs(t, err, &se)
				require.ErrorIs(t, err, patch.ErrSequence)
				require.Equal(t, patch.SequenceError{Module: "c-v1-amd64.elf", Sequence: 2, Requires: 1, Applied: 0}, *se)
			})
		})
		t.Run("unsigned", func(t *testing.T) {
			u, err := pkg.Load(fp.data, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{fp.pub}})
			require.NoError(t, err)
			u.Unsign()
			refuse(t, u, func(t *testing.T, err error) { require.ErrorIs(t, err, pkg.ErrUnsigned) })
		})
		// A tampered package or a wrong key never gets as far as Apply:
		// Load refuses it before interpreting the body.
		t.Run("tampered", func(t *testing.T) {
			bad := append([]byte(nil), fp.data...)
			bad[len(bad)/2] ^= 1
			_, err := pkg.Load(bad, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{fp.pub}})
			require.ErrorIs(t, err, pkg.ErrSignature)
			requireSameProc(t, before, snapshotProc(t, pid, path), "tampered")
		})
		t.Run("wrong key", func(t *testing.T) {
			other := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{})
			_, err := pkg.Load(fp.data, pkg.LoadOptions{TrustedKeys: []ed25519.PublicKey{other.pub}})
			require.ErrorIs(t, err, pkg.ErrSignature)
			requireSameProc(t, before, snapshotProc(t, pid, path), "wrong key")
		})
		t.Run("hooked by someone else", func(t *testing.T) {
			mods, err := tgt.Modules()
			require.NoError(t, err)
			var base uint64
			for _, m := range mods {
				if m.Path == path {
					base = m.Base
				}
			}
			require.NotZero(t, base)
			hookedRefusal(t, ctx, tgt, base, fp, chk, child.lr, func() any { return snapshotProc(t, pid, path) })
			requireSameProc(t, before, snapshotProc(t, pid, path), "hook rolled back")
		})
	})
	require.False(t, t.Failed())

	// Apply: v2 from the next line on, same pid, counter continuing.
	chk.drain(t, child.lr, "v1")
	ap, err := patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	require.NoError(t, err)
	require.EqualValues(t, 1, ap.Record.Sequence)
	require.Len(t, ap.Record.Functions, len(fp.p.Functions)-countNew(fp.p))
	chk.until(t, child.lr, "v1", "v2", 5)
	t.Logf("applied %d functions (pause %v, %d attempts) at line %d", len(ap.Record.Functions), ap.Pause, ap.Attempts, chk.last)

	// The applied set is visible, and a second Apply is out of sequence.
	mod, recs, err := patch.AppliedSet(context.Background(), tgt, fp.p)
	require.NoError(t, err)
	require.Equal(t, path, mod.Path)
	require.Len(t, recs, 1)
	require.Equal(t, ap.Record, recs[0])
	_, err = patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	require.ErrorIs(t, err, patch.ErrSequence)

	// Another agent process reverts it, with the package file only.
	require.NoError(t, tgt.Close())
	revertFromAnotherAgent(t, pid, fp)
	chk.until(t, child.lr, "v2", "v1", 5)
	requireSameProc(t, before, snapshotProc(t, pid, path), "reverted")

	// And applied again from scratch by a new Target, then reverted by it.
	tgt2 := attachPtrace(t, pid)
	ap2, err := patch.Apply(ctx, tgt2, fp.p, patch.ApplyOptions{})
	require.NoError(t, err)
	chk.until(t, child.lr, "v1", "v2", 3)
	require.NoError(t, ap2.Revert(ctx, patch.ApplyOptions{}))
	chk.until(t, child.lr, "v2", "v1", 3)
	requireSameProc(t, before, snapshotProc(t, pid, path), "reverted again")
	_, _, err = patch.AppliedSet(context.Background(), tgt2, fp.p)
	require.NoError(t, err)
	err = patch.Revert(ctx, tgt2, fp.p, patch.ApplyOptions{})
	require.ErrorIs(t, err, patch.ErrNotApplied)
}

func countNew(p *pkg.Package) int {
	n := 0
	for _, f := range p.Functions {
		if f.New {
			n++
		}
	}
	return n
}

// BenchmarkApplyPtrace is the agent's side end to end through ptrace, on a
// running v1: Apply (find the module, read the applied set, check
// identity, pre-images and code hash, allocate, link, write, commit) then
// Revert, each timed on its own; pause is the commit's stop time.
func BenchmarkApplyPtrace(b *testing.B) {
	needNativePtrace(b)
	fp := buildFixturePackage(b, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{})
	child := startELF(b, "c-v1-amd64.elf", 20)
	child.lr.next(b)
	tgt := attachPtrace(b, child.cmd.Process.Pid)
	ctx := context.Background()
	var apply, revert, pause time.Duration
	for b.Loop() {
		start := time.Now()
		ap, err := patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
		require.NoError(b, err)
		mid := time.Now()
		require.NoError(b, ap.Revert(ctx, patch.ApplyOptions{}))
		apply += mid.Sub(start)
		revert += time.Since(mid)
		pause += ap.Pause
	}
	n := float64(b.N)
	b.ReportMetric(float64(apply.Microseconds())/n, "apply-µs")
	b.ReportMetric(float64(revert.Microseconds())/n, "revert-µs")
	b.ReportMetric(float64(pause.Microseconds())/n, "pause-µs")
	b.ReportMetric(float64(len(fp.p.Functions)-countNew(fp.p)), "entries")
}

// TestApplyLinuxStacked applies package 2 on top of package 1 (the same
// functions again, so 2's pre-images are 1's jumps), reverts them newest
// first, and refuses the other order; the process ends byte-identical.
func TestApplyLinuxStacked(t *testing.T) {
	needNativePtrace(t)
	p1 := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{})
	p2 := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{Sequence: 2})
	child := startELF(t, "c-v1-amd64.elf", 20)
	pid := child.cmd.Process.Pid
	chk := newModelChecker()
	require.Equal(t, "v1", chk.feed(t, child.lr.next(t)))
	path, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	require.NoError(t, err)
	tgt := attachPtrace(t, pid)
	before := snapshotProc(t, pid, path)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	a1, err := patch.Apply(ctx, tgt, p1.p, patch.ApplyOptions{})
	require.NoError(t, err)
	chk.until(t, child.lr, "v1", "v2", 2)
	a2, err := patch.Apply(ctx, tgt, p2.p, patch.ApplyOptions{})
	require.NoError(t, err)
	// 2's record holds 1's jumps as the bytes it overwrote.
	for i, f := range a2.Record.Functions {
		require.Equal(t, a1.Record.Functions[i].OldRVA, f.OldRVA)
		require.NotEqual(t, a1.Record.Functions[i].Original, f.Original)
		require.Equal(t, byte(0xe9), f.Original[0])
	}
	chk.until(t, child.lr, "v2", "v2", 2)
	_, recs, err := patch.AppliedSet(context.Background(), tgt, p1.p)
	require.NoError(t, err)
	require.Equal(t, []*pkg.AppliedRecord{a1.Record, a2.Record}, recs)

	err = a1.Revert(ctx, patch.ApplyOptions{})
	var na *patch.NotAppliedError
	require.ErrorAs(t, err, &na)
	require.Equal(t, uint32(2), na.Newest)
	_, err = patch.Apply(ctx, tgt, p2.p, patch.ApplyOptions{})
	require.ErrorIs(t, err, patch.ErrSequence)

	require.NoError(t, a2.Revert(ctx, patch.ApplyOptions{}))
	chk.until(t, child.lr, "v2", "v2", 2)
	_, recs, err = patch.AppliedSet(context.Background(), tgt, p1.p)
	require.NoError(t, err)
	require.Equal(t, []*pkg.AppliedRecord{a1.Record}, recs)
	require.NoError(t, a1.Revert(ctx, patch.ApplyOptions{}))
	chk.until(t, child.lr, "v2", "v1", 3)
	requireSameProc(t, before, snapshotProc(t, pid, path), "both reverted")
}

func openTarget(pid int) (*patch.Target, error) {
	return patch.AttachLinux(context.Background(), pid)
}
