package diff

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/decode/amd64"
	"github.com/seed3bccf95f/hotpatch/internal/decode/arm64"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
)

// largePair builds cmd/go (from GOROOT) for windows/amd64 twice: as is, and
// with runtime.buildVersion changed through -ldflags=-X (different data, same
// code). testenv.GoBuild caches both across runs.
func largePair(tb testing.TB) (old, new *image.Image) {
	tb.Helper()
	if !testenv.HostExec() {
		tb.Skip("needs the go tool (not reachable under Wine)")
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		testenv.Missing(tb, "go", "the large diff pair is cmd/go, built from GOROOT")
	}
	src := filepath.Join(strings.TrimSpace(string(goroot)), "src", "cmd", "go")
	if _, err := os.Stat(src); err != nil {
		testenv.Missing(tb, "GOROOT/src/cmd/go", "the large diff pair is cmd/go")
	}
	a := testenv.GoBuild(tb, src, "windows", "amd64")
	b := testenv.GoBuild(tb, src, "windows", "amd64", "-ldflags=-X=runtime.buildVersion=go-hotpatch-variant")
	return openImage(tb, a), openImage(tb, b)
}

// TestLargeSelfConsistency diffs two cmd/go builds that differ only in a
// string set by -X: every function must match by name and none may change.
// Consecutive releases of a published Windows binary are not available
// offline, so this stands in for the real third-party pair.
func TestLargeSelfConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("builds cmd/go")
	}
	if testenv.Emulated() {
		t.Skip("decodes 30 000 functions: runs in the native leg (emulation is ~10x slower)")
	}
	old, new := largePair(t)
	start := time.Now()
	rep, err := Compare(old, new, nil)
	elapsed := time.Since(start)
	require.NoError(t, err)
	matched := rep.Counts.ByName + rep.Counts.ByBodyHash + rep.Counts.ByCallGraph
	t.Logf("cmd/go windows/amd64: %d -> %d functions, matched %.2f%% (%d by name, %d by hash, %d by call graph), %d changed, %d added, %d removed, in %v",
		rep.Old.Functions, rep.New.Functions, 100*float64(matched)/float64(rep.Old.Functions),
		rep.Counts.ByName, rep.Counts.ByBodyHash, rep.Counts.ByCallGraph, rep.Counts.Changed, rep.Counts.Added, rep.Counts.Removed, elapsed)
	require.Zero(t, rep.Counts.Changed+rep.Counts.Added+rep.Counts.Removed, rep.Summary())
}

// heapPeak samples the live heap every millisecond until stopped.
type heapPeak struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func startHeapPeak() *heapPeak {
	h := &heapPeak{stop: make(chan struct{})}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			h.peak = max(h.peak, s[0].Value.Uint64())
			select {
			case <-h.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return h
}

func (h *heapPeak) done() uint64 {
	close(h.stop)
	h.wg.Wait()
	return h.peak
}

// BenchmarkDiffLarge diffs two cmd/go builds (windows/amd64, ~15 MB, tens of
// thousands of functions). Metrics: functions (both images) per second,
// peak live heap during the runs, MB allocated per diff.
func BenchmarkDiffLarge(b *testing.B) {
	old, new := largePair(b)
	nfn := len(old.Functions) + len(new.Functions)
	runtime.GC()
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	base := ms0.HeapAlloc
	h := startHeapPeak()
	b.ResetTimer()
	for b.Loop() {
		if _, err := Compare(old, new, &Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	peak := h.done()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(nfn)*float64(b.N)/b.Elapsed().Seconds(), "fn/s")
	b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "peak-MB")
	b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/float64(b.N)/(1<<20), "alloc-MB/op")
}

// BenchmarkDecodeFloor decodes every function of both cmd/go images once
// with the same decoders and nothing else: the floor BenchmarkDiffLarge is
// measured against.
func BenchmarkDecodeFloor(b *testing.B) {
	old, new := largePair(b)
	nfn := len(old.Functions) + len(new.Functions)
	b.ResetTimer()
	for b.Loop() {
		n := 0
		for _, img := range []*image.Image{old, new} {
			for i := range img.Functions {
				code, _ := img.Code(&img.Functions[i])
				if img.Arch == image.ARM64 {
					n += len(arm64.DecodeAll(code, uint64(img.Functions[i].RVA)))
					continue
				}
				for in, err := range amd64.Walk(code, uint64(img.Functions[i].RVA)) {
					if err != nil {
						break
					}
					_ = in
					n++
				}
			}
		}
		if n == 0 {
			b.Fatal("nothing decoded")
		}
	}
	b.ReportMetric(float64(nfn)*float64(b.N)/b.Elapsed().Seconds(), "fn/s")
}

// TestThirdPartyPair diffs two consecutive releases of a published binary
// named by HOTPATCH_DIFF_PAIR ("old:new"; PE or ELF) and logs matched %,
// changed count and time. No such pair is available offline on this machine
// (Wine ships one version of each DLL), so without the variable the test
// skips; TestLargeSelfConsistency stands in with a large Go build.
func TestThirdPartyPair(t *testing.T) {
	pair := os.Getenv("HOTPATCH_DIFF_PAIR")
	if pair == "" {
		t.Skip("no third-party release pair offline: set HOTPATCH_DIFF_PAIR=old:new (consecutive releases of one published binary)")
	}
	oldPath, newPath, ok := strings.Cut(pair, ":")
	require.True(t, ok, "HOTPATCH_DIFF_PAIR must be old:new")
	old, new := openImage(t, oldPath), openImage(t, newPath)
	start := time.Now()
	rep, err := Compare(old, new, nil)
	elapsed := time.Since(start)
	require.NoError(t, err)
	matched := rep.Counts.ByName + rep.Counts.ByBodyHash + rep.Counts.ByCallGraph
	t.Logf("%s -> %s: matched %.2f%% of %d old functions (%d by name, %d by hash, %d by call graph), %d changed, %d added, %d removed, in %v",
		oldPath, newPath, 100*float64(matched)/float64(max(1, rep.Old.Functions)), rep.Old.Functions,
		rep.Counts.ByName, rep.Counts.ByBodyHash, rep.Counts.ByCallGraph, rep.Counts.Changed, rep.Counts.Added, rep.Counts.Removed, elapsed)
	t.Logf("%s", rep.Summary())
	require.Equal(t, rep.Old.Functions, matched+rep.Counts.Removed)
}
