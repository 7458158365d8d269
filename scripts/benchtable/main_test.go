package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const raw = `goos: linux
goarch: amd64
pkg: github.com/seed3bccf95f/hotpatch/image
cpu: AMD EPYC
BenchmarkOpenPE/image-2         	       3	 300000000 ns/op	  50.00 MB/s	     58000 functions	    190000 functions/s
BenchmarkOpenPE/image-2         	       3	 100000000 ns/op	  150.00 MB/s	     58000 functions	    570000 functions/s
BenchmarkOpenPE/image-2         	       3	 200000000 ns/op	  75.00 MB/s	     58000 functions	    290000 functions/s
BenchmarkOpenPE/debug-pe-2      	      10	 100000000 ns/op	  150.00 MB/s	     40000 functions
    pe_bench_test.go:12: a log line the benchmark printed
PASS
pkg: github.com/seed3bccf95f/hotpatch/patch/diff
BenchmarkDiffLarge-2   	       1	 900000000 ns/op	 130000 fn/s	  300 peak-MB	 12 B/op	 3 allocs/op
BenchmarkDecodeFloor-2 	       1	 300000000 ns/op	 390000 fn/s
ok  	github.com/seed3bccf95f/hotpatch/patch/diff	5s
`

func TestTable(t *testing.T) {
	rs, err := parse(strings.NewReader(raw), "linux/amd64")
	require.NoError(t, err)
	require.Len(t, rs, 4)
	require.Equal(t, "BenchmarkOpenPE/image", rs[0].Name)
	require.Equal(t, []float64{3e8, 1e8, 2e8}, rs[0].Values["ns/op"])
	require.Equal(t, []string{"ns/op", "MB/s", "functions", "functions/s"}, rs[0].Units)
	require.Equal(t, "github.com/seed3bccf95f/hotpatch/patch/diff", rs[2].Pkg)

	var out bytes.Buffer
	write(&out, rs, map[string]string{"BenchmarkDiffLarge": "BenchmarkDecodeFloor"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 2+4)
	// Median 200 ms, spread 50%; the sibling debug-pe is the baseline: 2x.
	require.Equal(t, "| linux/amd64 | image | `BenchmarkOpenPE/image` | 3 | 200 ms | 50% | 75 MB/s, 58k functions, 290k functions/s | `BenchmarkOpenPE/debug-pe` | 2.00x |", lines[2])
	require.Equal(t, "| linux/amd64 | image | `BenchmarkOpenPE/debug-pe` | 1 | 100 ms | 0% | 150 MB/s, 40k functions |  |  |", lines[3])
	require.Equal(t, "| linux/amd64 | patch/diff | `BenchmarkDiffLarge` | 1 | 900 ms | 0% | 130k fn/s, 300 peak-MB, 12 B/op, 3 allocs/op | `BenchmarkDecodeFloor` | 3.00x |", lines[4])
}

func TestFormat(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		unit string
		want string
	}{
		{3291.7, "MB/s", "3292 MB/s"},
		{57.25, "MB/s", "57.2 MB/s"},
		{1.5e6, "ns/op", "1.5 ms"},
		{2500, "B/op", "2.44 KiB/op"},
		{12000, "functions", "12k functions"},
		{144.2, "alloc-MB/op", "144 alloc-MB/op"},
		{3, "allocs/op", "3 allocs/op"},
	} {
		require.Equal(t, tc.want, format(tc.v, tc.unit))
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		med, spread float64
	}{
		{[]float64{5}, 5, 0},
		{[]float64{4, 1, 3, 2}, 2.5, 0.6},
		{[]float64{0, 0}, 0, 0},
	} {
		m, s := median(tc.in)
		require.Equal(t, tc.med, m)
		require.InDelta(t, tc.spread, s, 1e-9)
	}
}

// TestBaselineSiblings: a sub-benchmark's baseline is its sibling under the
// same parent in the same package: nested names ("leaf/redirected" pairs
// with "leaf/direct") and names that repeat across packages must not cross.
func TestBaselineSiblings(t *testing.T) {
	const nested = `pkg: example/patch
BenchmarkCall/leaf/direct-2       	10	 3 ns/op
BenchmarkCall/leaf/redirected-2   	10	 6 ns/op
BenchmarkCall/framed/direct-2     	10	 5 ns/op
BenchmarkCall/framed/redirected-2 	10	 20 ns/op
pkg: example/gomonkey
BenchmarkCall/direct-2   	10	 2 ns/op
BenchmarkCall/hotpatch-2 	10	 4 ns/op
BenchmarkCall/gomonkey-2 	10	 8 ns/op
BenchmarkApplyRollback/hotpatch-2 	10	 30 ns/op
BenchmarkApplyRollback/gomonkey-2 	10	 10 ns/op
pkg: example/image
BenchmarkParseELF/image.Parse-2 	10	 14 ns/op
BenchmarkParseELF/debug/elf-2   	10	 2 ns/op
`
	rs, err := parse(strings.NewReader(nested), "linux/amd64")
	require.NoError(t, err)
	want := map[string]string{ // "pkg name" -> baseline name ("" = none)
		"example/patch BenchmarkCall/leaf/direct":          "",
		"example/patch BenchmarkCall/leaf/redirected":      "BenchmarkCall/leaf/direct",
		"example/patch BenchmarkCall/framed/redirected":    "BenchmarkCall/framed/direct",
		"example/gomonkey BenchmarkCall/hotpatch":          "BenchmarkCall/direct",
		"example/gomonkey BenchmarkCall/gomonkey":          "",
		"example/gomonkey BenchmarkApplyRollback/hotpatch": "BenchmarkApplyRollback/gomonkey",
		"example/image BenchmarkParseELF/image.Parse":      "BenchmarkParseELF/debug/elf",
		"example/image BenchmarkParseELF/debug/elf":        "",
	}
	for _, r := range rs {
		w, ok := want[r.Pkg+" "+r.Name]
		if !ok {
			continue
		}
		b := baselineOf(r, rs, nil)
		if w == "" {
			require.Nil(t, b, "%s %s", r.Pkg, r.Name)
			continue
		}
		require.NotNil(t, b, "%s %s", r.Pkg, r.Name)
		require.Equal(t, r.Pkg, b.Pkg, "%s: baseline from another package", r.Name)
		require.Equal(t, w, b.Name, "%s %s", r.Pkg, r.Name)
	}
}
