package patch

import (
	"context"
	"crypto/rand"
	"debug/elf"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/proc/fake"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
	"github.com/seed3bccf95f/hotpatch/verify"
)

// Apply's own failure paths, on the fake back-end holding the real v1 ELF
// fixture mapped the way the loader maps it (PT_LOAD segments at a PIE
// base): every check runs on the real module bytes.

// listedFake lets readAppliedSet enumerate the fake's mappings.
type listedFake struct{ *fake.Process }

func (l listedFake) Regions() ([]proc.Region, error) {
	var out []proc.Region
	for _, m := range l.Maps {
		out = append(out, proc.Region{Base: m.Base, Size: uint64(len(m.Data)), Prot: m.Prot})
	}
	return out, nil
}

const afBase = 0x5555_5555_0000

func afProcess(t *testing.T) (*fake.Process, *Target) {
	t.Helper()
	path := fixtures.Path(t, "c-v1-amd64.elf")
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	f, err := elf.Open(path)
	require.NoError(t, err)
	defer f.Close()
	fp := fake.New(arch.AMD64, afBase, nil)
	fp.Maps = nil
	var end uint64
	for _, ph := range f.Progs {
		if ph.Type != elf.PT_LOAD {
			continue
		}
		lo := ph.Vaddr &^ 0xfff
		hi := (ph.Vaddr + ph.Memsz + 0xfff) &^ 0xfff
		data := make([]byte, hi-lo)
		copy(data[ph.Vaddr-lo:], raw[ph.Off:ph.Off+ph.Filesz])
		prot := proc.ProtRead
		if ph.Flags&elf.PF_W != 0 {
			prot |= proc.ProtWrite
		}
		if ph.Flags&elf.PF_X != 0 {
			prot |= proc.ProtExec
		}
		fp.Maps = append(fp.Maps, &fake.Mapping{Base: afBase + lo, Data: data, Prot: prot})
		end = max(end, hi)
	}
	fp.ModList = []proc.Module{{Name: "c-v1-amd64.elf", Path: path, Base: afBase, Size: end}}
	fp.AllocGap = 64 << 20
	return fp, newTarget(listedFake{fp})
}

func afPackage(t *testing.T, seq uint32) *pkg.Package {
	t.Helper()
	old, err := image.Open(fixtures.Path(t, "c-v1-amd64.elf"))
	require.NoError(t, err)
	nw, err := image.Open(fixtures.Path(t, "c-v2-amd64.elf"))
	require.NoError(t, err)
	rep, err := diff.Compare(old, nw, nil)
	require.NoError(t, err)
	p, _, err := pkg.Build(old, nw, rep, pkg.BuildOptions{Module: "c-v1-amd64.elf", Sequence: seq})
	require.NoError(t, err)
	_, priv, err := pkg.GenerateKey(rand.Reader)
	require.NoError(t, err)
	require.NoError(t, p.Sign(priv))
	return p
}

func afCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestApplyFakeRoundTrip(t *testing.T) {
	fp, tgt := afProcess(t)
	p := afPackage(t, 1)
	before := fp.Snapshot()
	a, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
	require.NoError(t, err)
	// Record page read-only (the fake protects whole mappings: the last
	// Protect, r-x, wins there), nothing writable and executable.
	for _, m := range fp.Maps {
		require.False(t, m.Prot&proc.ProtWrite != 0 && m.Prot&proc.ProtExec != 0, "w+x mapping at %#x", m.Base)
	}
	_, recs, err := AppliedSet(context.Background(), tgt, p)
	require.NoError(t, err)
	require.Equal(t, []*pkg.AppliedRecord{a.Record}, recs)
	require.NoError(t, a.Revert(afCtx(t), ApplyOptions{}))
	require.Equal(t, before, fp.Snapshot())
}

// A write failing at every point of Apply leaves the process as it was
// (patch memory freed, entries untouched or restored).
func TestApplyFakeWriteFails(t *testing.T) {
	p := afPackage(t, 1)
	for k := 1; ; k++ {
		fp, tgt := afProcess(t)
		before := fp.Snapshot()
		fp.FailWrite = k
		_, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
		if err == nil {
			require.Greater(t, k, 3, "record, code and at least one entry are written")
			break
		}
		require.Equal(t, before, fp.Snapshot(), "write %d failed: %v", k, err)
		require.Less(t, k, 100)
	}
}

