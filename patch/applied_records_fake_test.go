package patch

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// AppliedRecords on the fake back-end holding the real v1 ELF: it finds
// what AppliedSet finds without the package, and the same failures.
func TestAppliedRecordsFake(t *testing.T) {
	p1, p2 := afPackage(t, 1), afPackage(t, 2)

	t.Run("none applied", func(t *testing.T) {
		_, tgt := afProcess(t)
		got, err := AppliedRecords(context.Background(), tgt)
		require.NoError(t, err)
		require.Empty(t, got)
	})
	t.Run("stacked, then reverted", func(t *testing.T) {
		fp, tgt := afProcess(t)
		a1, err := Apply(afCtx(t), tgt, p1, ApplyOptions{})
		require.NoError(t, err)
		a2, err := Apply(afCtx(t), tgt, p2, ApplyOptions{})
		require.NoError(t, err)
		got, err := AppliedRecords(context.Background(), tgt)
		require.NoError(t, err)
		require.Equal(t, []ModuleRecords{{Module: fp.ModList[0], Records: []*pkg.AppliedRecord{a1.Record, a2.Record}}}, got)
		_, viaPkg, err := AppliedSet(context.Background(), tgt, p1)
		require.NoError(t, err)
		require.Equal(t, viaPkg, got[0].Records)

		require.NoError(t, a2.Revert(afCtx(t), ApplyOptions{}))
		got, err = AppliedRecords(context.Background(), tgt)
		require.NoError(t, err)
		require.Equal(t, []ModuleRecords{{Module: fp.ModList[0], Records: []*pkg.AppliedRecord{a1.Record}}}, got)
		require.NoError(t, a1.Revert(afCtx(t), ApplyOptions{}))
		got, err = AppliedRecords(context.Background(), tgt)
		require.NoError(t, err)
		require.Empty(t, got)
	})
	t.Run("stale left out", func(t *testing.T) {
		fp, tgt := afProcess(t)
		a, err := Apply(afCtx(t), tgt, p1, ApplyOptions{})
		require.NoError(t, err)
		for _, f := range a.Record.Functions {
			require.NoError(t, fp.WriteAt(f.Original, afBase+uint64(f.OldRVA)))
		}
		got, err := AppliedRecords(context.Background(), tgt)
		require.NoError(t, err)
		require.Empty(t, got)
	})
	t.Run("partly live", func(t *testing.T) {
		fp, tgt := afProcess(t)
		a, err := Apply(afCtx(t), tgt, p1, ApplyOptions{})
		require.NoError(t, err)
		f := a.Record.Functions[1]
		require.NoError(t, fp.WriteAt(f.Original, afBase+uint64(f.OldRVA)))
		_, err = AppliedRecords(context.Background(), tgt)
		var re *RecordError
		require.ErrorAs(t, err, &re)
		require.Equal(t, f.OldRVA, re.RVA)
		require.Equal(t, a.Record.Region, re.Region)
	})
	t.Run("another module's base", func(t *testing.T) {
		// A record naming a base where no module is loaded (the module
		// was unloaded) describes nothing in the process.
		fp, tgt := afProcess(t)
		_, err := Apply(afCtx(t), tgt, p1, ApplyOptions{})
		require.NoError(t, err)
		fp.ModList[0].Base += 0x10000
		got, err := AppliedRecords(context.Background(), tgt)
		require.NoError(t, err)
		require.Empty(t, got)
	})
}
