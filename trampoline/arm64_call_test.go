package trampoline

import "github.com/seed3bccf95f/hotpatch/internal/execmem"

// a64Call calls machine code at fn with integer arguments (execmem.Call
// blocks signals meanwhile: compiled code may hold anything in x28, which
// Go's signal handler would take for g).
func a64Call(fn uint64, args ...uint64) uint64 {
	a := make([]uintptr, len(args))
	for k, v := range args {
		a[k] = uintptr(v)
	}
	return uint64(execmem.Call(uintptr(fn), a...))
}
