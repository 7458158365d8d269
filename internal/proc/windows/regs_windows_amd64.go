package winproc

import (
	"unsafe"

	"github.com/seed3bccf95f/hotpatch/internal/winapi"
)

// newContext returns an aligned CONTEXT asking for the control and integer
// registers: Rip and Rsp, and Rax..R15 so SetPC writes back what it read.
func newContext() unsafe.Pointer {
	return unsafe.Pointer(winapi.NewContextAMD64(winapi.ContextAMD64Control | winapi.ContextAMD64Integer))
}

func resetContext(c unsafe.Pointer) {
	(*winapi.CONTEXTAMD64)(c).ContextFlags = winapi.ContextAMD64Control | winapi.ContextAMD64Integer
}

func pcsp(c unsafe.Pointer) (pc, sp uint64) {
	x := (*winapi.CONTEXTAMD64)(c)
	return x.Rip, x.Rsp
}

func setPC(c unsafe.Pointer, pc uint64) { (*winapi.CONTEXTAMD64)(c).Rip = pc }
