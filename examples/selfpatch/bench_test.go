package main

import (
	"context"
	"testing"

	"github.com/seed3bccf95f/hotpatch/patch"
)

var sink string

// BenchmarkCall is the per-call cost of a redirection: calling greeting
// while it is redirected (its entry jumps to greetingFixed) against calling
// greetingFixed directly, in the same run.
func BenchmarkCall(b *testing.B) {
	tg, err := patch.Self()
	if err != nil {
		b.Skip(err)
	}
	tx := tg.Begin(patch.Options{})
	if err := tx.Redirect(patch.Function{Name: "main.greeting", Addr: entry(greeting)}, entry(greetingFixed)); err != nil {
		tx.Abort()
		b.Fatal(err)
	}
	applied, err := tx.Commit(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := applied.Rollback(context.Background()); err != nil {
			b.Error(err)
		}
	})
	if greeting() != "hello from v2" {
		b.Fatal("not redirected")
	}
	b.Run("redirected", func(b *testing.B) {
		for b.Loop() {
			sink = greeting()
		}
	})
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			sink = greetingFixed()
		}
	})
}

// BenchmarkApplyRollback is one in-process transaction of one function,
// committed and rolled back.
func BenchmarkApplyRollback(b *testing.B) {
	tg, err := patch.Self()
	if err != nil {
		b.Skip(err)
	}
	ctx := context.Background()
	from, to := entry(greeting), entry(greetingFixed)
	for b.Loop() {
		tx := tg.Begin(patch.Options{})
		if err := tx.Redirect(patch.Function{Name: "main.greeting", Addr: from}, to); err != nil {
			tx.Abort()
			b.Fatal(err)
		}
		applied, err := tx.Commit(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if err := applied.Rollback(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if greeting() != "hello from v1" {
		b.Fatal("not rolled back")
	}
}
