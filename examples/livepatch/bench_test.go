//go:build (linux && amd64) || (windows && amd64)

package main

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/seed3bccf95f/hotpatch/image"
	"github.com/seed3bccf95f/hotpatch/internal/fixtures"
	"github.com/seed3bccf95f/hotpatch/internal/testenv"
	"github.com/seed3bccf95f/hotpatch/patch"
	"github.com/seed3bccf95f/hotpatch/patch/diff"
	"github.com/seed3bccf95f/hotpatch/patch/pkg"
)

// BenchmarkApplyRevert is the end-to-end cost of applying the fixture pair's
// package (5 functions) to a running process and reverting it: finding the
// module by identity, reading the applied set, checking pre-images,
// allocating, linking, one transaction, and the way back. pause-us is how
// long the target's threads were stopped for the apply's commit.
func BenchmarkApplyRevert(b *testing.B) {
	ext := "exe"
	if runtime.GOOS == "linux" {
		if testenv.Emulated() {
			b.Skip("ptrace is not available under emulation")
		}
		ext = "elf"
	}
	v1p, v2p := fixtures.Path(b, "c-v1-amd64."+ext), fixtures.Path(b, "c-v2-amd64."+ext)
	old, err := image.Open(v1p)
	if err != nil {
		b.Fatal(err)
	}
	new, err := image.Open(v2p)
	if err != nil {
		b.Fatal(err)
	}
	rep, err := diff.Compare(old, new, nil)
	if err != nil {
		b.Fatal(err)
	}
	p, _, err := pkg.Build(old, new, rep, pkg.BuildOptions{Sequence: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	// A long run with a 1 ms tick: the program is busy while it is patched.
	cmd := testenv.Command(ctx, b, v1p, "100000000", "1")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	t, err := attach(ctx, cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	defer t.Close()
	opts := patch.ApplyOptions{AllowUnsigned: true}
	var pause time.Duration
	for b.Loop() {
		a, err := patch.Apply(ctx, t, p, opts)
		if err != nil {
			b.Fatal(err)
		}
		pause += a.Pause
		if err := a.Revert(ctx, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(pause.Microseconds())/float64(b.N), "pause-us")
}
