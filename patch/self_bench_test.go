//go:build linux && (amd64 || arm64)

package patch_test

import (
	"context"
	"testing"

	"github.com/seed3bccf95f/hotpatch/patch"
)

var sink int

// BenchmarkCall: a call of a redirected Go function (leaf: one 5-byte jump;
// framed: a short jump to a jump in the padding) against calling the new
// function directly.
func BenchmarkCall(b *testing.B) {
	tg := selfTarget(b)
	b.Run("leaf/direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += leafNew()
		}
	})
	b.Run("leaf/redirected", func(b *testing.B) {
		redirectFor(b, tg, "leafOld", addr(leafOld), addr(leafNew))
		for i := 0; i < b.N; i++ {
			sink += leafOld()
		}
	})
	b.Run("framed/direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += framedNew(1)
		}
	})
	b.Run("framed/redirected", func(b *testing.B) {
		redirectFor(b, tg, "framedOld", addr(framedOld), addr(framedNew))
		for i := 0; i < b.N; i++ {
			sink += framedOld(1)
		}
	})
}

// redirectFor commits the redirection of function name at from to to, for
// the rest of b (rolled back when b ends), before b's timer starts.
func redirectFor(b *testing.B, tg *patch.Target, name string, from, to uint64) {
	b.Helper()
	ctx := context.Background()
	tx := tg.Begin(patch.Options{})
	if err := tx.Redirect(patch.Function{Name: name, Addr: from}, to); err != nil {
		b.Fatal(err)
	}
	a, err := tx.Commit(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := a.Rollback(ctx); err != nil {
			b.Error(err)
		}
	})
	b.ResetTimer()
}

// BenchmarkSelfApplyRollback: one in-process redirection planned, committed
// and rolled back.
func BenchmarkSelfApplyRollback(b *testing.B) {
	tg := selfTarget(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		tx := tg.Begin(patch.Options{})
		if err := tx.Redirect(patch.Function{Name: "leafOld", Addr: addr(leafOld)}, addr(leafNew)); err != nil {
			b.Fatal(err)
		}
		a, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := a.Rollback(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
