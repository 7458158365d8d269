//go:build linux && amd64

package patch_test

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// TestAppliedRecordsLinux lists what a live gcc v1 records through ptrace,
// without the package: nothing, then exactly the record Apply wrote (the
// package's replaced functions, its file's SHA-256, its signer), then
// nothing again once reverted.
func TestAppliedRecordsLinux(t *testing.T) {
	needNativePtrace(t)
	fp := buildFixturePackage(t, "c-v1-amd64.elf", "c-v2-amd64.elf", pkg.BuildOptions{})
	child := startELF(t, "c-v1-amd64.elf", 20)
	child.lr.next(t) // running, past its start-up
	tgt := attachPtrace(t, child.cmd.Process.Pid)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	got, err := patch.AppliedRecords(context.Background(), tgt)
	require.NoError(t, err)
	require.Empty(t, got, "nothing applied yet")

	a, err := patch.Apply(ctx, tgt, fp.p, patch.ApplyOptions{})
	require.NoError(t, err)
	got, err = patch.AppliedRecords(context.Background(), tgt)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, a.Module, got[0].Module)
	require.Equal(t, "c-v1-amd64.elf", got[0].Module.Name)
	require.Equal(t, []*pkg.AppliedRecord{a.Record}, got[0].Records)
	r := got[0].Records[0]
	require.Equal(t, uint32(1), r.Sequence)
	require.Equal(t, got[0].Module.Base, r.ModuleBase)
	require.Equal(t, fp.p.Base.Identity.CodeHash, r.CodeHash)
	require.Equal(t, sha256.Sum256(fp.data), r.Package)
	require.Equal(t, pkg.KeyIDOf(fp.pub), r.KeyID)
	var want, have []uint32
	for _, f := range fp.p.Functions {
		if !f.New {
			want = append(want, f.OldRVA)
		}
	}
	for _, f := range r.Functions {
		have = append(have, f.OldRVA)
	}
	require.NotEmpty(t, want)
	require.ElementsMatch(t, want, have)

	require.NoError(t, a.Revert(ctx, patch.ApplyOptions{}))
	got, err = patch.AppliedRecords(context.Background(), tgt)
	require.NoError(t, err)
	require.Empty(t, got, "reverted")
}