// A record whose entries hold the original bytes (a revert that could not
// free it, a crash before the commit) is stale: ignored. One partly live is
// refused. A torn record is not trusted, and the entries it would have
// described are still guarded by their pre-images.
func TestApplyFakeRecordStates(t *testing.T) {
	p := afPackage(t, 1)
	restore := func(fp *fake.Process, f pkg.AppliedFunction) {
		require.NoError(t, fp.WriteAt(f.Original, afBase+uint64(f.OldRVA)))
	}
	t.Run("stale", func(t *testing.T) {
		fp, tgt := afProcess(t)
		a, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
		require.NoError(t, err)
		for _, f := range a.Record.Functions {
			restore(fp, f)
		}
		_, recs, err := AppliedSet(context.Background(), tgt, p)
		require.NoError(t, err)
		require.Empty(t, recs)
		err = Revert(afCtx(t), tgt, p, ApplyOptions{})
		require.ErrorIs(t, err, ErrNotApplied)
	})
	t.Run("partly live", func(t *testing.T) {
		fp, tgt := afProcess(t)
		a, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
		require.NoError(t, err)
		restore(fp, a.Record.Functions[1])
		snap := fp.Snapshot()
		for _, err := range []error{
			func() error { _, _, err := AppliedSet(context.Background(), tgt, p); return err }(),
			Revert(afCtx(t), tgt, p, ApplyOptions{}),
			func() error { _, err := Apply(afCtx(t), tgt, afPackage(t, 2), ApplyOptions{}); return err }(),
		} {
			var re *RecordError
			require.ErrorAs(t, err, &re)
			require.Equal(t, a.Record.Functions[1].OldRVA, re.RVA)
		}
		require.Equal(t, snap, fp.Snapshot())
	})
	t.Run("torn", func(t *testing.T) {
		fp, tgt := afProcess(t)
		a, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
		require.NoError(t, err)
		require.NoError(t, fp.WriteAt([]byte{0xff}, a.Record.Region+40))
		snap := fp.Snapshot()
		_, err = Apply(afCtx(t), tgt, p, ApplyOptions{})
		var pe *verify.PreImageError
		require.ErrorAs(t, err, &pe)
		require.Equal(t, snap, fp.Snapshot())
	})
}

// Revert never frees patch memory a thread may still use: a thread running
// in a patched body makes it wait (and, the context ending, give up with
// the process unchanged); a return address into one on a stack lets it
// restore the entries but keep the memory (the record, stale, is ignored).
func TestApplyFakeRevertThreads(t *testing.T) {
	p := afPackage(t, 1)
	const stack = 0x7fff_0000_0000
	setup := func(t *testing.T) (*fake.Process, *Target, *AppliedPackage, []fake.Mapping) {
		fp, tgt := afProcess(t)
		fp.Maps = append(fp.Maps, &fake.Mapping{Base: stack, Data: make([]byte, 0x4000), Prot: proc.ProtRead | proc.ProtWrite})
		fp.Threads = []proc.Thread{{ID: 7, PC: afBase + 0x1000, SP: stack + 0x3000}}
		before := fp.Snapshot()
		a, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
		require.NoError(t, err)
		return fp, tgt, a, before
	}
	t.Run("running in a body", func(t *testing.T) {
		fp, tgt, a, _ := setup(t)
		fp.Threads[0].PC = a.Record.Functions[0].Entry + 1
		applied := fp.Snapshot()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err := Revert(ctx, tgt, p, ApplyOptions{})
		require.ErrorIs(t, err, ErrBusy)
		var ae *verify.ActiveThreadError
		require.ErrorAs(t, err, &ae)
		require.Equal(t, 7, ae.TID)
		require.Equal(t, applied, fp.Snapshot())
		fp.Threads[0].PC = afBase + 0x1000
		require.NoError(t, a.Revert(afCtx(t), ApplyOptions{}))
	})
	t.Run("return address into a body", func(t *testing.T) {
		fp, tgt, a, before := setup(t)
		ret := a.Record.Functions[0].Entry + 9
		var word [8]byte
		for i := range word {
			word[i] = byte(ret >> (8 * i))
		}
		require.NoError(t, fp.WriteAt(word[:], stack+0x3010))
		require.NoError(t, a.Revert(afCtx(t), ApplyOptions{}))
		kept := false
		for _, m := range fp.Maps {
			kept = kept || m.Base == a.Record.Region
		}
		require.True(t, kept, "patch memory freed under a return address")
		_, recs, err := AppliedSet(context.Background(), tgt, p)
		require.NoError(t, err)
		require.Empty(t, recs, "the kept record is stale")
		// The thread returned: the memory goes with the next revert's
		// region; the module itself is back as it was.
		require.NoError(t, fp.WriteAt(make([]byte, 8), stack+0x3010))
		a2, err := Apply(afCtx(t), tgt, p, ApplyOptions{})
		require.NoError(t, err)
		require.NoError(t, a2.Revert(afCtx(t), ApplyOptions{}))
		var mod []fake.Mapping
		for _, m := range fp.Snapshot() {
			if m.Base != a.Record.Region {
				mod = append(mod, m)
			}
		}
		require.Equal(t, before, mod)
	})
}

