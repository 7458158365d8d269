package main

import (
	"context"
	"fmt"
	"os"
)

// The program's own greeting is redirected to the fixed one and back.
func Example() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// before:      greeting() = "hello from v1"
	// redirected:  greeting() = "hello from v2" (1 function redirected)
	// rolled back: greeting() = "hello from v1" (entry bytes restored: true)
}
