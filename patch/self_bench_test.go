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
	ctx := context.Background()
	b.Run("leaf/direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += leafNew()
		}
	})
	b.Run("leaf/redirected", func(b *testing.B) {
		tx := tg.Begin(patch.Options{})
		if err := tx.Redirect(patch.Function{Name: "leafOld", Addr: addr(leafOld)}, addr(leafNew)); err != nil {
			b.Fatal(err)
		}
		a, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sink += leafOld()
		}
		b.StopTimer()
		if err := a.Rollback(ctx); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("framed/direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += framedNew(1)
		}
	})
	b.Run("framed/redirected", func(b *testing.B) {
		tx := tg.Begin(patch.Options{})
		if err := tx.Redirect(patch.Function{Name: "framedOld", Addr: addr(framedOld)}, addr(framedNew)); err != nil {
			b.Fatal(err)
		}
		a, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sink += framedOld(1)
		}
		b.StopTimer()
		if err := a.Rollback(ctx); err != nil {
			b.Fatal(err)
		}
	})
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
