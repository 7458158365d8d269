//go:build (linux && amd64) || (windows && amd64)

package main

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"strings"
)

// The demo on the committed C builds: what the running program greets with
// at the end of each phase (before, applied, reverted).
func Example() {
	ext := "elf"
	if runtime.GOOS == "windows" {
		ext = "exe"
	}
	var out bytes.Buffer
	if err := run(context.Background(), &out, "../../testdata/bin/c-v1-amd64."+ext, "../../testdata/bin/c-v2-amd64."+ext, 2); err != nil {
		fmt.Println(err)
		return
	}
	var last string
	for _, l := range strings.Split(out.String(), "\n") {
		switch {
		case strings.HasPrefix(l, "  | "):
			last = fields(l[4:])["greet"]
		case strings.HasPrefix(l, "applied"), strings.HasPrefix(l, "reverted"):
			fmt.Println(last)
		}
	}
	fmt.Println(last)
	// Output:
	// hello from v1
	// hello from v2
	// hello from v1
}
