package winproc

import (
	"unsafe"

	"github.com/seed3bccf95f/hotpatch/internal/winapi"
)

// newContext returns an aligned CONTEXT asking for the control registers
// (Pc, Sp, Fp, Lr) and the integer registers.
func newContext() unsafe.Pointer {
	return unsafe.Pointer(winapi.NewContextARM64(winapi.ContextARM64Control | winapi.ContextARM64Integer))
}

func resetContext(c unsafe.Pointer) {
	(*winapi.CONTEXTARM64)(c).ContextFlags = winapi.ContextARM64Control | winapi.ContextARM64Integer
}

func pcsp(c unsafe.Pointer) (pc, sp uint64) {
	x := (*winapi.CONTEXTARM64)(c)
	return x.Pc, x.Sp
}

func setPC(c unsafe.Pointer, pc uint64) { (*winapi.CONTEXTARM64)(c).Pc = pc }
