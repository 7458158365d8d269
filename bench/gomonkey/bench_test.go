//go:build linux && (amd64 || arm64)

package gomonkey

import (
	"context"
	"reflect"
	"testing"

	"github.com/agiledragon/gomonkey/v2"

	"github.com/seed3bccf95f/hotpatch/patch"
)

//go:noinline
func oldFn() int { return 1 }

//go:noinline
func newFn() int { return 2 }

var sink int

func addr(f any) uint64 { return uint64(reflect.ValueOf(f).Pointer()) }

// TestBothRedirect: both libraries really redirect the function (the
// benchmarks measure something that works).
func TestBothRedirect(t *testing.T) {
	tg, err := patch.Self()
	if err != nil {
		t.Fatal(err)
	}
	tx := tg.Begin(patch.Options{})
	if err := tx.Redirect(patch.Function{Name: "oldFn", Addr: addr(oldFn)}, addr(newFn)); err != nil {
		t.Fatal(err)
	}
	a, err := tx.Commit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if oldFn() != 2 {
		t.Fatal("hotpatch: not redirected")
	}
	if err := a.Rollback(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := gomonkey.ApplyFunc(oldFn, newFn)
	if oldFn() != 2 {
		t.Fatal("gomonkey: not redirected")
	}
	p.Reset()
	if oldFn() != 1 {
		t.Fatal("not restored")
	}
}

func BenchmarkApplyRollback(b *testing.B) {
	b.Run("hotpatch", func(b *testing.B) {
		tg, err := patch.Self()
		if err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		for i := 0; i < b.N; i++ {
			tx := tg.Begin(patch.Options{})
			if err := tx.Redirect(patch.Function{Name: "oldFn", Addr: addr(oldFn)}, addr(newFn)); err != nil {
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
	})
	b.Run("gomonkey", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			p := gomonkey.ApplyFunc(oldFn, newFn)
			p.Reset()
		}
	})
}

func BenchmarkCall(b *testing.B) {
	b.Run("direct", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			sink += newFn()
		}
	})
	b.Run("hotpatch", func(b *testing.B) {
		tg, _ := patch.Self()
		tx := tg.Begin(patch.Options{})
		if err := tx.Redirect(patch.Function{Name: "oldFn", Addr: addr(oldFn)}, addr(newFn)); err != nil {
			b.Fatal(err)
		}
		a, err := tx.Commit(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sink += oldFn()
		}
		b.StopTimer()
		_ = a.Rollback(context.Background())
	})
	b.Run("gomonkey", func(b *testing.B) {
		p := gomonkey.ApplyFunc(oldFn, newFn)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			sink += oldFn()
		}
		b.StopTimer()
		p.Reset()
	})
}
