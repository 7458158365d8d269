//go:build linux

package trampoline

import (
	"runtime"

	"github.com/seed3bccf95f/hotpatch/internal/execmem"
	"golang.org/x/sys/unix"
)

// a64Call calls machine code at fn with every signal blocked on the calling
// thread. Compiled code uses x28 (callee-saved, so restored on return) as a
// scratch register, but Go's signal handler (without cgo) takes x28 to be g:
// a preemption signal (SIGURG) landing inside such code crashes the process.
// Seen under qemu about once in four runs of TestARM64ExecCompiled; the
// signals are delivered once the mask is restored.
func a64Call(fn uint64, args ...uint64) uint64 {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var all, old unix.Sigset_t
	for k := range all.Val {
		all.Val[k] = ^all.Val[k]
	}
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old); err != nil {
		panic(err)
	}
	defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	a := make([]uintptr, len(args))
	for k, v := range args {
		a[k] = uintptr(v)
	}
	return uint64(execmem.Call(uintptr(fn), a...))
}
