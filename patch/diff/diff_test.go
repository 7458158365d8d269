package diff

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// pair is one fixture pair: a ground-truth build and how to get the paths of
// its images (Go builds are made on demand, inside the subtest that needs
// them, so that where the go tool is missing only they skip).
type pair struct {
	build *fixtures.Build
	paths func(t *testing.T) (old, new string)
}

func openImage(t testing.TB, path string) *image.Image {
	t.Helper()
	img, err := image.Open(path)
	require.NoError(t, err, path)
	return img
}

// fixturePairs returns every v1/v2 pair of the ground truth: the committed C
// builds and the Go builds (made now).
func fixturePairs(t *testing.T) []pair {
	truth := fixtures.GroundTruth(t)
	var out []pair
	for _, b := range truth.Builds {
		if b.Committed() {
			out = append(out, pair{b, func(t *testing.T) (string, string) {
				return fixtures.Path(t, b.V1), fixtures.Path(t, b.V2)
			}})
		} else {
			out = append(out, pair{b, func(t *testing.T) (string, string) {
				return fixtures.GoProgram(t, "v1", b.GOOS, b.GOARCH), fixtures.GoProgram(t, "v2", b.GOOS, b.GOARCH)
			}})
		}
	}
	return out
}

// TestGroundTruth diffs every fixture pair and checks the result against
// testdata/groundtruth.json: the fixture functions have exactly their
// written status (and reasons), and no other function of the whole binary
// (C runtime, libc, Go runtime) is reported anything but Unchanged.
func TestGroundTruth(t *testing.T) {
	truth := fixtures.GroundTruth(t)
	for _, p := range fixturePairs(t) {
		t.Run(p.build.Name, func(t *testing.T) {
			prog := truth.Program(p.build.Program)
			oldPath, newPath := p.paths(t)
			rep, err := Compare(openImage(t, oldPath), openImage(t, newPath), nil)
			require.NoError(t, err)
			checkAgainstTruth(t, prog, rep)
		})
	}
}

func checkAgainstTruth(t *testing.T, prog *fixtures.Program, rep *Report) {
	t.Helper()
	// The fixture functions (and the harness) have their ground-truth status.
	for _, gf := range prog.Functions {
		f := rep.Lookup(gf.Name)
		if gf.Name == "main" || gf.Name == "fixture_start" {
			if f == nil {
				continue // only in some builds
			}
		}
		require.NotNil(t, f, "%s not in the report", gf.Name)
		require.Equal(t, string(gf.Status), f.Status.String(), "%s: %v", gf.Name, f.Reasons)
		if gf.Status != fixtures.Changed {
			continue
		}
		var kinds []string
		for _, r := range f.Reasons {
			kinds = append(kinds, r.Kind.String())
		}
		slices.Sort(kinds)
		kinds = slices.Compact(kinds)
		want := slices.Clone(gf.Reasons)
		slices.Sort(want)
		require.Equal(t, want, kinds, "%s: reasons %v", gf.Name, f.Reasons)
		checkReferences(t, gf, f)
	}
	// Nothing else changed, was added or removed: runtime included.
	var extra []string
	for i := range rep.Functions {
		f := &rep.Functions[i]
		if f.Status == Unchanged {
			continue
		}
		if gf := prog.Function(f.Name()); gf == nil || string(gf.Status) != f.Status.String() {
			extra = append(extra, f.Status.String()+" "+f.Name())
		}
	}
	t.Logf("%s", rep.Summary())
	require.Empty(t, extra, "functions the ground truth says are unchanged")
}

