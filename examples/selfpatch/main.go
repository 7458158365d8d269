// Command selfpatch redirects one of its own functions to another while it
// runs, calls it, and rolls the redirection back: the smallest use of
// package patch, through the in-process target patch.Self.
//
//	go run ./examples/selfpatch
//
// It prints the function's result before, while redirected and after the
// rollback, and checks that rollback restored the entry's bytes exactly.
// On Linux (amd64, arm64) the other threads of a process cannot be stopped,
// so only a redirection written with one store that a running CPU sees
// atomically is accepted; on Windows every other thread is suspended during
// the commit. Go code may only be redirected to Go code.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/seed3bccf95f/hotpatch/patch"
)

// greeting is the function to fix. Its first instruction on x86-64 is a
// 7-byte LEA of the string, so the 5-byte jump covers exactly one
// instruction and goes in with one aligned 8-byte store: safe while other
// threads run. A function whose first instruction is shorter needs int3
// padding before it (for a 2-byte jump to a 5-byte one) or stopped threads;
// without either, Self refuses it with an error that says so. On ARM64 a
// single 4-byte B always fits.
//
//go:noinline
func greeting() string {
	return "hello from v1"
}

// greetingFixed is the fix. In a real agent it would arrive with the fix;
// here it is compiled in beside the original.
//
//go:noinline
func greetingFixed() string {
	return "hello from v2"
}

// entry returns the address of a Go function's code: what a redirection
// overwrites (from) or jumps to (to).
func entry(f func() string) uint64 {
	return uint64(reflect.ValueOf(f).Pointer())
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "selfpatch: %v\n", err)
		os.Exit(1)
	}
}

// run does the whole demonstration, writing what happens to w.
func run(ctx context.Context, w io.Writer) error {
	fmt.Fprintf(w, "before:      greeting() = %q\n", greeting())

	tg, err := patch.Self()
	if err != nil {
		return err
	}
	from, to := entry(greeting), entry(greetingFixed)
	// Keep the entry's original bytes to show that rollback restores them.
	original, err := tg.Read(from, 16)
	if err != nil {
		return err
	}

	tx := tg.Begin(patch.Options{})
	if err := tx.Redirect(patch.Function{Name: "main.greeting", Addr: from}, to); err != nil {
		tx.Abort()
		return fmt.Errorf("redirect main.greeting: %w", err)
	}
	applied, err := tx.Commit(ctx)
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	fmt.Fprintf(w, "redirected:  greeting() = %q (%d function redirected)\n", greeting(), applied.Functions)

	if err := applied.Rollback(ctx); err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	restored, err := tg.Read(from, 16)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "rolled back: greeting() = %q (entry bytes restored: %v)\n", greeting(), bytes.Equal(original, restored))
	return nil
}
