package pkg

import (
	"crypto/ed25519"
	"os"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures/largec"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
)

// largeEnv opts in to the 20 000-function pair in tests: its first compile
// takes minutes (then it is cached under build/largec).
const largeEnv = "HOTPATCH_LARGE"

// generatedPair is a largec pair, compiled, opened and diffed.
type generatedPair struct {
	prog     *largec.Program
	old, new *image.Image
	rep      *diff.Report
}

func openGenerated(tb testing.TB, cfg largec.Config, tc largec.Toolchain) *generatedPair {
	tb.Helper()
	prog, bins := largec.Pair(tb, cfg, tc)
	old, err := image.Open(bins.V1)
	require.NoError(tb, err)
	nw, err := image.Open(bins.V2)
	require.NoError(tb, err)
	rep, err := diff.Compare(old, nw, nil)
	require.NoError(tb, err)
	return &generatedPair{prog, old, nw, rep}
}

// On a generated pair (thousands of functions of every shape, a known set
// changed by v2: bounds checks, constants, strings, added calls, switch
// cases, global writes): the diff reports exactly the generator's changes,
// Build carries exactly those with no refusal, and the linked package sends
// every reference where it must (checked by decoding the linked code).
func TestBuildGeneratedPair(t *testing.T) {
	_, large := os.LookupEnv(largeEnv)
	for _, tc := range []struct {
		name  string
		cfg   largec.Config
		tc    largec.Toolchain
		large bool
	}{
		{"small/pe", largec.Small(), largec.MinGW, false},
		{"small/elf", largec.Small(), largec.GCC, false},
		{"large/pe", largec.Default(), largec.MinGW, true},
		{"large/elf", largec.Default(), largec.GCC, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.large && !large {
				t.Skipf("set %s=1 to run: compiles 20 000 C functions twice (minutes the first time, then cached under build/largec); BenchmarkBuildLarge uses the same pair", largeEnv)
			}
			if !tc.large && testing.Short() {
				t.Skip("compiles 1 000 C functions twice the first time (-short)")
			}
			g := openGenerated(t, tc.cfg, tc.tc)
			want := g.prog.Changed()

			// The diff: exactly the generated changes, nothing added or removed.
			var changed []string
			for _, f := range g.rep.Changed() {
				changed = append(changed, f.Name())
			}
			slices.Sort(changed)
			require.Equal(t, want, changed)
			require.Zero(t, g.rep.Counts.Added)
			require.Zero(t, g.rep.Counts.Removed)
			require.GreaterOrEqual(t, g.rep.Counts.Unchanged, tc.cfg.Functions-len(want), "every other generated function is unchanged")

			// Build: all of them, no refusal, without partial mode.
			p, refused, err := Build(g.old, g.new, g.rep, BuildOptions{Module: tc.name})
			require.NoError(t, err)
			require.Empty(t, refused)
			var carried []string
			for _, f := range p.Functions {
				require.False(t, f.New, "%s: no function is added", f.Name)
				carried = append(carried, f.Name)
				of, ok := g.old.FunctionByName(f.Name)
				require.True(t, ok, f.Name)
				require.Equal(t, of.RVA, f.OldRVA)
			}
			slices.Sort(carried)
			require.Equal(t, want, carried)

			// Linked far from the module, every reference decodes to its target.
			refs := checkLinkedReferences(t, p, g.rep)

			// Signed and loaded back unchanged.
			pub, priv := testKey(1)
			require.NoError(t, p.Sign(priv))
			data, err := p.Marshal()
			require.NoError(t, err)
			q, err := Load(data, LoadOptions{TrustedKeys: []ed25519.PublicKey{pub}})
			require.NoError(t, err)
			require.Len(t, q.Functions, len(want))
			t.Logf("%d functions (%d changed by %v), %d references checked, %d constants, package %d bytes",
				len(g.old.Functions), len(want), changeKinds(g.prog), refs, len(p.Constants), len(data))
		})
	}
}

func changeKinds(p *largec.Program) map[string]int {
	m := map[string]int{}
	for _, f := range p.Functions {
		if f.Change != largec.Unchanged {
			m[f.Change.String()]++
		}
	}
	return m
}

// BenchmarkBuildLarge builds the package of the generated 20 000-function
// C pair (mingw x64 PE; 1% changed), the images opened and diffed outside
// the timer, and with the diff (with-diff). Metrics: changed functions
// built per second, the old image's function count, the signed package's
// size; with-diff also both images' functions diffed per second (fn/s).
func BenchmarkBuildLarge(b *testing.B) {
	g := openGenerated(b, largec.Default(), largec.MinGW)
	_, priv := testKey(1)
	p, _, err := Build(g.old, g.new, g.rep, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Sign(priv); err != nil {
		b.Fatal(err)
	}
	data, err := p.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	changed := len(g.rep.Changed())
	report := func(b *testing.B) {
		b.ReportMetric(float64(changed)*float64(b.N)/b.Elapsed().Seconds(), "changed-fn/s")
		b.ReportMetric(float64(len(g.old.Functions)), "functions")
		b.ReportMetric(float64(len(data)), "pkg-bytes")
	}
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := Build(g.old, g.new, g.rep, BuildOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("with-diff", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rep, err := diff.Compare(g.old, g.new, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := Build(g.old, g.new, rep, BuildOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
		// Both images' functions, as BenchmarkDiffLarge counts them.
		b.ReportMetric(float64(len(g.old.Functions)+len(g.new.Functions))*float64(b.N)/b.Elapsed().Seconds(), "fn/s")
	})
}