// Refusals Apply makes before anything is written, on the fake.
func TestApplyFakeRefusals(t *testing.T) {
	p := afPackage(t, 1)
	scale := p.Function("scale")
	require.NotNil(t, scale)
	for _, tc := range []struct {
		name  string
		setup func(fp *fake.Process) *pkg.Package
		check func(t *testing.T, err error)
	}{
		{"code changed outside the entries", func(fp *fake.Process) *pkg.Package {
			// One byte past scale's pre-image: entries fit, the hash not.
			addr := afBase + uint64(scale.OldRVA) + uint64(len(scale.PreImage))
			b := make([]byte, 1)
			require.NoError(t, fp.ReadAt(b, addr))
			require.NoError(t, fp.WriteAt([]byte{b[0] ^ 0xff}, addr))
			return p
		}, func(t *testing.T, err error) {
			var im *image.IdentityMismatchError
			require.ErrorAs(t, err, &im)
			require.Equal(t, "CodeHash", im.Field)
			require.Equal(t, fmt.Sprintf("%x", p.Base.Identity.CodeHash), im.Want)
		}},
		{"module not loaded", func(fp *fake.Process) *pkg.Package {
			fp.ModList[0].Size += 1 << 20 // another module: its mapping is larger
			return p
		}, func(t *testing.T, err error) {
			var nm *NoModuleError
			require.ErrorAs(t, err, &nm)
			require.Len(t, nm.Candidates, 1)
			var im *image.IdentityMismatchError
			require.ErrorAs(t, err, &im)
			require.Equal(t, "SizeOfImage", im.Field)
		}},
		{"another architecture", func(fp *fake.Process) *pkg.Package {
			q := *p
			q.Base.Arch = image.ARM64
			return &q
		}, func(t *testing.T, err error) {
			var ae *ArchError
			require.ErrorAs(t, err, &ae)
		}},
		{"threads cannot stop", func(fp *fake.Process) *pkg.Package {
			fp.CapsV.StopThreads = false
			return p
		}, func(t *testing.T, err error) { require.ErrorIs(t, err, ErrNeedStop) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fp, _ := afProcess(t)
			q := tc.setup(fp)
			tgt := newTarget(listedFake{fp})
			before := fp.Snapshot()
			fp.Writes = 0
			_, err := Apply(afCtx(t), tgt, q, ApplyOptions{})
			require.Error(t, err)
			tc.check(t, err)
			require.Equal(t, before, fp.Snapshot())
			require.Zero(t, fp.Writes)
		})
	}
}

// A process that exits while the entries are written cannot be restored:
// the patch memory (and its record) stays, since entries may jump into it.
func TestApplyFakeExitMidCommit(t *testing.T) {
	fp, tgt := afProcess(t)
	fp.ExitAtWrite = 4 // record, code, first entry, then the second entry
	_, err := Apply(afCtx(t), tgt, afPackage(t, 1), ApplyOptions{})
	var re *RestoreError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, proc.ErrExited)
	fp.Revive()
	kept := false
	for _, m := range fp.Maps {
		kept = kept || m.Allocated
	}
	require.True(t, kept)
}
