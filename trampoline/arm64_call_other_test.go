//go:build !linux

package trampoline

import "github.com/seed3bccf95f/hotpatch/internal/execmem"

// a64Call calls machine code at fn (only reached on linux/arm64: the
// execution tests skip elsewhere).
func a64Call(fn uint64, args ...uint64) uint64 {
	a := make([]uintptr, len(args))
	for k, v := range args {
		a[k] = uintptr(v)
	}
	return uint64(execmem.Call(uintptr(fn), a...))
}