// checkReferences checks the references of a Changed function's new body:
// every fixture function it calls in v2 resolves to that function (old, or
// new when Added), every global it reads or writes resolves to the old
// image's symbol of that name.
func checkReferences(t *testing.T, gf *fixtures.Function, f *Function) {
	t.Helper()
	calls := map[string]bool{}
	reads := map[string]bool{}
	writes := map[string]bool{}
	for _, r := range f.References {
		switch {
		case r.Resolution == ToFunction || r.Resolution == ToNewFunction:
			if r.Kind == RefCall || r.Kind == RefJump {
				calls[r.Target.Name] = true
			}
		case r.Resolution == ToData && r.Kind == RefRead:
			reads[r.Target.Name] = true
		case r.Resolution == ToData && r.Kind == RefWrite:
			writes[r.Target.Name] = true
		case r.Resolution == ToData && r.Kind == RefAddress:
			// ARM64/x64 code may take the address, then load through it.
			reads[r.Target.Name] = true
			writes[r.Target.Name] = true
		}
		require.NotEqual(t, NotHotPatchable, r.Resolution, "%s: %+v", gf.Name, r)
	}
	// The changed string constant travels with the body; the changed
	// switch's table is listed with every case (12 in v2).
	if gf.Has(fixtures.TraitStringConstant) {
		found := false
		for _, r := range f.References {
			found = found || r.Resolution == CarryConstant && strings.HasPrefix(string(r.Content), "hello from v2")
		}
		require.True(t, found, "%s carries its string: %v", gf.Name, f.References)
	}
	if gf.Has(fixtures.TraitJumpTable) {
		found := false
		for _, r := range f.References {
			found = found || r.Kind == RefJumpTable && r.Table != nil && len(r.Table.Entries) == 12 &&
				len(r.Content) == 12*int(r.Table.EntrySize)
		}
		require.True(t, found, "%s lists its 12-entry table: %v", gf.Name, f.References)
	}
	for _, c := range gf.CallsV2 {
		require.True(t, calls[c], "%s calls %s: references %v", gf.Name, c, f.References)
	}
	for _, g := range gf.ReadsV2 {
		require.True(t, reads[g] || writes[g], "%s reads %s", gf.Name, g)
	}
	for _, g := range gf.WritesV2 {
		require.True(t, writes[g], "%s writes %s", gf.Name, g)
	}
}

// TestNullBuilds: v1 and its rebuilt twin (other timestamp, checksum, debug
// id) differ in no function.
func TestNullBuilds(t *testing.T) {
	truth := fixtures.GroundTruth(t)
	for _, b := range truth.Builds {
		if b.Rebuilt == "" {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			o, n := openImage(t, fixtures.Path(t, b.V1)), openImage(t, fixtures.Path(t, b.Rebuilt))
			require.NotEqual(t, o.Identity, n.Identity, "the twin must differ in identity")
			rep, err := Compare(o, n, nil)
			require.NoError(t, err)
			require.Equal(t, len(o.Functions), rep.Counts.Unchanged, rep.Summary())
			require.Zero(t, rep.Counts.Changed+rep.Counts.Added+rep.Counts.Removed)
		})
	}
}

// TestGoNullBuilds: the Go v1 program built again with another build ID and
// version string (-ldflags=-X runtime.buildVersion) differs in no function,
// on every Go platform.
func TestGoNullBuilds(t *testing.T) {
	for _, b := range fixtures.GroundTruth(t).Builds {
		if b.Committed() {
			continue
		}
		t.Run(b.Name, func(t *testing.T) {
			o := openImage(t, fixtures.GoProgram(t, "v1", b.GOOS, b.GOARCH))
			n := openImage(t, testenv.GoBuild(t, "testdata/go/v1", b.GOOS, b.GOARCH, "-ldflags=-X=runtime.buildVersion=go-rebuilt"))
			require.NotEqual(t, o.Identity, n.Identity)
			rep, err := Compare(o, n, nil)
			require.NoError(t, err)
			require.Zero(t, rep.Counts.Changed+rep.Counts.Added+rep.Counts.Removed, rep.Summary())
		})
	}
}

// TestSelf: an image against itself is all Unchanged, matched by name.
func TestSelf(t *testing.T) {
	for _, p := range fixturePairs(t) {
		t.Run(p.build.Name, func(t *testing.T) {
			_, newPath := p.paths(t)
			img := openImage(t, newPath)
			rep, err := Compare(img, img, nil)
			require.NoError(t, err)
			require.Zero(t, rep.Counts.Changed+rep.Counts.Added+rep.Counts.Removed, rep.Summary())
		})
	}
}

