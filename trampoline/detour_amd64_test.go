//go:build amd64

package trampoline

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"github.com/seed3bccf95f/hotpatch/trampoline/internal/amd64funcs"
)

// TestAMD64ExecDetour applies real detours: a test function is first copied
// (relocated) into executable memory we own, its entry is overwritten with
// Entry, calls go to the replacement (Go assembly) which calls the original
// through the trampoline, and writing Original back restores the exact bytes.
func TestAMD64ExecDetour(t *testing.T) {
	amdNeedExec(t)
	modes := []struct {
		name                 string
		farTramp, farReplace bool
	}{
		{"near", false, false},
		{"far-trampoline", true, false},
		{"far-replacement", false, true},
	}
	for _, name := range []string{"Endbr", "CmpRIP", "JccRel8Out", "JccRel32Out", "CallRel32", "CallMemRIP", "SSERIP", "JrcxzOut", "ThunkRel32", "LoopIn"} {
		for _, m := range modes {
			t.Run(name+"/"+m.name, func(t *testing.T) {
				f, ok := amd64funcs.Find(name)
				require.True(t, ok)
				// Own copy of the function, near its original.
				own := amdAlloc(t, f.Addr, false)
				rel := amdTrampoline(t, own, f.Code(), f.Addr, len(f.Code()), Options{})
				target := own.Addr()
				body, err := own.Read(0, len(rel.Code))
				require.NoError(t, err)
				snapshot, err := own.Read(0, own.Size())
				require.NoError(t, err)
				for _, x := range amdArgs {
					require.Equal(t, f.Want(x), execmem.Call(target, x))
				}

				replacement := amd64funcs.ReplacementAddr()
				if m.farReplace {
					rr := amdAlloc(t, target, true)
					rf, ok := amdReplacement()
					require.True(t, ok)
					amdTrampoline(t, rr, rf, replacement, len(rf), Options{})
					replacement = rr.Addr()
				}
				tr := amdAlloc(t, target, m.farTramp)

				d, err := NewDetour(AMD64, uint64(target), body, uint64(replacement), uint64(tr.Addr()), nil)
				if m.farReplace {
					// A 14-byte entry jump is refused where the function ends
					// first (Endbr: 4+14 bytes; short CallRel32, CallMemRIP, ThunkRel32;
					// JrcxzOut: the jmp of the
					// rewritten jrcxz ends at 7) or where its loop head falls
					// inside the moved bytes (LoopIn).
					if want, refused := map[string]error{"Endbr": ErrTooShort, "JrcxzOut": ErrTooShort, "CallRel32": ErrTooShort, "CallMemRIP": ErrTooShort, "ThunkRel32": ErrTooShort, "LoopIn": ErrBranchIntoMoved}[name]; refused {
						require.ErrorIs(t, err, want)
						return
					}
				}
				require.NoError(t, err)
				require.Equal(t, body[:len(d.Original)], d.Original)
				require.Len(t, d.Entry, len(d.Original))
				if name == "Endbr" {
					require.Equal(t, body[:4], d.Entry[:4], "endbr64 stays first")
					require.Equal(t, body[:4], d.Code[:4], "and starts the trampoline")
				}
				require.NoError(t, tr.Write(0, d.Code))
				amd64funcs.SetReplacementTarget(tr.Addr())
				require.NoError(t, own.Write(0, d.Entry))

				for _, x := range amdArgs {
					require.Equal(t, f.Want(x)+1000, execmem.Call(target, x), "detoured(%d)", x)
					require.Equal(t, f.Want(x), execmem.Call(tr.Addr(), x), "original via trampoline(%d)", x)
				}

				require.NoError(t, own.Write(0, d.Original))
				after, err := own.Read(0, own.Size())
				require.NoError(t, err)
				require.Equal(t, snapshot, after, "removing the detour restores every byte")
				for _, x := range amdArgs {
					require.Equal(t, f.Want(x), execmem.Call(target, x), "restored(%d)", x)
				}
			})
		}
	}
}

// amdReplacement returns the replacement function's code.
func amdReplacement() ([]byte, bool) {
	f := amd64funcs.Func{Addr: amd64funcs.ReplacementAddr()}
	c := f.Code()
	return c, c != nil
}
