//go:build linux && (amd64 || arm64)

package patch_test

import (
	"context"
	"fmt"
	"reflect"

	"github.com/seed3bccf95f/hotpatch/patch"
)

//go:noinline
func greeting() string { return "hello" }

//go:noinline
func greetingFixed() string { return "hello, world" }

// Redirect a Go function of the running program to its fixed version, then
// roll back. In-process on Linux the other threads keep running: the jump is
// written with one atomic store, and anything that cannot be is refused.
func ExampleTx_Redirect() {
	target, err := patch.Self()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	from := uint64(reflect.ValueOf(greeting).Pointer())
	to := uint64(reflect.ValueOf(greetingFixed).Pointer())

	tx := target.Begin(patch.Options{})
	if err := tx.Redirect(patch.Function{Name: "greeting", Addr: from}, to); err != nil {
		fmt.Println(err)
		return
	}
	applied, err := tx.Commit(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(greeting())
	if err := applied.Rollback(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(greeting())
	// Output:
	// hello, world
	// hello
}