// TestDeterministic: two runs give byte-identical JSON, which decodes back
// to the same report.
func TestDeterministic(t *testing.T) {
	for _, p := range fixturePairs(t) {
		t.Run(p.build.Name, func(t *testing.T) {
			oldPath, newPath := p.paths(t)
			var outs [][]byte
			for range 2 {
				rep, err := Compare(openImage(t, oldPath), openImage(t, newPath), nil)
				require.NoError(t, err)
				b, err := json.Marshal(rep)
				require.NoError(t, err)
				outs = append(outs, b)
				var back Report
				require.NoError(t, json.Unmarshal(b, &back))
				require.Equal(t, rep.Counts, back.Counts)
				require.Equal(t, len(rep.Functions), len(back.Functions))
				require.True(t, sort.SliceIsSorted(rep.Functions, func(i, j int) bool {
					return rep.Functions[i].Name() < rep.Functions[j].Name()
				}))
			}
			require.Equal(t, string(outs[0]), string(outs[1]))
		})
	}
}

// TestMismatch: images of different architectures or formats give typed
// errors; nil images too.
func TestMismatch(t *testing.T) {
	x64 := openImage(t, fixtures.Path(t, "c-v1-amd64.exe"))
	a64 := openImage(t, fixtures.Path(t, "c-v1-arm64.exe"))
	elf := openImage(t, fixtures.Path(t, "c-v1-amd64.elf"))
	_, err := Compare(x64, a64, nil)
	var am *ArchMismatchError
	require.ErrorAs(t, err, &am)
	require.ErrorIs(t, err, ErrArchMismatch)
	require.ErrorIs(t, err, ErrMismatch)
	require.Equal(t, image.AMD64, am.Old)
	require.Equal(t, image.ARM64, am.New)
	require.Contains(t, err.Error(), "amd64")

	_, err = Compare(x64, elf, nil)
	var fm *FormatMismatchError
	require.ErrorAs(t, err, &fm)
	require.ErrorIs(t, err, ErrFormatMismatch)
	require.Equal(t, image.FormatPE, fm.Old)

	_, err = Compare(nil, elf, nil)
	require.True(t, errors.Is(err, ErrNilImage))
}

// TestStripped: with the symbol tables gone (names erased), functions pair by
// body hash and call graph and the changed set, by address, is the same as
// with names.
func TestStripped(t *testing.T) {
	for _, name := range []string{"c/windows/amd64", "c/linux/amd64", "c/windows/arm64"} {
		t.Run(name, func(t *testing.T) {
			b := fixtures.GroundTruth(t).Build(name)
			o, n := openImage(t, fixtures.Path(t, b.V1)), openImage(t, fixtures.Path(t, b.V2))
			named, err := Compare(o, n, nil)
			require.NoError(t, err)
			strip := func(img *image.Image) *image.Image {
				c := *img
				c.Functions = slices.Clone(img.Functions)
				for i := range c.Functions {
					c.Functions[i].Name = ""
				}
				c.Symbols = nil
				return &c
			}
			rep, err := Compare(strip(o), strip(n), nil)
			require.NoError(t, err)
			t.Logf("stripped: %s by hash %d, by call graph %d", rep.Summary(), rep.Counts.ByBodyHash, rep.Counts.ByCallGraph)
			changedAt := func(r *Report) []uint32 {
				var out []uint32
				for _, f := range r.Changed() {
					out = append(out, f.NewRVA)
				}
				slices.Sort(out)
				return out
			}
			// Every function changed with names is changed without them, and
			// nothing else but a removed and an added function called from
			// the same site, which pair up (as Changed) without names.
			want := changedAt(named)
			got := changedAt(rep)
			for _, rva := range want {
				require.Contains(t, got, rva, "stripped diff misses %#x", rva)
			}
			var added []uint32
			for _, f := range named.WithStatus(Added) {
				added = append(added, f.NewRVA)
			}
			extra := 0
			for _, rva := range got {
				if !slices.Contains(want, rva) && !slices.Contains(added, rva) {
					extra++
				}
			}
			require.Zero(t, extra)
			require.Greater(t, rep.Counts.ByBodyHash, 0)
			require.Greater(t, rep.Counts.Unchanged, named.Counts.Unchanged*8/10)
		})
	}
}
