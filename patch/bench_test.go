package patch

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/seed3bccf95f/hotpatch/internal/arch"
	"github.com/seed3bccf95f/hotpatch/internal/proc"
	"github.com/seed3bccf95f/hotpatch/internal/proc/fake"
)

// reportPause records the mean commit pause (threads stopped) per op.
func reportPause(b *testing.B, total time.Duration, n int) {
	b.ReportMetric(total.Seconds()*1e6/float64(n), "pause-µs/commit")
}

// BenchmarkCommitFake: the transaction's own overhead (plan, checks,
// writes, readback) for 1/100/1000 functions, against the in-memory
// back-end with 1 and 8 threads.
func BenchmarkCommitFake(b *testing.B) {
	for _, nf := range []int{1, 100, 1000} {
		for _, nt := range []int{1, 8} {
			b.Run(fmt.Sprintf("funcs=%d/threads=%d", nf, nt), func(b *testing.B) {
				code := make([]byte, 16*nf+0x1000)
				for i := 0; i < nf; i++ {
					copy(code[16*i:], f2Code)
				}
				p := fake.New(arch.AMD64, base, code)
				for i := 0; i < nt; i++ {
					p.Threads = append(p.Threads, proc.Thread{ID: 100 + i, PC: base + uint64(len(code)) - 8})
				}
				tg := newTarget(p)
				fs := make([]Function, nf)
				for f := range fs {
					fs[f] = Function{Name: "f", Addr: base + uint64(16*f), Size: 6}
				}
				benchCommit(b, tg, fs, base+uint64(len(code))-0x800)
			})
		}
	}
}

// benchCommit commits the redirection of every fs to `to` and rolls it
// back, b.N times, and reports the mean pause.
func benchCommit(b *testing.B, tg *Target, fs []Function, to uint64) {
	b.Helper()
	ctx := context.Background()
	var pause time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tx := tg.Begin(Options{})
		for _, f := range fs {
			if err := tx.Redirect(f, to); err != nil {
				b.Fatal(err)
			}
		}
		a, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		pause += a.Pause
		if err := a.Rollback(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportPause(b, pause, b.N)
}
